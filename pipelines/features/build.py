"""silver → gold.enterprise_features: one row per (as-of date T, enterprise active at T).

Point in time. A record counts for T only if its event date is before T *and* it was known
before T. The known date is the source's own report date (``reported_on`` for penalties, list
entries and inspections, ``filed_on`` for annual reports, ``valid_from`` for registry
versions), not the delivery date ``_run_date``: the first history delivery lands years of
records on a single day, so ``_run_date`` would say nothing was known before the cut-over.
Two sources have no separate report date and are known on their event date: complaints
(``received_on``) and registry versions. A list entry whose removal has been reported carries
the removal's report date in silver (the entry's own is overwritten), so the entry is then
known from ``entered_on`` and the removal from ``reported_on``.

Registry attributes at T come from the SCD2 version with ``valid_from < T`` that was still
valid at T — the canonical ones and those the registry mapping declares (``attributes``), which
become the features ``attr_<name>`` the mapping describes (:func:`attribute_features`).
Each event kind the event mapping declares becomes ``evt_<kind>``: the enterprise's events of
that kind dated in the kind's window before T and reported before T (:func:`_events`).
Every as-of date is computed in one pass (records cross-joined with the dates) and written
with ``replaceWhere`` on the ``as_of`` partitions, so a rebuild is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.normalise import clean_word
from warehouse import audit, contracts, tables
from warehouse.contracts import (
    ATTRIBUTE_PREFIX,
    CLOSED_STATUSES,
    EVENT_PREFIX,
    OBSERVED_RESULTS,
    Attribute,
    EventKind,
)
from warehouse.contracts.features import FEATURE_NAMES, SEGMENTS
from warehouse.contracts.mapping import ATTRIBUTE_SOURCES, EVENT_SOURCES, KEYWORD_JOIN
from warehouse.settings import Settings, get_settings

HALF_LIFE_DAYS = 365.0  # recency weight of a penalty halves each year
# Pseudo-counts that pull a street's rates towards the whole lake's at T: a street of two
# enterprises says little, one of two hundred says a lot (inspections for the finding rate,
# enterprises for the complaint and penalty rates).
NEIGHBOUR_PRIOR = 5.0


def month_starts(first: date, last: date, step_months: int = 1) -> list[date]:
    """First days of months from ``first``'s month to ``last``'s, every ``step_months``."""
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(date(y, m, 1))
        m += step_months
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return out


def _as_of_frame(spark: SparkSession, as_of: Iterable[date]) -> DataFrame:
    dates = sorted(set(as_of))
    if not dates:
        raise ValueError("no as-of dates")
    return F.broadcast(spark.createDataFrame([(d,) for d in dates], "as_of date"))


def _days_before(event: Column) -> Column:
    return F.datediff(F.col("as_of"), event)


def _within(event: Column, days: int) -> Column:
    return _days_before(event) <= days


def _known(df: DataFrame, asof: DataFrame, event: str, known: Column) -> DataFrame:
    """Rows of ``df`` with event date and known date before each as-of date."""
    return (
        df.withColumn("_known_on", F.greatest(F.col(event), F.coalesce(known, F.col(event))))
        .crossJoin(asof)
        .where((F.col(event) < F.col("as_of")) & (F.col("_known_on") < F.col("as_of")))
    )


def attribute_value(attr: Attribute, text: Column) -> Column:
    """The feature value of ``attr`` from its cleaned text in silver: categorical text as is,
    or the keyword values it names (joined with 、, ``otherwise`` when none; NULL text stays
    NULL); numeric the number in it (separators and a trailing unit word ignored) × scale."""
    if attr.kind == "numeric":
        number = F.regexp_extract(
            F.regexp_replace(text, r"[,，\s]", ""), r"^(-?\d+(\.\d+)?)\D*$", 1
        )
        return F.when(number != "", number.cast("double") * F.lit(attr.scale))
    if not attr.keywords:
        return text
    folded = F.lower(text)
    found = [
        F.when(_any_word(folded, words), F.lit(value)) for value, words in attr.keywords.items()
    ]
    joined = F.concat_ws(KEYWORD_JOIN, *found)  # NULLs (keywords not found) are skipped
    return F.when(text.isNotNull(), F.when(joined != "", joined).otherwise(F.lit(attr.otherwise)))


def _any_word(folded: Column, words: list[str]) -> Column:
    cleaned = [w.casefold() for word in words if (w := clean_word(word))]
    out = F.lit(False)
    for w in cleaned:
        out = out | folded.contains(w)
    return out


def attribute_features(s: Settings) -> list[Column]:
    """One column ``attr_<name>`` per attribute the mappings in force declare, from the
    ``attributes`` map of the registry version valid at T."""
    out = []
    for source, mapping in contracts.mappings(s).items():
        if source not in ATTRIBUTE_SOURCES:
            continue
        for name, attr in mapping.attributes.items():
            text = F.element_at(F.col("attributes"), F.lit(name))
            out.append(attribute_value(attr, text).alias(ATTRIBUTE_PREFIX + name))
    return out


def event_kinds(s: Settings) -> dict[str, EventKind]:
    """The event kinds the mappings in force declare, by name (empty when none does)."""
    return {
        name: kind
        for source, mapping in contracts.mappings(s).items()
        if source in EVENT_SOURCES
        for name, kind in mapping.events.items()
    }


def _events(
    spark: SparkSession, asof: DataFrame, kinds: dict[str, EventKind], s: Settings
) -> DataFrame:
    """Per (T, enterprise): ``evt_<kind>``, events of each kind in its window before T."""
    e = _known(tables.read(spark, tables.FCT_EVENT, s), asof, "event_on", F.col("reported_on"))
    age = _days_before(F.col("event_on"))
    return e.groupBy("as_of", "uscc").agg(
        *[
            F.sum(((F.col("kind_code") == name) & (age <= k.window_days)).cast("int")).alias(
                EVENT_PREFIX + name
            )
            for name, k in kinds.items()
        ]
    )


def _registry(spark: SparkSession, asof: DataFrame, s: Settings) -> tuple[DataFrame, DataFrame]:
    """(versions valid at each T for enterprises founded before T, change counts over 2 years)."""
    dim = tables.read(spark, tables.DIM_ENTERPRISE, s)
    regions = tables.read(spark, tables.DIM_REGION, s).select(
        "region_code", "province_name", "city_name", "region_name"
    )
    street = street_key(
        F.col("address"),
        F.col("region_code"),
        F.col("province_name"),
        F.col("city_name"),
        F.col("region_name"),
    )
    at = (
        dim.join(F.broadcast(regions), "region_code", "left")
        .crossJoin(asof)
        .where(tables.known_before(F.col("as_of")) & (F.col("founded_on") < F.col("as_of")))
        .select(
            "as_of",
            "uscc",
            "ent_type",
            "industry",
            "region_code",
            "founded_on",
            "reg_capital_yuan",
            "legal_rep_token",
            "address_token",
            street.alias("street_key"),
            "attributes",
            (
                ~F.coalesce(F.col("status_code").isin(*CLOSED_STATUSES), F.lit(False))
                & (F.col("closed_on").isNull() | (F.col("closed_on") >= F.col("as_of")))
            ).alias("active"),
        )
    )
    w = Window.partitionBy("uscc").orderBy("valid_from")

    def changed(c: str) -> Column:
        return (F.lag(c).over(w) != F.col(c)).cast("int")

    changes = (
        dim.select(
            "uscc",
            "valid_from",
            changed("address_token").alias("addr"),
            changed("legal_rep_token").alias("rep"),
            changed("reg_capital_yuan").alias("cap"),
        )
        .crossJoin(asof)
        .where((F.col("valid_from") < F.col("as_of")) & _within(F.col("valid_from"), 730))
        .groupBy("as_of", "uscc")
        .agg(
            F.sum(F.coalesce("addr", F.lit(0))).alias("address_changes_2y"),
            F.sum(F.coalesce("rep", F.lit(0))).alias("legal_rep_changes_2y"),
            F.sum(F.coalesce("cap", F.lit(0))).alias("capital_changes_2y"),
        )
    )
    return at, changes


def _penalties(spark: SparkSession, asof: DataFrame, s: Settings) -> DataFrame:
    p = _known(tables.read(spark, tables.FCT_PENALTY, s), asof, "decided_on", F.col("reported_on"))
    age = _days_before(F.col("decided_on"))
    amount = F.coalesce(F.col("amount_yuan").cast("double"), F.lit(0.0))
    return p.groupBy("as_of", "uscc").agg(
        F.sum((age <= 365).cast("int")).alias("penalties_1y"),
        F.sum((age <= 730).cast("int")).alias("penalties_2y"),
        F.sum((age <= 1826).cast("int")).alias("penalties_5y"),
        F.sum(F.pow(F.lit(0.5), age / HALF_LIFE_DAYS)).alias("penalty_recency_score"),
        F.sum(F.when(age <= 730, amount).otherwise(0.0)).alias("penalty_amount_2y"),
        F.floor(F.min(age) / 30.4375).cast("double").alias("months_since_penalty"),
    )


def _lists(spark: SparkSession, asof: DataFrame, s: Settings) -> DataFrame:
    raw = tables.read(spark, tables.FCT_LIST_ENTRY, s)
    # Silver keeps the latest version of an entry: once removed, reported_on is the removal's.
    entry_known = F.when(F.col("removed_on").isNull(), F.col("reported_on")).otherwise(
        F.col("entered_on")
    )
    e = _known(raw, asof, "entered_on", entry_known)
    removal_known = F.greatest(F.col("removed_on"), F.coalesce("reported_on", "removed_on"))
    removed = (
        F.col("removed_on").isNotNull()
        & (F.col("removed_on") < F.col("as_of"))
        & (removal_known < F.col("as_of"))
    )
    on = ~removed
    return e.groupBy("as_of", "uscc").agg(
        F.max((on & (F.col("list_type") == "abnormal")).cast("int")).alias("on_abnormal_list"),
        F.max((on & (F.col("list_type") == "serious")).cast("int")).alias("on_serious_list"),
        F.sum(_within(F.col("entered_on"), 1096).cast("int")).alias("list_entries_3y"),
    )


def _inspections(spark: SparkSession, asof: DataFrame, s: Settings) -> DataFrame:
    # only inspections that observed the enterprise: "could not be reached" is not "clean"
    raw = tables.read(spark, tables.FCT_INSPECTION, s).where(
        F.col("outcome").isin(*OBSERVED_RESULTS)
    )
    i = _known(raw, asof, "inspected_on", F.col("reported_on"))
    recent = _within(F.col("inspected_on"), 1096)
    found = F.coalesce(F.col("found_problem"), F.lit(False))
    return i.groupBy("as_of", "uscc").agg(
        F.sum(recent.cast("int")).alias("inspections_3y"),
        F.sum((recent & found).cast("int")).alias("findings_3y"),
        F.floor(F.min(F.when(found, _days_before(F.col("inspected_on")))) / 30.4375)
        .cast("double")
        .alias("months_since_finding"),
    )


def _complaints(spark: SparkSession, asof: DataFrame, s: Settings) -> DataFrame:
    c = _known(tables.read(spark, tables.FCT_COMPLAINT, s), asof, "received_on", F.lit(None))
    age = _days_before(F.col("received_on"))
    return c.groupBy("as_of", "uscc").agg(
        F.sum((age <= 91).cast("int")).alias("complaints_3m"),
        F.sum((age <= 365).cast("int")).alias("complaints_12m"),
        (F.sum((age <= 182).cast("int")) - F.sum(((age > 182) & (age <= 365)).cast("int")))
        .cast("double")
        .alias("complaint_trend"),
    )


def _annual_reports(spark: SparkSession, asof: DataFrame, reg: DataFrame, s: Settings) -> DataFrame:
    """Late and missing reports over the last 3 report years already due at T, and the latest
    filed report's headcount. Years before the source's first report year are not judged."""
    ar = tables.read(spark, tables.FCT_ANNUAL_REPORT, s)
    first_year = ar.agg(F.min("report_year").alias("first_year"))
    due = (
        reg.select("as_of", "uscc", "founded_on")
        .withColumn("report_year", F.explode(F.sequence(F.year("as_of") - 3, F.year("as_of") - 1)))
        .crossJoin(F.broadcast(first_year))
        .where(
            (F.col("report_year") >= F.col("first_year"))
            & (F.make_date(F.col("report_year") + 1, F.lit(6), F.lit(30)) < F.col("as_of"))
            & (F.col("founded_on") <= F.make_date(F.col("report_year"), F.lit(12), F.lit(31)))
        )
        .select("as_of", "uscc", "report_year")
    )
    filed = _known(ar, asof, "filed_on", F.col("filed_on")).select(
        "as_of", "uscc", "report_year", "filed_on", "due_on"
    )
    judged = (
        due.join(filed, ["as_of", "uscc", "report_year"], "left")
        .groupBy("as_of", "uscc")
        .agg(
            F.sum((F.col("filed_on") > F.col("due_on")).cast("int")).alias("reports_late_3y"),
            F.sum(F.col("filed_on").isNull().cast("int")).alias("reports_missing_3y"),
        )
    )
    w = Window.partitionBy("as_of", "uscc").orderBy(F.desc("report_year"), F.desc("filed_on"))
    latest = (
        _known(ar, asof, "filed_on", F.col("filed_on"))
        .withColumn("_n", F.row_number().over(w))
        .where("_n = 1")
        .select(
            "as_of",
            "uscc",
            F.col("employees").cast("double").alias("employees"),
            F.when(
                F.col("employees") > 0,
                F.least(F.col("insured_staff") / F.col("employees"), F.lit(1.0)),
            ).alias("insured_share"),
        )
    )
    return judged.join(latest, ["as_of", "uscc"], "full")


def _associations(base: DataFrame, by: str, prefix: str) -> DataFrame:
    """Counts over the *other* enterprises sharing ``by`` (a token) at the same T."""
    flags = base.where(F.col(by).isNotNull()).select(
        "as_of",
        "uscc",
        by,
        (F.col("penalties_2y") > 0).cast("int").alias("_pen"),
        ((F.col("on_abnormal_list") + F.col("on_serious_list")) > 0).cast("int").alias("_lst"),
        (
            F.col("penalty_recency_score")
            + 0.5 * F.col("on_abnormal_list")
            + 1.5 * F.col("on_serious_list")
        ).alias("_score"),
    )
    g = Window.partitionBy("as_of", by)
    out = flags.select(
        "as_of",
        "uscc",
        (F.count(F.lit(1)).over(g) - 1).cast("double").alias(f"{prefix}_associates"),
        (F.sum("_pen").over(g) - F.col("_pen"))
        .cast("double")
        .alias(f"{prefix}_assoc_penalised_2y"),
        (F.sum("_lst").over(g) - F.col("_lst")).cast("double").alias(f"{prefix}_assoc_listed"),
        (F.sum("_score").over(g) - F.col("_score")).alias(f"{prefix}_assoc_score"),
    )
    return out


def street_key(address: Column, region_code: Column, *names: Column) -> Column:
    """The street an address lies on: the district code and the address text before its first
    house number, after the leading administrative ``names`` (province, city, district, in that
    order, each where the address starts with it) and spaces are taken off, so
    ``广东省深圳市南山区科技园路18号B座`` and ``南山区科技园路 1号`` are both
    ``440305|科技园路``. NULL when the address has no number: such an enterprise has no street
    neighbours. Silver addresses are already half-width (``clean_text``)."""
    text = F.regexp_replace(address, r"\s+", "")
    for name in names:
        starts = name.isNotNull() & (F.length(name) > 0) & text.startswith(name)
        text = F.when(starts, text.substr(F.length(name) + 1, F.length(text))).otherwise(text)
    before = F.regexp_replace(F.regexp_extract(text, r"^(\D+?)\d", 1), r"第$", "")
    return F.when(before != "", F.concat_ws("|", region_code, before))


def _neighbourhood(base: DataFrame) -> DataFrame:
    """Rates among the *other* enterprises on the same street at the same T, shrunk towards the
    lake's rate at T by :data:`NEIGHBOUR_PRIOR`; an enterprise without a street gets the
    lake's rate. Inputs are the point-in-time counts already in ``base``, so the rates are
    point in time too."""
    flags = base.select(
        "as_of",
        "uscc",
        "street_key",
        F.col("findings_3y").cast("double").alias("_f"),
        F.col("inspections_3y").cast("double").alias("_i"),
        F.col("complaints_12m").cast("double").alias("_c"),
        (F.col("penalties_2y") > 0).cast("double").alias("_p"),
    )
    lake = flags.groupBy("as_of").agg(
        (F.sum("_f") / F.greatest(F.sum("_i"), F.lit(1.0))).alias("_rf"),
        F.avg("_c").alias("_rc"),
        F.avg("_p").alias("_rp"),
    )
    g = Window.partitionBy("as_of", "street_key")
    on_street = F.col("street_key").isNotNull()

    def others(c: str) -> Column:
        return F.when(on_street, F.sum(c).over(g) - F.col(c)).otherwise(0.0)

    k = F.lit(NEIGHBOUR_PRIOR)
    n = F.when(on_street, F.count(F.lit(1)).over(g) - 1).otherwise(0).cast("double")
    return flags.join(F.broadcast(lake), "as_of").select(
        "as_of",
        "uscc",
        n.alias("street_neighbours"),
        ((others("_f") + k * F.col("_rf")) / (others("_i") + k)).alias("street_finding_rate_3y"),
        ((others("_c") + k * F.col("_rc")) / (n + k)).alias("street_complaints_12m"),
        ((others("_p") + k * F.col("_rp")) / (n + k)).alias("street_penalised_share_2y"),
    )


def features_frame(
    spark: SparkSession, as_of: Iterable[date], settings: Settings | None = None
) -> DataFrame:
    """Features of every enterprise active at each as-of date, lazily (nothing is written)."""
    s = settings or get_settings()
    asof = _as_of_frame(spark, as_of)
    reg, changes = _registry(spark, asof, s)
    parts = [
        changes,
        _penalties(spark, asof, s),
        _lists(spark, asof, s),
        _inspections(spark, asof, s),
        _complaints(spark, asof, s),
        _annual_reports(spark, asof, reg, s),
    ]
    kinds = event_kinds(s)
    events = [EVENT_PREFIX + name for name in kinds]
    if kinds:
        parts.append(_events(spark, asof, kinds, s))
    df = reg
    for part in parts:
        df = df.join(part, ["as_of", "uscc"], "left")
    zero = [
        "address_changes_2y", "legal_rep_changes_2y", "capital_changes_2y",
        "penalties_1y", "penalties_2y", "penalties_5y", "penalty_recency_score",
        "penalty_amount_2y", "on_abnormal_list", "on_serious_list", "list_entries_3y",
        "inspections_3y", "findings_3y", "complaints_3m", "complaints_12m", "complaint_trend",
        "reports_late_3y", "reports_missing_3y", *events,
    ]  # fmt: skip
    df = df.fillna(0, subset=zero)
    # Associations count every enterprise registered at T (closed ones keep their record).
    df = df.join(_associations(df, "legal_rep_token", "rep"), ["as_of", "uscc"], "left")
    df = df.join(
        _associations(df, "address_token", "addr").drop("addr_assoc_score"),
        ["as_of", "uscc"],
        "left",
    )
    # Like associations, neighbours are every enterprise registered at T on the street.
    df = df.join(_neighbourhood(df), ["as_of", "uscc"], "left")
    df = df.fillna(
        0,
        subset=[
            "rep_associates", "rep_assoc_penalised_2y", "rep_assoc_listed", "rep_assoc_score",
            "addr_associates", "addr_assoc_penalised_2y", "addr_assoc_listed",
        ],
    )  # fmt: skip
    capital = F.col("reg_capital_yuan").cast("double")
    df = df.where("active").select(
        "as_of",
        "uscc",
        (F.datediff(F.col("as_of"), F.col("founded_on")) / 365.25).alias("age_years"),
        (capital / 10_000.0).alias("reg_capital_10k"),
        "ent_type",
        "industry",
        "region_code",
        *[
            F.col(c).cast("double").alias(c)
            for c in FEATURE_NAMES
            if c not in ("age_years", "reg_capital_10k", "ent_type", "industry", "region_code")
        ],
        *attribute_features(s),
        *[F.col(c).cast("double").alias(c) for c in events],
        F.when(capital < 1e6, "small <1M")
        .when(capital < 1e7, "medium 1M-10M")
        .when(capital.isNotNull(), "large >=10M")
        .otherwise("unknown")
        .alias("size_band"),
    )
    return df


def delta_version(spark: SparkSession, table: tables.Table, settings: Settings) -> int:
    """Current Delta version of ``table`` (created empty if missing)."""
    tables.ensure(spark, table, settings)
    hist = spark.sql(f"DESCRIBE HISTORY delta.`{table.path(settings)}` LIMIT 1").first()
    return int(hist["version"])


def input_versions(spark: SparkSession, settings: Settings | None = None) -> dict[str, int]:
    """Current Delta version of every silver table the features read that exists.

    A table no mapping delivers (e.g. silver.fct_event in a lake without events) is left out
    rather than created: creating it would give every later silver gate a new table to check.
    """
    s = settings or get_settings()
    found = audit.table_versions(s, (tables.DIM_ENTERPRISE, *tables.SILVER_FACTS))
    return {name: v for name, v in found.items() if v is not None}


def build_features(
    spark: SparkSession, as_of: date | Iterable[date], settings: Settings | None = None
) -> list[date]:
    """Compute and write gold.enterprise_features for the as-of date(s); idempotent per date.

    Each row records the Delta versions of the silver inputs it was computed from.
    """
    s = settings or get_settings()
    dates = sorted({as_of} if isinstance(as_of, date) else set(as_of))
    target = tables.enterprise_features(s)
    tables.ensure(spark, target, s)
    versions = json.dumps(input_versions(spark, s), sort_keys=True)
    df = features_frame(spark, dates, s).select(
        *[c for c in target.columns if c not in ("_input_versions", "_built_at")],
        F.lit(versions).alias("_input_versions"),
        F.current_timestamp().alias("_built_at"),
    )
    tables.replace(df, target, s, as_of=dates)
    return dates


def read_features(
    spark: SparkSession, as_of: Iterable[date] | None = None, settings: Settings | None = None
) -> DataFrame:
    """gold.enterprise_features, optionally only some as-of dates."""
    df = tables.read(spark, tables.ENTERPRISE_FEATURES, settings)
    if as_of is not None:
        df = df.where(F.col("as_of").isin(sorted(set(as_of))))
    return df


__all__ = [
    "SEGMENTS",
    "attribute_value",
    "build_features",
    "event_kinds",
    "features_frame",
    "month_starts",
    "read_features",
    "street_key",
]
