"""Personal data: the retention policy, erasure of one person, and a scan proving that nothing
derived from bronze (silver, gold, quarantine, audit, the serving mart, lists, plans, reports,
Data Docs) carries a raw ID number, phone number or legal representative's name.

Retention and erasure run on hand-made extracts landed through the real ingest; the scan runs
on the session's downstream world (the delivered world + model, scores, tiers, plans, lists,
marts, as the BI tests use it).
"""

from __future__ import annotations

import contextlib
import csv
import html.parser
import json
import re
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from pipelines import privacy
from pipelines.ingest import land_day
from warehouse import contracts, tables

OLD, NEW = date(2023, 3, 1), date(2026, 10, 29)
# name, ID number, phone; 赵六 is only in the old delivery; 王五 has no ID number, and a
# namesake 王五 has one (an identity is the ID number, or the name only where none was given)
P_ZHAO = ("赵六", "110101197001011111", "13500000005")
P_ZHANG = ("张三丰", "110101198001011234", "13800000001")
P_LI = ("李四", "11010119900202234X", "13900000002")
P_WANG = ("王五", "", "13700000003")
P_WANG2 = ("王五", "110101196006063333", "13700000006")


def _registry_row(uscc: str, person: tuple[str, str, str], changed: str) -> list[str]:
    name, id_number, phone = person
    return [uscc, f"{uscc[-4:]}商贸有限公司", "有限责任公司", "100万元", "2015-01-01", "110101",
            "F", "存续", name, id_number, phone, "北京市东城区某路1号", changed, ""]  # fmt: skip


def _headers(source: str) -> list[str]:
    """The demo bureau's headers of ``source``, in canonical field order."""
    m = contracts.mapping(source)
    return [m.header_of(f) for f in contracts.CANONICAL[source].fields]


