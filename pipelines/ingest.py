"""Ingest: agency extract files → bronze Delta tables, one per source.

Every landed row keeps its raw text and lineage (file, row, batch, time, record hash). Rows that
cannot be split into the source's fields go to quarantine with the reason. Per file and run,
rows read = rows landed + rows quarantined, recorded in ``audit.ingest_log``. A file whose
checksum has already landed is skipped, so re-running a day changes nothing.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import charset_normalizer
import openpyxl
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.normalise import token
from pipelines.sources import SOURCES, SourceSpec
from warehouse import tables
from warehouse.settings import Settings, get_settings

_SEP_OUTSIDE_QUOTES = ',(?=(?:[^"]*"[^"]*")*[^"]*$)'
_NO_SEP = "\u0001"  # never in an extract: makes Spark's CSV reader hand back whole lines


class IngestError(ValueError):
    """A file that cannot be landed at all (e.g. its header does not match the contract)."""


@dataclass(frozen=True)
class IngestResult:
    source: str
    file: str
    batch_id: str
    status: str  # landed | skipped (already landed) | rejected
    rows_read: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    encoding: str = ""
    message: str = ""


def file_checksum(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_encoding(path: Path, sample_bytes: int = 1 << 16) -> str:
    """Java charset name for a CSV extract: UTF-8 (with or without BOM) or GB18030 (⊇ GBK)."""
    head = path.open("rb").read(sample_bytes)
    if head.startswith(codecs.BOM_UTF8):
        return "UTF-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "UTF-8"
    except UnicodeDecodeError:
        pass
    guess = charset_normalizer.from_bytes(head).best()
    name = (guess.encoding if guess else "gb18030").lower().replace("_", "")
    if name in {"gbk", "gb2312", "gb18030", "cp936", "hz"}:
        return "GB18030"
    return name.upper()


def batch_id_for(spec: SourceSpec, run_date: date, checksum: str) -> str:
    """Deterministic batch id: the same file landed for the same day gets the same id."""
    return f"{spec.name}:{run_date.isoformat()}:{checksum[:16]}"


def _header_fields(spec: SourceSpec, header: list[str]) -> list[str]:
    """Map the file's Chinese headers to canonical fields, or raise IngestError."""
    cleaned = [h.replace("\ufeff", "").strip() for h in header]
    by_header = {zh: name for name, zh in spec.columns.items()}
    missing = [zh for zh in spec.headers_zh if zh not in cleaned]
    unknown = [h for h in cleaned if h not in by_header]
    if missing or unknown:
        raise IngestError(
            f"{spec.name}: header does not match the source contract; "
            f"missing {missing or '-'}, unexpected {unknown or '-'}"
        )
    return [by_header[h] for h in cleaned]


def _numbered_lines(spark: SparkSession, path: Path, encoding: str) -> DataFrame:
    """(line, line_no) for every non-blank line, line_no 0 = header, in file order."""
    lines = (
        spark.read.option("encoding", encoding)
        .option("sep", _NO_SEP)
        .option("quote", "")
        .option("header", "false")
        .schema("line STRING")
        .csv(str(path))
        .withColumn("_id", F.monotonically_increasing_id())
    )
    # monotonically_increasing_id = partition index << 33 | position in partition; turn it into
    # a global line number with per-partition offsets (one small row per partition).
    part, pos = F.shiftright("_id", 33), F.col("_id").bitwiseAND((1 << 33) - 1)
    counts = lines.groupBy(part.alias("part")).count()
    offsets = counts.withColumn(
        "offset",
        F.coalesce(
            F.sum("count").over(Window.orderBy("part").rowsBetween(Window.unboundedPreceding, -1)),
            F.lit(0),
        ),
    ).select("part", "offset")
    return (
        lines.withColumn("part", part)
        .withColumn("pos", pos)
        .join(F.broadcast(offsets), "part")
        .select("line", (F.col("offset") + F.col("pos")).alias("line_no"))
    )


