"""Ingest: a delivery folder's files → bronze Delta tables, one per source.

Every file in ``<landing>/<date>/`` is matched against the source mappings in force
(:func:`warehouse.contracts.mappings`) by its name. A file that matches no mapping, or more
than one, is not landed but logged (``unmatched`` / ``rejected``) so the bronze gate and the
rectification reports name it. A matched file lands with its raw text and lineage (file, row,
batch, time, record hash); columns the mapping does not name are kept in ``_extra``; rows that
cannot be split are quarantined with the reason. Per file and run, rows read = rows landed +
rows quarantined, recorded in ``audit.ingest_log``. A file whose checksum already landed is
skipped, so re-running a day changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.ingest.layout import IngestError, Layout, layout
from pipelines.ingest.readers import MAX_LINE_CHARS, detect_encoding, file_checksum, read_file
from pipelines.normalise import token
from pipelines.quarantine import write_quarantine
from warehouse import contracts, tables
from warehouse.contracts import SourceMapping
from warehouse.settings import Settings, get_settings

UNMATCHED = "_unmatched"  # the ingest log's source of a file no mapping claims

__all__ = [
    "UNMATCHED",
    "IngestError",
    "IngestResult",
    "Layout",
    "delivery_files",
    "detect_encoding",
    "file_checksum",
    "land_day",
    "land_file",
    "layout",
    "match",
    "record_hash",
]


@dataclass(frozen=True)
class IngestResult:
    """What happened to one file."""

    source: str  # the mapping's source, or UNMATCHED
    file: str
    batch_id: str
    status: str  # landed | skipped (already landed) | rejected | unmatched
    rows_read: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    encoding: str = ""
    message: str = ""
    unmapped: tuple[str, ...] = field(default=())
    missing: tuple[str, ...] = field(default=())
    checksum: str = ""


def batch_id_for(source: str, run_date: date, checksum: str) -> str:
    """Deterministic batch id: the same file landed for the same day gets the same id."""
    return f"{source}:{run_date.isoformat()}:{checksum[:16]}"


def delivery_files(folder: Path) -> list[Path]:
    """Every entry of a delivery folder, by name: files, and anything else (a sub-folder, a
    symbolic link), which :func:`land_day` refuses with a reason rather than skipping."""
    if not folder.is_dir():
        return []
    return sorted(folder.iterdir())


def match(file_name: str, mappings: dict[str, SourceMapping]) -> list[SourceMapping]:
    """The mappings whose file patterns claim ``file_name``."""
    return [m for m in mappings.values() if m.matches(file_name)]


def record_hash(fields: tuple[str, ...] | list[str]) -> Column:
    """SHA-256 over a row's business fields (NULL and empty kept distinct)."""
    return F.sha2(
        F.concat_ws("\u001f", *(F.coalesce(F.col(f), F.lit("\u0000")) for f in fields)), 256
    )


def _log(spark: SparkSession, row: dict, settings: Settings, into: list[dict] | None) -> None:
    """Keep the file's ingest-log row in ``into`` (the caller writes the day's rows at once),
    or write it now when ``into`` is None."""
    if into is not None:
        into.append(row)
    else:
        write_log(spark, [row], settings)


def write_log(spark: SparkSession, rows: list[dict], settings: Settings) -> None:
    """Write ingest-log rows in one commit, replacing earlier attempts of the same batches."""
    latest = list({r["batch_id"]: r for r in rows}.values())  # a batch logged twice: the last
    if latest:
        log = spark.createDataFrame(latest, tables.INGEST_LOG.schema)
        batches = [r["batch_id"] for r in latest]
        tables.replace(log, tables.INGEST_LOG, settings, batch_id=batches)


def _log_row(result: IngestResult, run_date: date, path: Path, checksum: str, mapping: str,
             at: datetime) -> dict:  # fmt: skip
    return {
        "batch_id": result.batch_id,
        "run_date": run_date,
        "source": result.source,
        "source_file": str(path),
        "checksum": checksum,
        "encoding": result.encoding,
        "status": result.status,
        "message": result.message,
        "rows_read": result.rows_read,
        "rows_landed": result.rows_landed,
        "rows_quarantined": result.rows_quarantined,
        "mapping": mapping,
        "unmapped_columns": list(result.unmapped),
        "missing_columns": list(result.missing),
        "ingested_at": at,
    }


def _landed_checksums(spark: SparkSession, settings: Settings) -> dict[str, str]:
    """checksum → batch id of every file that landed."""
    log = tables.read(spark, tables.INGEST_LOG, settings).where(F.col("status") == "landed")
    return {r["checksum"]: r["batch_id"] for r in log.select("checksum", "batch_id").collect()}


