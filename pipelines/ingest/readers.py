"""Reading one extract file into rows of raw text, by its source mapping.

CSV is read by Spark as whole lines numbered in file order (partition offsets, no driver
collect), then split with ``from_csv`` using the mapping's delimiter and quote; a line whose
field count differs from the header's, or that holds undecodable bytes, keeps its number and
is marked for quarantine. XLSX is parsed on the driver with openpyxl (lists are small); its
header row may sit below title rows.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import charset_normalizer
import openpyxl
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.ingest.layout import IngestError, Layout, header_score, layout
from warehouse.contracts import SourceMapping

_NO_SEP = "\u0001"  # never in an extract: makes Spark's CSV reader hand back whole lines
XLSX_HEADER_SCAN_ROWS = 30  # an XLSX header row is looked for in this many top rows
# Bounds on hostile input: a file past them is rejected, a line past them quarantined.
MAX_COLUMNS = 1_000  # header columns
MAX_LINE_CHARS = 100_000  # one row as text; a longer one is quarantined, not landed
RAW_LINE_KEPT = 2_000  # characters of an unsplittable line kept in its quarantine payload
XLSX_MAX_UNCOMPRESSED = 512 << 20  # bytes of XML inside an XLSX
XLSX_MAX_RATIO = 200  # uncompressed / compressed size of an XLSX (a zip bomb is far above)
_CONTROL = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"  # NUL and other C0 controls in text
# Java charset names Spark's reader accepts, for the encodings a mapping may declare.
_JAVA_CHARSET = {
    "gbk": "GB18030",  # GB18030 is a superset of GBK and GB2312
    "gb2312": "GB18030",
    "gb18030": "GB18030",
    "cp936": "GB18030",
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "utf-8-sig": "UTF-8",
}
RAW_COLUMNS = ("_source_row", "_problem", "_raw_line", "_extra", "_attributes")


def file_checksum(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_encoding(path: Path, sample_bytes: int = 1 << 16) -> str:
    """Java charset name for a CSV extract: UTF-8 (with or without BOM) or GB18030 (⊇ GBK),
    whichever decodes the file's head strictly. IngestError for a file neither decodes (its
    mapping must declare ``encoding``): a statistical guess is only named in the message, since
    on long Chinese texts such guesses pick Cyrillic code pages over GBK."""
    with path.open("rb") as fh:
        head = fh.read(sample_bytes)
    if head.startswith(codecs.BOM_UTF8):
        return "UTF-8"
    for python_name, java_name in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
        try:
            codecs.getincrementaldecoder(python_name)().decode(head, final=False)
            return java_name
        except UnicodeDecodeError:
            pass
    guess = charset_normalizer.from_bytes(head).best()
    looks = f" ({guess.encoding}?)" if guess else ""
    raise IngestError(
        f"{path.name}: 文件编码既非UTF-8也非GBK/GB18030{looks}，请在数据源映射中声明encoding / "
        f"the file is neither UTF-8 nor GBK/GB18030{looks}: declare `encoding` in its mapping"
    )


def file_encoding(mapping: SourceMapping, path: Path) -> str:
    """The declared encoding of the mapping (as a Java charset), else the detected one."""
    declared = mapping.encoding.strip().lower()
    if declared == "auto":
        return detect_encoding(path)
    return _JAVA_CHARSET.get(declared, mapping.encoding.upper())


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


def _separators_outside_quotes(delimiter: str, quote: str) -> str:
    d, q = re.escape(delimiter), re.escape(quote)
    return f"{d}(?=(?:[^{q}]*{q}[^{q}]*{q})*[^{q}]*$)"


def _extra_map(extra: dict[str, int], value) -> Column:
    """Columns as a map name → value (NULL when there are none): the unmapped ones by header,
    the declared attributes by attribute name."""
    if not extra:
        return F.lit(None).cast(T.MapType(T.StringType(), T.StringType()))
    return F.create_map(*[x for h, i in extra.items() for x in (F.lit(h), value(i))])


def _fields(mapping: SourceMapping, lay: Layout, value) -> list[Column]:
    """Every canonical field of the source from its column (NULL without one)."""
    return [
        (value(lay.fields[f]) if f in lay.fields else F.lit(None).cast("string")).alias(f)
        for f in mapping.canonical.fields
    ]


def read_csv(
    spark: SparkSession, mapping: SourceMapping, path: Path, encoding: str
) -> tuple[DataFrame, Layout]:
    """Rows as (canonical fields…, _source_row, _problem, _raw_line, _extra) and the file's
    layout; ``_problem`` is set for a line that cannot be split into the header's columns."""
    opts = mapping.csv
    if path.stat().st_size == 0:
        raise IngestError(f"{path.name}: 文件为空 / the file is empty (no header line)")
    lines = _numbered_lines(spark, path, encoding)
    header_line = lines.where("line_no = 0").select("line").first()
    if header_line is None:
        raise IngestError(f"{path.name}: 文件为空 / the file is empty (no header line)")
    if "\ufffd" in header_line[0] or re.search(_CONTROL, header_line[0]):
        raise IngestError(
            f"{path.name}: 表头无法以{encoding}解码 / the header cannot be read as {encoding} "
            "(wrong encoding, or not a text file)"
        )
    header = next(
        csv.reader(
            [header_line[0]],
            delimiter=opts.delimiter,
            quotechar=opts.quote,
            doublequote=(opts.escape or opts.quote) == opts.quote,
            escapechar=None if (opts.escape or opts.quote) == opts.quote else opts.escape,
        )
    )
    if len(header) > MAX_COLUMNS:
        raise IngestError(
            f"{path.name}: 列数过多 / {len(header)} columns, more than the {MAX_COLUMNS:,} accepted"
        )
    lay = layout(mapping, header, path.name)
    n = lay.width
    schema = ", ".join(f"`c{i}` STRING" for i in range(n + 1))
    parsed = F.from_csv(
        "line",
        schema,
        {
            "nullValue": "\u0000",
            "mode": "PERMISSIVE",
            "sep": opts.delimiter,
            "quote": opts.quote,
            "escape": opts.escape or opts.quote,
        },
    )
    n_found = F.size(F.split("line", _separators_outside_quotes(opts.delimiter, opts.quote)))
    problem = (
        F.when(F.length("line") > MAX_LINE_CHARS, F.lit("too_long"))
        .when(F.col("line").contains("\ufffd"), F.lit("undecodable"))
        .when(F.col("line").rlike(_CONTROL), F.lit("control_chars"))
        .when(n_found != n, F.concat(F.lit("field_count:"), n_found.cast("string")))
    )
    rows = lines.where("line_no > 0").select(
        F.when(problem.isNull(), parsed).alias("p"),  # a hostile line is never parsed
        F.col("line_no").alias("_source_row"),
        problem.alias("_problem"),
        F.when(problem.isNotNull(), F.substring("line", 1, RAW_LINE_KEPT)).alias("_raw_line"),
    )

    return _canonical(rows, mapping, lay, "p.c{}"), lay