def _write_delivery(landing: Path, day: date, registry: list[list[str]], complaints) -> None:
    folder = landing / day.isoformat()
    folder.mkdir(parents=True)
    with (folder / "registry.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([_headers("registry"), *registry])
    with (folder / "complaint.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([_headers("complaint"), *complaints])


@pytest.fixture()
def landed(spark, settings):
    """Two hand-made deliveries (an old one and a recent one) landed into bronze."""
    landing = Path(settings.landing_root)
    _write_delivery(
        landing, OLD,
        [_registry_row("91110101000000001A", P_ZHAO, "2023-02-01"),
         _registry_row("91110101000000002B", P_ZHANG, "2023-02-01"),
         _registry_row("91110101000000003C", P_ZHANG, "2023-02-02")],
        [["C-1", "91110101000000001A", "2023-02-03", "价格", "12315", P_ZHAO[2]]],
    )  # fmt: skip
    _write_delivery(
        landing, NEW,
        [_registry_row("91110101000000002B", P_ZHANG, "2026-10-01"),
         _registry_row("91110101000000004D", P_LI, "2026-10-01"),
         _registry_row("91110101000000005E", P_WANG, "2026-10-01"),
         _registry_row("91110101000000006F", P_WANG2, "2026-10-01")],
        [["C-2", "91110101000000004D", "2026-10-02", "质量", "12315", P_ZHANG[2]],
         ["C-3", "91110101000000005E", "2026-10-03", "质量", "网站", "13600000004"]],
    )  # fmt: skip
    for day in (OLD, NEW):
        assert {r.status for r in land_day(spark, landing, day, settings)} == {"landed"}
    return settings


def _bronze(spark, settings, source: str) -> list[dict]:
    return [r.asDict() for r in tables.read(spark, tables.BRONZE[source], settings).collect()]


def _on_disk(table_dir: Path) -> str:
    """Everything readable under a Delta table folder: every value of every data file (also
    files no version references any more) and the text of its log."""
    parts = []
    for f in table_dir.rglob("*.parquet"):
        if "_delta_log" in f.parts:
            continue
        for col in pq.read_table(f).to_pylist():
            parts += [str(v) for v in col.values()]
    for f in (table_dir / "_delta_log").rglob("*"):
        # (the dot files beside them are Hadoop's binary checksums of these files)
        if f.is_file() and not f.name.startswith(".") and f.suffix in (".json", ".crc"):
            parts.append(f.read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_reviewed_retention_policy_covers_every_source_with_personal_data():
    pol = privacy.load_policy()
    with_personal = {n for n, t in tables.BRONZE.items() if t.personal}
    assert with_personal == {"registry", "complaint"} == set(pol.sources)
    assert pol.sources["registry"].fields == ("legal_rep", "legal_rep_id", "phone")
    assert pol.time_travel_hours == 168 and pol.version
    for bad, message in (
        ({"sources": {"registry": {"null_after_days": 30}}}, "no entry for sources"),
        ({"sources": {"nosuch": {"null_after_days": 3}}}, "unknown source"),
        ({"sources": {"penalty": {"null_after_days": 3}}}, "no personal fields"),
        ({"sources": {"registry": {"null_after_days": 3, "fields": ["uscc"]}},
          "complaint": {"null_after_days": 3}}, "may only name its personal fields"),
    ):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            privacy.parse_policy(bad)
    # every personal field is part of some identity erasure looks for
    for name, t in tables.BRONZE.items():
        ids = privacy.IDENTITIES.get(name) or tuple((f,) for f in t.personal)
        assert set(t.personal) == {f for i in ids for f in i}, name


def test_bronze_keeps_no_statistics_of_personal_fields_in_its_log(spark, landed):
    log = _on_disk(Path(tables.BRONZE["registry"].path(landed))).split("\n")
    text = "\n".join(line for line in log if line.startswith("{"))  # the log, not data files
    assert P_ZHANG[1] not in text and P_ZHANG[2] not in text and P_ZHANG[0] not in text
    assert "91110101000000002B" in text  # other columns keep their statistics


def test_retention_nulls_old_personal_fields_and_vacuums_their_files(spark, landed, tmp_path):
    from pipelines.ingest import record_hash

    policy = tmp_path / "retention.yaml"
    policy.write_text(
        "version: test\ntime_travel_hours: 0\nsources:\n  registry:\n    null_after_days: 365\n"
        "  complaint:\n    null_after_days: 365\n",
        encoding="utf-8",
    )
    s = landed.replace(retention_policy=str(policy))
    fields = privacy.business_fields(tables.BRONZE["registry"])
    stored = tables.read(spark, tables.BRONZE["registry"], s)
    # the recomputed hash is the landing hash while nothing is nulled
    assert stored.where(F.col("_record_hash") != record_hash(fields)).count() == 0
    assert stored.where(
        F.col("_record_hash") != privacy.hash_after_nulling(fields, set())
    ).count() == 0  # fmt: skip

    dry = privacy.apply_retention(spark, s, today=date(2026, 11, 1), dry_run=True)
    assert {r.source: r.rows_nulled for r in dry} == {"registry": 3, "complaint": 1}
    assert _bronze(spark, s, "registry")[0]["legal_rep_id"] is not None  # nothing changed

    done = privacy.apply_retention(spark, s, today=date(2026, 11, 1))
    assert {r.source: r.rows_nulled for r in done} == {"registry": 3, "complaint": 1}
    assert all(r.files_removed >= 1 for r in done)
    for row in _bronze(spark, s, "registry"):
        old = row["_run_date"] == OLD
        assert (row["legal_rep"] is None) == old and (row["phone"] is None) == old, row
        assert row["uscc"] and row["name"]  # only personal fields are nulled
    nulled = tables.read(spark, tables.BRONZE["registry"], s).where(F.col("_run_date") == OLD)
    after = privacy.hash_after_nulling(fields, {"legal_rep", "legal_rep_id", "phone"})
    assert nulled.where(F.col("_record_hash") != after).count() == 0
    assert nulled.where(F.col("_record_hash") == record_hash(fields)).count() == 3  # == of NULLs
    disk = _on_disk(Path(tables.BRONZE["registry"].path(s)))
    assert P_ZHAO[1] not in disk and P_ZHAO[2] not in disk and P_ZHAO[0] not in disk
    assert P_LI[1] in disk  # recent rows keep their raw fields
    complaint = _on_disk(Path(tables.BRONZE["complaint"].path(s)))
    assert P_ZHAO[2] not in complaint and P_ZHANG[2] in complaint

    again = privacy.apply_retention(spark, s, today=date(2026, 11, 1))
    assert {r.rows_nulled for r in again} == {0}
    events = tables.read(spark, tables.AUDIT_EVENTS, s).where("event = 'retention'").collect()
    assert len(events) == 2 and json.loads(events[0]["versions"])["retention_policy"] == "test"


def _person_token(spark, settings, rows_of: str) -> str:
    """legal_rep_token as silver.dim_enterprise computes it, for the bronze row of ``rows_of``."""
    from pipelines.conform import dim_enterprise
    from pipelines.conform._common import staging, with_raw

    bronze = tables.read(spark, tables.BRONZE["registry"], settings).where(F.col("uscc") == rows_of)
    staged = dim_enterprise.stage(with_raw(bronze, "registry"), staging("registry", settings))
    return staged.select("legal_rep_token").first()[0]


def test_erase_a_person_by_id_number_phone_or_token_leaves_no_raw_value(spark, landed):
    s = landed
    registry_dir = Path(tables.BRONZE["registry"].path(s))
    assert P_ZHANG[1] in _on_disk(registry_dir)

    by_id = privacy.erase(spark, s, id_number=f" {P_ZHANG[1]} ", reason="申请 2026-001")
    assert by_id.given_as == "id_number" and by_id.rows_nulled == {"bronze.registry": 3}
    assert by_id.files_removed["bronze.registry"] >= 1
    by_phone = privacy.erase(spark, s, phone=P_ZHANG[2])  # the complaint he filed
    assert by_phone.rows_nulled == {"bronze.complaint": 1}
    # 王五 has no ID number: silver identifies him by name; his namesake with an ID stays
    wang = _person_token(spark, s, "91110101000000005E")
    assert wang != _person_token(spark, s, "91110101000000006F")
    by_token = privacy.erase(spark, s, person=wang)
    assert by_token.rows_nulled == {"bronze.registry": 1}

    rows = {r["uscc"]: r for r in _bronze(spark, s, "registry")}
    assert {u for u, r in rows.items() if r["legal_rep"] is None} == {
        "91110101000000002B", "91110101000000003C", "91110101000000005E"
    }  # fmt: skip
    assert rows["91110101000000006F"]["legal_rep"] == "王五"  # the namesake
    assert rows["91110101000000004D"]["legal_rep_id"] == P_LI[1]
    disk = _on_disk(registry_dir) + _on_disk(Path(tables.BRONZE["complaint"].path(s)))
    for value in (P_ZHANG[1], P_ZHANG[2], P_ZHANG[0], P_WANG[2]):
        assert value not in disk, value
    assert P_LI[1] in disk and P_WANG2[1] in disk
    with pytest.raises(Exception, match="(?i)not.*exist|FileNotFound|FILE_NOT_EXIST"):
        spark.read.format("delta").option("versionAsOf", 1).load(str(registry_dir)).collect()

    events = tables.read(spark, tables.AUDIT_EVENTS, s).where("event = 'erasure'").collect()
    assert len(events) == 3
    first = next(e for e in events if e["event_id"] == by_id.event_id)
    assert first["subject"] == f"person {by_id.token}" and first["outcome"] == "succeeded"
    assert json.loads(first["details"])["reason"] == "申请 2026-001"
    assert first["os_user"] and first["host"] and first["pid"] > 0
    audit_text = json.dumps([e.asDict() for e in events], default=str, ensure_ascii=False)
    assert P_ZHANG[1] not in audit_text and P_ZHANG[2] not in audit_text  # tokens only

    with pytest.raises(ValueError, match="exactly one"):
        privacy.erase(spark, s, id_number=P_LI[1], phone=P_LI[2])
    with pytest.raises(ValueError, match="not a personal-data token"):
        privacy.erase(spark, s, person="张三丰")


# ---- the scan: no raw personal value outside bronze --------------------------------------

ID_LIKE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
PHONE_LIKE = re.compile(r"(?<!\d)(?:1\d{10}|0\d{2,3}-?\d{7,8})(?!\d)")
_FULL = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)})