def land_file(
    spark: SparkSession,
    mapping: SourceMapping,
    path: Path,
    run_date: date,
    settings: Settings | None = None,
    landed: dict[str, str] | None = None,
    log_rows: list[dict] | None = None,
) -> IngestResult:
    """Land one extract file into ``bronze.<source>``; quarantine what cannot be split.

    Idempotent: a file whose checksum already landed is skipped (``landed``: checksum → batch
    of the files known to have landed, read from the ingest log when not given); the same
    bytes delivered again on another day get a ``skipped`` log row, so the delivery counts.
    A crashed landing is redone by replacing the batch's rows (``replaceWhere`` on the
    deterministic batch id). The file's ingest-log row is written before returning, or kept
    in ``log_rows`` for the caller to write (:func:`land_day` writes a day's rows at once;
    a run killed before that re-lands the day's files, which replaces their batches).
    """
    s = settings or get_settings()
    checksum = file_checksum(path)
    batch_id = batch_id_for(mapping.source, run_date, checksum)
    mapping_name = Path(mapping.path).name
    earlier = (landed if landed is not None else _landed_checksums(spark, s)).get(checksum)
    if earlier is not None:
        result = IngestResult(
            mapping.source, str(path), batch_id, "skipped",
            message=f"already landed as {earlier}", checksum=checksum,
        )  # fmt: skip
        if earlier != batch_id:  # a re-run of the landing day itself leaves the log as it is
            row = _log_row(result, run_date, path, checksum, mapping_name, datetime.now())
            _log(spark, row, s, log_rows)
        return result
    ingested_at = datetime.now()
    try:
        raw, lay, encoding = read_file(spark, mapping, path)
    except IngestError as exc:
        result = IngestResult(
            mapping.source, str(path), batch_id, "rejected", message=str(exc), checksum=checksum
        )
        _log(spark, _log_row(result, run_date, path, checksum, mapping_name, ingested_at), s,
             log_rows)  # fmt: skip
        return result
    spec = mapping.canonical
    raw = raw.withColumns(
        {
            "_source_file": F.lit(str(path)),
            "_batch_id": F.lit(batch_id),
            "_run_date": F.lit(run_date),
            "_ingested_at": F.lit(ingested_at),
            "_record_hash": record_hash(spec.fields),
        }
    ).cache()
    try:
        bronze_table = tables.BRONZE[spec.name]
        good = raw.where(F.col("_problem").isNull()).select(*bronze_table.columns)
        bad = _quarantine_rows(
            raw.where(F.col("_problem").isNotNull()), mapping, lay, s.resolved_pii_key()
        )
        tables.replace(good, bronze_table, s, _run_date=run_date, _batch_id=batch_id)
        write_quarantine(spark, bad, s, source=spec.name, stage="ingest", _batch_id=batch_id)
        totals = raw.agg(F.count("*").alias("read"), F.count("_problem").alias("bad")).first()
        read_n, bad_n = int(totals["read"]), int(totals["bad"])
    finally:
        raw.unpersist()
    result = IngestResult(
        spec.name, str(path), batch_id, "landed", read_n, read_n - bad_n, bad_n, encoding,
        unmapped=lay.unmapped, missing=lay.missing, checksum=checksum,
    )  # fmt: skip
    _log(spark, _log_row(result, run_date, path, checksum, mapping_name, ingested_at), s,
         log_rows)  # fmt: skip
    return result


# Why a line could not land: ingest-stage check name → reason (Chinese / English).
LINE_PROBLEMS = {
    "decodable": "含无法解码的字符 / contains bytes that cannot be decoded",
    "control_chars": "含控制字符（如NUL） / contains control characters such as NUL",
    "line_length": f"行过长（超过{MAX_LINE_CHARS:,}字符） / longer than {MAX_LINE_CHARS:,} "
    "characters",
    "formula": "单元格含公式 / a cell holds a formula, not data",
}
_CHECK_OF = {"undecodable": "decodable", "too_long": "line_length"}


