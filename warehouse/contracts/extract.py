"""Writing a delivery in the bureau's own format, for results the engine itself collects.

The outcome import (``risk_insight.outcomes``) hands the inspectors' results to ingest as an
ordinary delivery of the inspection mapping in force, so the same quality rules, lineage and
reports apply to them as to the bureau's own inspection extract. The file is a CSV with the
mapping's headers (first alias of each field), its delimiter and encoding, and the bureau's
words for vocabulary fields; its name fits one of the mapping's file patterns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from warehouse.contracts.mapping import SourceMapping


def extract_name(mapping: SourceMapping, tag: str) -> str:
    """A file name ``mapping`` matches, from its first pattern with a ``*`` (the ``*`` becomes
    ``tag``, so extracts of different tags never collide), else its first literal name.
    ValueError when no pattern yields a CSV name (an xlsx-only mapping)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in tag)
    candidates = [p.replace("*", safe, 1) for p in mapping.files if "*" in p]
    candidates += [p for p in mapping.files if not any(c in p for c in "*?[")]
    for name in candidates:
        wild = any(c in name for c in "*?[")
        if not wild and mapping.matches(name) and mapping.file_format(name) == "csv":
            return name
    raise ValueError(
        f"{mapping.path or mapping.source}: no file pattern gives a CSV name the engine can "
        f"write its {mapping.source} extract under (files: {mapping.files})"
    )


def extract_csv(
    mapping: SourceMapping, rows: Sequence[Mapping[str, str]], fields: Sequence[str]
) -> bytes:
    """``rows`` (canonical field → text; vocabulary fields hold canonical values) as a CSV in
    the bureau's format. Every field in ``fields`` must be mapped (ValueError names the ones
    that are not)."""
    missing = [f for f in fields if f not in mapping.fields]
    if missing:
        raise ValueError(
            f"{mapping.path or mapping.source}: the mapping has no header for {missing}; "
            "add them so the engine can deliver these fields"
        )
    buf = io.StringIO()
    escape = mapping.csv.escape if mapping.csv.escape not in (None, mapping.csv.quote) else None
    writer = csv.writer(
        buf,
        delimiter=mapping.csv.delimiter,
        quotechar=mapping.csv.quote,
        doublequote=escape is None,
        escapechar=escape,
        lineterminator="\n",
    )
    writer.writerow([mapping.header_of(f) for f in fields])
    for row in rows:
        writer.writerow(
            [
                mapping.word_for(f, row[f]) if f in mapping.vocabularies and row[f] else row[f]
                for f in fields
            ]
        )
    encoding = "utf-8" if mapping.encoding == "auto" else mapping.encoding
    return buf.getvalue().encode(encoding)
