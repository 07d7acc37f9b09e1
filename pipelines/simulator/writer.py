"""Write extracts (CSV / XLSX) byte-for-byte reproducibly."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pandas as pd
from openpyxl import Workbook

from pipelines.simulator.exports import Export

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_STAMP = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*")


def file_rows(df: pd.DataFrame, spec: Export) -> list[list[str]]:
    """The data rows of one file, in file order, malformed lines already broken."""
    rows = df[spec.fields].to_numpy().tolist()
    for row, bad in zip(rows, df["_malformed"].to_numpy(), strict=True):
        if bad == "missing":
            row.pop()
        elif bad == "extra":
            row.append(row[-1])
    return rows


def csv_bytes(spec: Export, rows: list[list[str]]) -> bytes:
    """A CSV extract: contract headers, standard quoting, ``\\n`` line ends, export encoding."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(spec.headers_zh)
    writer.writerows(rows)
    return buf.getvalue().encode(spec.export_encoding)


def xlsx_bytes(spec: Export, rows: list[list[str]], stamp: str) -> bytes:
    """An XLSX extract: one sheet, header row then data, every cell a string.

    openpyxl stamps the current time into the package; ``stamp`` (ISO date) replaces it and all
    zip entries get a fixed timestamp, so equal content gives equal bytes.
    """
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=spec.title_zh)
    ws.append(spec.headers_zh)
    for row in rows:
        ws.append(row)
    raw = io.BytesIO()
    wb.save(raw)
    return _stable_zip(raw.getvalue(), f"{stamp}T00:00:00Z".encode())


def _stable_zip(data: bytes, stamp: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _STAMP.sub(rb"\g<1>" + stamp, body)
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, body)
    return out.getvalue()


def write_extract(folder: Path, spec: Export, df: pd.DataFrame, stamp: str) -> None:
    """Write one source's rows for one landing day into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = file_rows(df, spec)
    data = xlsx_bytes(spec, rows, stamp) if spec.fmt == "xlsx" else csv_bytes(spec, rows)
    (folder / spec.file_name).write_bytes(data)