def _read_csv(spark: SparkSession, spec: SourceSpec, path: Path, encoding: str) -> DataFrame:
    """Rows as (fields…, _source_row, _problem, _raw_line); _problem set when unsplittable."""
    lines = _numbered_lines(spark, path, encoding)
    header_line = lines.where("line_no = 0").select("line").first()
    if header_line is None:
        raise IngestError(f"{spec.name}: {path.name} is empty (no header line)")
    fields = _header_fields(spec, next(csv.reader([header_line[0]])))
    n = len(fields)
    schema = ", ".join(f"`c{i}` STRING" for i in range(n + 1))
    parsed = F.from_csv("line", schema, {"nullValue": "\u0000", "mode": "PERMISSIVE"})
    n_found = F.size(F.split("line", _SEP_OUTSIDE_QUOTES))
    problem = F.when(F.col("line").contains("\ufffd"), F.lit("undecodable")).when(
        n_found != n, F.concat(F.lit("field_count:"), n_found.cast("string"))
    )
    rows = lines.where("line_no > 0").select(
        parsed.alias("p"),
        F.col("line_no").alias("_source_row"),
        problem.alias("_problem"),
        F.col("line").alias("_raw_line"),
    )
    return rows.select(
        *(F.col(f"p.c{i}").alias(name) for i, name in enumerate(fields)),
        "_source_row",
        "_problem",
        "_raw_line",
    )


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(spark: SparkSession, spec: SourceSpec, path: Path) -> DataFrame:
    """XLSX lists are small (hundreds to thousands of rows): parsed on the driver, streamed."""
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise IngestError(f"{spec.name}: {path.name} has no header row")
        fields = _header_fields(spec, [_cell_text(h) or "" for h in header])
        n = len(fields)
        records = []
        for i, row in enumerate(rows, start=1):
            cells = [_cell_text(v) for v in row]
            while len(cells) > n and cells[-1] is None:
                cells.pop()
            if all(c is None for c in cells):
                continue
            problem = None if len(cells) == n else f"field_count:{len(cells)}"
            padded = (cells + [None] * n)[:n]
            raw = None if problem is None else ",".join(c or "" for c in cells)
            records.append((*padded, i, problem, raw))
    finally:
        book.close()
    schema = T.StructType(
        [T.StructField(f, T.StringType()) for f in fields]
        + [
            T.StructField("_source_row", T.LongType()),
            T.StructField("_problem", T.StringType()),
            T.StructField("_raw_line", T.StringType()),
        ]
    )
    return spark.createDataFrame(records, schema)


def record_hash(fields: list[str]) -> Column:
    """SHA-256 over a row's business fields (NULL and empty kept distinct)."""
    return F.sha2(
        F.concat_ws("\u001f", *(F.coalesce(F.col(f), F.lit("\u0000")) for f in fields)), 256
    )


def payload_json(spec: SourceSpec, key: str) -> Column:
    """The raw row as JSON for quarantine, with personal-data fields replaced by tokens."""
    return F.to_json(
        F.struct(
            *(token(F.col(f), key).alias(f) if f in spec.pii else F.col(f) for f in spec.fields)
        )
    )


def _already_landed(spark: SparkSession, checksum: str, settings: Settings) -> bool:
    log = tables.read(spark, tables.INGEST_LOG, settings)
    return (
        log.where((F.col("checksum") == checksum) & (F.col("status") == "landed")).limit(1).count()
        > 0
    )


def _log(spark: SparkSession, row: dict, settings: Settings) -> None:
    """Write the file's ingest-log row, replacing an earlier attempt of the same batch."""
    tables.ensure(spark, tables.INGEST_LOG, settings)
    spark.createDataFrame([row], tables.INGEST_LOG.schema).write.format("delta").mode(
        "overwrite"
    ).option("replaceWhere", f"batch_id = '{row['batch_id']}'").save(
        tables.INGEST_LOG.path(settings)
    )


def land_file(
    spark: SparkSession,
    spec: SourceSpec,
    path: Path,
    run_date: date,
    settings: Settings | None = None,
) -> IngestResult:
    """Land one extract file into ``bronze.<source>``; quarantine what cannot be split.

    Idempotent: a file whose checksum already landed is skipped; a crashed landing is redone
    by replacing the batch's rows (``replaceWhere`` on the deterministic batch id).
    """
    s = settings or get_settings()
    checksum = file_checksum(path)
    batch_id = batch_id_for(spec, run_date, checksum)
    if _already_landed(spark, checksum, s):
        return IngestResult(spec.name, str(path), batch_id, "skipped", message="already landed")
    ingested_at = datetime.now()
    encoding = "xlsx" if spec.fmt == "xlsx" else detect_encoding(path)
    try:
        raw = (
            _read_xlsx(spark, spec, path)
            if spec.fmt == "xlsx"
            else _read_csv(spark, spec, path, encoding)
        )
    except IngestError as exc:
        _log(
            spark,
            _log_row(
                batch_id,
                run_date,
                spec,
                path,
                checksum,
                encoding,
                "rejected",
                str(exc),
                0,
                0,
                0,
                ingested_at,
            ),
            s,
        )
        return IngestResult(
            spec.name, str(path), batch_id, "rejected", encoding=encoding, message=str(exc)
        )

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
        bad = _quarantine_rows(raw.where(F.col("_problem").isNotNull()), spec, s.resolved_pii_key())
        tables.ensure(spark, bronze_table, s)
        good.write.format("delta").mode("overwrite").option(
            "replaceWhere", f"_run_date = '{run_date}' AND _batch_id = '{batch_id}'"
        ).save(bronze_table.path(s))
        write_quarantine(
            spark, bad, f"stage = 'ingest' AND _batch_id = '{batch_id}'", s, source=spec.name
        )
        totals = raw.agg(
            F.count("*").alias("read"),
            F.count("_problem").alias("bad"),
        ).first()
        read_n, bad_n = int(totals["read"]), int(totals["bad"])
    finally:
        raw.unpersist()
    result = IngestResult(
        spec.name, str(path), batch_id, "landed", read_n, read_n - bad_n, bad_n, encoding
    )
    _log(
        spark,
        _log_row(
            batch_id,
            run_date,
            spec,
            path,
            checksum,
            encoding,
            "landed",
            "",
            read_n,
            read_n - bad_n,
            bad_n,
            ingested_at,
        ),
        s,
    )
    return result