def _quarantine_rows(bad: DataFrame, mapping: SourceMapping, lay: Layout, key: str) -> DataFrame:
    expected = lay.width
    is_count = F.col("_problem").startswith("field_count:")
    found = F.regexp_extract("_problem", r"(\d+)$", 1)
    check = F.when(is_count, F.lit("field_count")).otherwise(
        F.coalesce(
            F.element_at(F.create_map(*[F.lit(x) for kv in _CHECK_OF.items() for x in kv]),
                         F.col("_problem")),
            F.col("_problem"),
        )
    )  # fmt: skip
    reasons = F.create_map(*[F.lit(x) for kv in LINE_PROBLEMS.items() for x in kv])
    reason = F.when(
        is_count,
        F.concat(
            F.lit(f"字段个数不符：应为{expected}个，实为"),
            found,
            F.lit(f"个 / field count mismatch: expected {expected}, got "),
            found,
        ),
    ).otherwise(F.element_at(reasons, check))
    # A line that cannot be split cannot be masked field by field: keep it only for sources
    # without personal data; otherwise the file and row number identify it for the source.
    payload = (
        F.to_json(F.struct(F.col("_raw_line").alias("line")))
        if not mapping.canonical.pii
        else F.to_json(F.struct(token(F.col("_raw_line"), key).alias("line_token")))
    )
    return bad.select(
        F.lit(mapping.source).alias("source"),
        F.lit("ingest").alias("stage"),
        check.alias("check_name"),
        F.array(check).alias("checks"),
        F.lit(None).cast("string").alias("field"),
        F.lit(None).cast("string").alias("value"),
        reason.alias("reason"),
        payload.alias("payload"),
        "_source_file",
        "_source_row",
        "_batch_id",
        "_run_date",
        F.col("_ingested_at").alias("quarantined_at"),
        F.lit(None).cast("date").alias("replayed_on"),
        F.lit(None).cast("boolean").alias("released"),
    )


def _not_landed(
    spark: SparkSession,
    source: str,
    path: Path,
    run_date: date,
    status: str,
    message: str,
    settings: Settings,
    log_rows: list[dict] | None = None,
) -> IngestResult:
    """Log a file that is not landed (unmatched, claimed by several mappings, not a regular
    file: its checksum is then that of its name)."""
    regular = path.is_file() and not path.is_symlink()
    checksum = file_checksum(path) if regular else hashlib.sha256(path.name.encode()).hexdigest()
    result = IngestResult(source, str(path), batch_id_for(source, run_date, checksum), status,
                          message=message, checksum=checksum)  # fmt: skip
    _log(spark, _log_row(result, run_date, path, checksum, "", datetime.now()), settings,
         log_rows)  # fmt: skip
    return result


def land_day(
    spark: SparkSession,
    landing_root: Path,
    run_date: date,
    settings: Settings | None = None,
) -> list[IngestResult]:
    """Land every file delivered for ``run_date`` (``<landing>/<date>/``) by the mappings in
    force. A missing folder lands nothing (the bronze gate reports the missing deliveries)."""
    s = settings or get_settings()
    mappings = contracts.mappings(s)
    landed = _landed_checksums(spark, s)
    results: list[IngestResult] = []
    log_rows: list[dict] = []  # one ingest-log commit per day, not one per file
    try:
        _land_files(spark, landing_root, run_date, s, mappings, landed, results, log_rows)
    finally:  # a file that failed unexpectedly still leaves the rows of those before it
        write_log(spark, log_rows, s)
    return results


def _land_files(spark: SparkSession, landing_root: Path, run_date: date, s: Settings,
                mappings: dict[str, SourceMapping], landed: dict[str, str],
                results: list[IngestResult], log_rows: list[dict]) -> None:  # fmt: skip
    for path in delivery_files(Path(landing_root) / run_date.isoformat()):
        claims = match(path.name, mappings)
        if path.is_symlink() or not path.is_file():
            kind = "符号链接 / a symbolic link" if path.is_symlink() else "文件夹 / a folder"
            results.append(
                _not_landed(
                    spark,
                    claims[0].source if claims else UNMATCHED,
                    path,
                    run_date,
                    "rejected" if claims else "unmatched",
                    f"{path.name}: 不是普通文件 / not a regular file ({kind}); not read",
                    s,
                    log_rows,
                )  # fmt: skip
            )
        elif not claims:
            patterns = "; ".join(f"{m.source}: {', '.join(m.files)}" for m in mappings.values())
            results.append(
                _not_landed(
                    spark,
                    UNMATCHED,
                    path,
                    run_date,
                    "unmatched",
                    f"{path.name}: 没有匹配的数据源映射 / no source mapping claims this "
                    f"file name (patterns: {patterns})",
                    s,
                    log_rows,
                )  # fmt: skip
            )
        elif len(claims) > 1:
            names = ", ".join(m.source for m in claims)
            results.append(
                _not_landed(
                    spark,
                    claims[0].source,
                    path,
                    run_date,
                    "rejected",
                    f"{path.name}: 文件名匹配多个数据源 / the file name matches several "
                    f"mappings ({names}); make their patterns distinct",
                    s,
                    log_rows,
                )  # fmt: skip
            )
        else:
            result = land_file(spark, claims[0], path, run_date, s, landed, log_rows)
            if result.status == "landed":
                landed[result.checksum] = result.batch_id
            results.append(result)