def cell_text(value: object) -> str | None:
    """An XLSX cell as the text a CSV export would hold (dates ISO, whole numbers without .0)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _header_row(mapping: SourceMapping, top: list[list[str | None]], name: str) -> int:
    """0-based index of the header row among ``top`` rows (the mapping's, or the first that
    names every required field, preferring the one naming most fields)."""
    wanted = mapping.xlsx.header_row
    if wanted != "auto":
        if wanted > len(top):
            raise IngestError(f"{name}: header_row {wanted} is below the sheet's last row")
        return wanted - 1
    best: tuple[int, int] | None = None
    for i, cells in enumerate(top):
        complete, found = header_score(mapping, cells)
        if complete and (best is None or found > best[1]):
            best = (i, found)
    if best is None:
        raise IngestError(
            f"{name}: 找不到表头行 / no row among the first {len(top)} names the required "
            f"fields {[mapping.header_of(f) for f in mapping.canonical.required]}"
        )
    return best[0]


def check_workbook(path: Path) -> None:
    """Refuse, before parsing, an XLSX that is not a zip package, holds macros, or would
    inflate past :data:`XLSX_MAX_UNCOMPRESSED` or :data:`XLSX_MAX_RATIO` (a zip bomb)."""
    if not zipfile.is_zipfile(path):
        raise IngestError(f"{path.name}: 不是有效的Excel文件 / not an XLSX (zip) package")
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    names = {i.filename.lower() for i in infos}
    if any(n.endswith("vbaproject.bin") for n in names):
        raise IngestError(f"{path.name}: 文件含宏 / the workbook holds macros (VBA); not read")
    inflated = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if inflated > XLSX_MAX_UNCOMPRESSED or inflated / packed > XLSX_MAX_RATIO:
        raise IngestError(
            f"{path.name}: 压缩比异常 / would inflate to {inflated:,} bytes from {packed:,} "
            f"(limits {XLSX_MAX_UNCOMPRESSED:,} bytes, ratio {XLSX_MAX_RATIO}); not read"
        )


def _cell(cell: object) -> tuple[str | None, bool]:
    """(text, is a formula) of a read-only cell."""
    value = getattr(cell, "value", None)
    return cell_text(value), getattr(cell, "data_type", None) == "f"


def read_xlsx(spark: SparkSession, mapping: SourceMapping, path: Path) -> tuple[DataFrame, Layout]:
    """XLSX lists are small (hundreds to thousands of rows): parsed on the driver, streamed.
    ``_source_row`` counts data rows after the header row (1 = the first). A row with a
    formula cell is quarantined (a formula is not data and may not travel on)."""
    check_workbook(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a file that is not a workbook
        raise IngestError(
            f"{path.name}: 不是有效的Excel文件 / not a readable XLSX: {exc}"
        ) from None
    try:
        wanted = mapping.xlsx.sheet
        if wanted is not None and wanted not in book.sheetnames:
            raise IngestError(
                f"{path.name}: 没有工作表 / no sheet {wanted!r}; sheets: {book.sheetnames}"
            )
        sheet = book[wanted] if wanted else book.worksheets[0]
        rows = sheet.iter_rows()
        top: list[list[tuple[str | None, bool]]] = []
        for row in rows:
            top.append([_cell(c) for c in row])
            if len(top) >= XLSX_HEADER_SCAN_ROWS:
                break
        if not top:
            raise IngestError(f"{path.name}: 工作表为空 / the sheet is empty (no header row)")
        at = _header_row(mapping, [[t for t, _ in r] for r in top], path.name)
        lay = layout(mapping, [t for t, _ in top[at]], path.name)
        n = lay.width
        if n > MAX_COLUMNS:
            raise IngestError(
                f"{path.name}: 列数过多 / {n} columns, more than the {MAX_COLUMNS:,} accepted"
            )
        records = []
        body = (*top[at + 1 :], *([_cell(c) for c in row] for row in rows))
        for i, cells in enumerate(body, start=1):
            cells = list(cells)
            while len(cells) > n and cells[-1][0] is None:
                cells.pop()
            texts = [t for t, _ in cells]
            if all(t is None for t in texts):
                continue
            problem = (
                "formula"
                if any(f for _, f in cells)
                else None
                if len(texts) == n
                else f"field_count:{len(texts)}"
            )
            padded = (texts + [None] * n)[:n]
            raw = None if problem is None else ",".join(t or "" for t in texts)[:RAW_LINE_KEPT]
            records.append((*padded, i, problem, raw))
    finally:
        book.close()
    schema = T.StructType(
        [T.StructField(f"c{i}", T.StringType()) for i in range(n)]
        + [
            T.StructField("_source_row", T.LongType()),
            T.StructField("_problem", T.StringType()),
            T.StructField("_raw_line", T.StringType()),
        ]
    )
    df = spark.createDataFrame(records, schema)

    return _canonical(df, mapping, lay, "c{}"), lay


def _canonical(df: DataFrame, mapping: SourceMapping, lay: Layout, cell: str) -> DataFrame:
    """``df``'s cells (column ``cell.format(i)`` for the file's i-th column) as the source's
    canonical fields, then the row's lineage, problem and raw line, its unmapped columns as
    the ``_extra`` map and its declared attributes as the ``_attributes`` map; shared by the
    CSV and the XLSX reader."""

    def value(i: int) -> Column:
        return F.col(cell.format(i))

    return df.select(
        *_fields(mapping, lay, value),
        "_source_row",
        "_problem",
        "_raw_line",
        _extra_map(lay.extra, value).alias("_extra"),
        _extra_map(lay.attributes, value).alias("_attributes"),
    )


def read_file(
    spark: SparkSession, mapping: SourceMapping, path: Path
) -> tuple[DataFrame, Layout, str]:
    """(rows, layout, encoding) of one file, CSV or XLSX by the mapping; IngestError when the
    file cannot be landed at all."""
    if mapping.file_format(path.name) == "xlsx":
        rows, lay = read_xlsx(spark, mapping, path)
        return rows, lay, "xlsx"
    encoding = file_encoding(mapping, path)
    rows, lay = read_csv(spark, mapping, path, encoding)
    return rows, lay, encoding