def _log_row(
    batch_id: str,
    run_date: date,
    spec: SourceSpec,
    path: Path,
    checksum: str,
    encoding: str,
    status: str,
    message: str,
    read_n: int,
    landed_n: int,
    bad_n: int,
    at: datetime,
) -> dict:
    return {
        "batch_id": batch_id,
        "run_date": run_date,
        "source": spec.name,
        "source_file": str(path),
        "checksum": checksum,
        "encoding": encoding,
        "status": status,
        "message": message,
        "rows_read": read_n,
        "rows_landed": landed_n,
        "rows_quarantined": bad_n,
        "ingested_at": at,
    }


def _quarantine_rows(bad: DataFrame, spec: SourceSpec, key: str) -> DataFrame:
    expected = len(spec.fields)
    is_count = F.col("_problem").startswith("field_count:")
    found = F.regexp_extract("_problem", r"(\d+)$", 1)
    reason = F.when(
        is_count,
        F.concat(
            F.lit(f"字段个数不符：应为{expected}个，实为"),
            found,
            F.lit(f"个 / field count mismatch: expected {expected}, got "),
            found,
        ),
    ).otherwise(F.lit("含无法解码的字符 / contains bytes that cannot be decoded"))
    # A line that cannot be split cannot be masked field by field: keep it only for sources
    # without personal data; otherwise the file and row number identify it for the source.
    payload = (
        F.to_json(F.struct(F.col("_raw_line").alias("line")))
        if not spec.pii
        else F.to_json(F.struct(token(F.col("_raw_line"), key).alias("line_token")))
    )
    return bad.select(
        F.lit(spec.name).alias("source"),
        F.lit("ingest").alias("stage"),
        F.when(is_count, F.lit("field_count")).otherwise(F.lit("decodable")).alias("check_name"),
        F.array(F.when(is_count, F.lit("field_count")).otherwise(F.lit("decodable"))).alias(
            "checks"
        ),
        F.lit(None).cast("string").alias("field"),
        F.lit(None).cast("string").alias("value"),
        reason.alias("reason"),
        payload.alias("payload"),
        "_source_file",
        "_source_row",
        "_batch_id",
        "_run_date",
        F.col("_ingested_at").alias("quarantined_at"),
    )


def write_quarantine(
    spark: SparkSession, rows: DataFrame, replace_where: str, settings: Settings, source: str
) -> None:
    """Replace the quarantine rows that ``replace_where`` selects within ``source``.

    Skipped when the same rows are already there, so a re-run leaves the table as it was.
    """
    tables.ensure(spark, tables.REJECTED_ROWS, settings)
    where = f"source = '{source}' AND {replace_where}"
    new = rows.select(*tables.REJECTED_ROWS.columns).cache()
    try:
        content = [c for c in tables.REJECTED_ROWS.columns if c != "quarantined_at"]
        old = tables.read(spark, tables.REJECTED_ROWS, settings).where(where).select(*content)
        if new.isEmpty() and old.isEmpty():
            return
        unchanged = (
            old.exceptAll(new.select(*content)).isEmpty()
            and new.select(*content).exceptAll(old).isEmpty()
        )
        if not unchanged:
            new.write.format("delta").mode("overwrite").option("replaceWhere", where).save(
                tables.REJECTED_ROWS.path(settings)
            )
    finally:
        new.unpersist()


def land_day(
    spark: SparkSession,
    landing_root: Path,
    run_date: date,
    settings: Settings | None = None,
    sources: list[str] | None = None,
) -> list[IngestResult]:
    """Land every source file delivered for ``run_date`` (``<landing>/<date>/<file>``)."""
    folder = Path(landing_root) / run_date.isoformat()
    if not folder.is_dir():
        raise FileNotFoundError(f"no delivery folder for {run_date}: {folder}")
    results = []
    for name in sources or list(SOURCES):
        spec = SOURCES[name]
        path = folder / spec.file_name
        if path.exists():
            results.append(land_file(spark, spec, path, run_date, settings))
    return results
