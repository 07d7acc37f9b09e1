"""Quality governance units: gate policy, custom GX expectations on Spark and on pandas (a
small batch is collected), ledger idempotency."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from quality import ledger
from quality.engine import validate
from quality.expectations import ExpectNaturalKeyUnique
from quality.policy import blocking_rules, parse_policy
from quality.rules import (
    known_enterprise,
    known_region,
    non_negative,
    removal_after_entry,
    required,
    valid_uscc,
)

# Built from DOMAIN.md by hand: 91 110105 MA01ABCDE + check. Values 9,1,1,1,0,1,0,5,21(M),
# 10(A),0,1,10(A),11(B),12(C),13(D),14(E) × weights 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,
# 30,28 = 9+3+9+27+0+26+0+85+420+290+0+13+80+264+120+390+392 = 2128; 2128 mod 31 = 20;
# 31 - 20 = 11 → 'B'.
GOOD_USCC = "91110105MA01ABCDEB"
BAD_USCC = "91110105MA01ABCDE0"


def test_policy_lookup_order_and_blocking_rules():
    policy = parse_policy(
        {
            "version": "t1",
            "default": "block",
            "expectations": {"volume": "warn"},
            "tables": {
                "silver.fct_penalty": {"non_negative_amount_yuan": "warn"},
                "bronze.*": {"volume": "block"},
                "silver.fct_inspection": {"*": "warn"},
            },
        }
    )
    assert policy.gate("bronze.penalty", "volume") == "block"  # table pattern beats global
    assert policy.gate("silver.fct_penalty", "volume") == "warn"  # global entry
    assert policy.gate("silver.fct_penalty", "non_negative_amount_yuan") == "warn"
    assert policy.gate("silver.fct_complaint", "non_negative_amount_yuan") == "block"
    assert policy.gate("silver.fct_inspection", "uscc_check_digit") == "warn"
    rules = [required("uscc"), non_negative("amount_yuan")]
    assert [r.name for r in blocking_rules("silver.fct_penalty", rules, policy)] == [
        "required_uscc"
    ]
    with pytest.raises(ValueError, match="must be one of"):
        parse_policy({"default": "stop"})


# quality_pandas_max_rows: 0 validates on Spark; 1,000 collects these few rows to pandas.
ENGINES = pytest.mark.parametrize("pandas_max_rows", [0, 1_000], ids=["spark", "pandas"])


@ENGINES
def test_custom_expectations_count_what_the_rule_filters(spark, settings, pandas_max_rows):
    settings = settings.model_copy(update={"quality_pandas_max_rows": pandas_max_rows})
    rules = [
        required("uscc"),
        valid_uscc(),
        known_region("region_code"),
        non_negative("amount_yuan"),
        removal_after_entry(),
        known_enterprise(),
    ]
    rows = [
        # uscc, region (and its first year in GB/T 2260: None = no such code), amount,
        # entered, removed, known, file row
        (GOOD_USCC, "110105", 1980, 10.0, date(2024, 1, 1), None, True, 1),
        (BAD_USCC, "110199", None, -5.0, date(2024, 1, 1), date(2023, 12, 1), True, 2),
        (None, "310101", 1980, 0.0, date(2024, 1, 1), date(2024, 2, 1), False, 3),
        (GOOD_USCC, "110105", 1980, None, date(2024, 1, 1), None, False, 4),
    ]
    df = spark.createDataFrame(
        rows,
        "uscc string, region_code string, _region_code_from int, amount_yuan double, "
        "entered_on date, removed_on date, _known_enterprise boolean, _source_row long",
    ).withColumn("_source_file", F.lit("2024-01-02/penalty.csv"))
    policy = parse_policy({"version": "t2", "tables": {"t": {"enterprise_known": "warn"}}})
    from quality.suites import incoming_expectations

    results = validate(
        settings,
        suite_name="t.incoming.unit",
        dataset="t.incoming.unit",
        df=df,
        expectations=incoming_expectations("t", rules, df, policy)
        + [
            ExpectNaturalKeyUnique(
                column_list=["uscc", "region_code"],
                meta={"name": "key_unique", "gate": "block", "threshold": "0"},
            )
        ],
        run_date=date(2024, 1, 2),
        table_name="t",
        source="unit",
        policy_version=policy.version,
    )
    by_name = {r.expectation: r for r in results}
    for rule in rules:
        expected = df.where(rule.column()).count()
        got = by_name[rule.name]
        assert got.unexpected_count == expected, rule.name
        assert got.element_count == 4
        assert got.success == (expected == 0)
    assert by_name["uscc_check_digit"].unexpected_count == 1
    assert by_name["uscc_check_digit"].expectation_type == "expect_uscc_check_digit"
    assert by_name["uscc_check_digit"].outcome == "quarantined"
    assert by_name["uscc_check_digit"].rows_quarantined == 1
    assert by_name["enterprise_known"].outcome == "warned"
    assert by_name["enterprise_known"].rows_quarantined == 0
    assert by_name["key_unique"].observed_value == "2"  # two rows share (GOOD_USCC, 110105)
    assert by_name["key_unique"].outcome == "blocked"


def test_file_checks_and_the_engine_choice_give_the_same_ledger_rows(spark, tmp_path):
    from quality.policy import policy_for
    from quality.suites import file_expectations
    from tests.conftest import make_settings

    log = spark.createDataFrame(
        [
            ("/d/2024-01-02/b.csv", "landed", "ok", ["备注"], []),
            ("/d/2024-01-02/a.csv", "rejected", "a.csv: 编码无法识别 / unknown encoding", [], []),
            ("/d/2024-01-02/c.csv", "landed", "ok", [], ["金额"]),
            ("/d/2024-01-02/d.csv", "skipped", "already landed", [], []),
        ],
        "source_file string, status string, message string, unmapped_columns array<string>, "
        "missing_columns array<string>",
    )
    got = {}
    for engine, max_rows in (("spark", 0), ("pandas", 100)):
        s = make_settings(tmp_path / engine).model_copy(
            update={"quality_pandas_max_rows": max_rows}
        )
        got[engine] = validate(
            s, suite_name="bronze.penalty.files", dataset="bronze.penalty.files", df=log,
            expectations=file_expectations("bronze.penalty", policy_for(s)),
            run_date=date(2024, 1, 2), table_name="bronze.penalty", source="penalty",
            policy_version="t",
        )  # fmt: skip
    assert got["spark"] == got["pandas"]
    by_name = {r.expectation: r for r in got["pandas"]}
    assert by_name["file_accepted"].observed_value == "a.csv: 编码无法识别 / unknown encoding"
    assert by_name["columns_mapped"].observed_value == (
        "b.csv: 未映射列 / unmapped ['备注'], 缺少列 / missing []; "
        "c.csv: 未映射列 / unmapped [], 缺少列 / missing ['金额']"
    )


def test_ledger_merge_is_idempotent(spark, settings):
    from quality.engine import CheckResult

    def result(observed: str, outcome: str = "passed") -> CheckResult:
        return CheckResult(
            date(2024, 1, 2), "silver.t", "-", "key_unique", "expect_natural_key_unique",
            "silver.t", None, None, "block", outcome, outcome == "passed", observed, "0", None,
            None, None, 0, "v1",
        )  # fmt: skip

    ledger.write(spark, [result("0")], settings)
    first = ledger.read(spark, settings).collect()
    ledger.write(spark, [result("0")], settings)
    assert ledger.read(spark, settings).collect() == first  # validated_at kept too
    # A re-run reaching the same verdict on a bigger table keeps the first entry ...
    ledger.write(spark, [result("0 of 133 rows")], settings)
    assert ledger.read(spark, settings).collect() == first
    # ... a changed verdict replaces it.
    ledger.write(spark, [result("3", "blocked")], settings)
    rows = ledger.read(spark, settings).collect()
    assert len(rows) == 1 and (rows[0].observed_value, rows[0].outcome) == ("3", "blocked")


def test_region_rules_read_the_national_list_with_validity(spark):
    from pipelines.conform._common import with_region_validity
    from quality.rules import in_jurisdiction, region_in_force, uscc_region_in_force

    rows = [
        # region code, approved on, delivered on, region inside the USCC
        ("110103", date(2005, 3, 1), date(2026, 10, 28), "110105"),  # 崇文区, in force then
        ("110103", date(2015, 3, 1), date(2026, 10, 28), "110103"),  # retired 2010, gone now
        ("330109", date(1994, 6, 1), date(2026, 10, 28), "330109"),  # re-coded version: today's
        ("110199", date(2020, 1, 1), date(2026, 10, 28), "440300"),  # no such code
        ("440300", date(2020, 1, 1), date(2026, 10, 28), "350100"),  # city level codes
    ]
    df = spark.createDataFrame(
        rows, "region_code string, changed_on date, _run_date date, uscc_region string"
    )
    df = with_region_validity(spark, with_region_validity(spark, df, "region_code"), "uscc_region")
    rules = [
        known_region("region_code"),
        region_in_force("region_code", "changed_on"),
        uscc_region_in_force(),
        in_jurisdiction("region_code", ["11", "4403"]),
    ]
    got = {
        (r.region_code, r.changed_on.year): [n for n in (x.name for x in rules) if r[n]]
        for r in df.select(
            "region_code", "changed_on", *[x.column().alias(x.name) for x in rules]
        ).collect()
    }
    assert got == {
        ("110103", 2005): [],
        ("110103", 2015): ["region_in_force_region_code", "region_known_uscc_region"],
        ("330109", 1994): ["in_jurisdiction_region_code"],
        ("110199", 2020): ["region_known_region_code"],
        ("440300", 2020): [],
    }