def _forms(value: str) -> set[str]:
    v = value.strip()
    return {v, v.translate(_FULL), v.translate(_FULL).upper()} - {""}


class _Texts(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data.strip())


def _cells_of(path: Path) -> tuple[list[str], str]:
    """(exact cell / text-node / JSON-leaf values, the whole text) of one output file."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        cells = [str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True)
                 for c in row if c is not None]  # fmt: skip
        book.close()
        return cells, "\n".join(cells)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if suffix == ".csv":
        return [c.strip() for row in csv.reader(text.splitlines()) for c in row], text
    if suffix in (".html", ".htm"):
        parser = _Texts()
        parser.feed(text)
        return parser.texts, text
    if suffix == ".json":
        leaves: list[str] = []

        def walk(v) -> None:
            if isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
            elif v is not None:
                leaves.append(str(v).strip())

        with contextlib.suppress(ValueError):
            walk(json.loads(text))
        return leaves, text
    return [], text


def _found(cells, text: str, ids: set, phones: set, names: set) -> set[str]:
    found = (set(ID_LIKE.findall(text)) | {m.upper() for m in ID_LIKE.findall(text)}) & ids
    found |= set(PHONE_LIKE.findall(text)) & phones
    found |= {c for c in cells if c in ids or c in phones or c in names}
    return found


def test_no_raw_personal_data_outside_bronze(downstream_world):
    import duckdb
    from deltalake import DeltaTable

    from warehouse import serving

    s = downstream_world
    lake = Path(s.lake_root)
    ids: set[str] = set()
    phones: set[str] = set()
    names: set[str] = set()
    for table in tables.BRONZE.values():
        if not table.personal:
            continue
        df = DeltaTable(table.path(s)).to_pandas(columns=list(table.personal))
        for field in table.personal:
            values = {f for v in df[field].dropna() for f in _forms(str(v))}
            {"legal_rep": names, "legal_rep_id": ids}.get(field, phones).update(values)
    # staff are named on lists on purpose: a representative who shares an inspector's name
    # would be a false alarm, so those names are left out (and counted)
    roster = DeltaTable(tables.DIM_INSPECTOR.path(s)).to_pandas(columns=["name"])
    staff = names & set(roster["name"].dropna())
    names -= staff
    names = {n for n in names if len(n) >= 2}
    assert len(ids) > 1000 and len(phones) > 1000 and len(names) > 500, (
        len(ids), len(phones), len(names))  # fmt: skip

    leaks: dict[str, set[str]] = {}
    scanned: dict[str, int] = {}

    def check(where: str, cells, text: str) -> None:
        kind = where.split(":")[0]
        scanned[kind] = scanned.get(kind, 0) + 1
        hit = _found(cells, text, ids, phones, names)
        if hit:
            leaks[where] = hit

    # positive control: the same scan finds them in bronze
    reg = DeltaTable(tables.BRONZE["registry"].path(s)).to_pandas()
    control = reg.astype(str).to_numpy().ravel().tolist()
    assert _found(control, "\n".join(control), ids, phones, names)

    for log in sorted(lake.rglob("_delta_log")):
        name = str(log.parent.relative_to(lake))
        if name.startswith("bronze/"):
            continue
        df = DeltaTable(str(log.parent)).to_pandas().astype(str)
        cells = df.to_numpy().ravel().tolist()
        check(f"table:{name}", cells, "\n".join(cells))
        logs = [p.read_text(encoding="utf-8") for p in log.glob("*.json")]
        check(f"delta log:{name}", [], "\n".join(logs))
    store = serving.duckdb_path(s.serving_store())
    with duckdb.connect(str(store), read_only=True) as con:
        for (mart,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            rows = con.execute(f'SELECT * FROM "{mart}"').fetchall()
            cells = [str(v).strip() for r in rows for v in r if v is not None]
            check(f"mart:{mart}", cells, "\n".join(cells))
    folders = {
        "list": Path(s.outputs_root) / "lists",
        "plan": Path(s.outputs_root) / "plans",
        "report": Path(s.reports_dir()),
        "data docs": Path(s.data_docs_dir()),
    }
    for kind, folder in folders.items():
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            if f.suffix.lower() in (".png", ".ico", ".woff", ".woff2", ".ttf", ".gif", ".svg"):
                continue
            cells, text = _cells_of(f)
            check(f"{kind}:{f.relative_to(folder)}", cells, text)
    print({"scanned": scanned, "ids": len(ids), "phones": len(phones), "names": len(names),
           "names shared with inspectors (left out)": len(staff)})  # fmt: skip
    assert scanned.get("table", 0) >= 15 and scanned.get("mart", 0) >= 8
    for kind in ("list", "plan", "report", "data docs"):
        assert scanned.get(kind, 0) >= 1, f"no {kind} files to scan"
    assert not leaks, {k: sorted(v)[:5] for k, v in leaks.items()}
