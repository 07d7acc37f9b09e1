"""Which column of a file carries which canonical field: a file's headers read through its
source mapping (pure Python, decided on the driver from the header row alone)."""

from __future__ import annotations

from dataclasses import dataclass, field

from warehouse.contracts import SourceMapping, header_key


class IngestError(ValueError):
    """A file that cannot be landed at all; the message names the file and the reason."""


@dataclass(frozen=True)
class Layout:
    """The columns of one file: ``fields`` maps a canonical field to its column index;
    ``extra`` maps each unmapped header (kept in bronze ``_extra``) to its column index;
    ``attributes`` maps each declared enterprise attribute (bronze ``_attributes``) to its
    column index; ``missing`` are mapped fields and declared attributes the file has no
    column for (they land as NULL)."""

    width: int
    fields: dict[str, int]
    extra: dict[str, int]
    missing: tuple[str, ...]
    headers: tuple[str | None, ...] = ()  # the header row as the file has it
    attributes: dict[str, int] = field(default_factory=dict)

    @property
    def unmapped(self) -> tuple[str, ...]:
        return tuple(self.extra)


def layout(mapping: SourceMapping, headers: list[str | None], file_name: str) -> Layout:
    """The layout of a file with ``headers`` (its header row) under ``mapping``.

    Raises :class:`IngestError` naming the file when a required field has no column, or when
    two columns carry the same field (a duplicated header)."""
    alias = {header_key(h): f for f, fm in mapping.fields.items() for h in fm.headers}
    attr_alias = {header_key(h): a for a, am in mapping.attributes.items() for h in am.headers}
    fields: dict[str, int] = {}
    attributes: dict[str, int] = {}
    extra: dict[str, int] = {}
    duplicated: list[str] = []
    for i, raw in enumerate(headers):
        key = header_key(raw)
        for name, found in ((alias.get(key), fields), (attr_alias.get(key), attributes)):
            if name is None:
                continue
            if name in found:
                duplicated.append(f"{raw} ({name})")
            else:
                found[name] = i
            break
        else:
            name = (raw or "").strip() or f"(第{i + 1}列 / column {i + 1})"
            while name in extra:  # two unmapped columns with one header: keep both
                name += "#"
            extra[name] = i
    if duplicated:
        raise IngestError(
            f"{file_name}: 表头重复 / duplicated header for {', '.join(duplicated)}; "
            "each field may appear in one column only"
        )
    required = mapping.canonical.required
    absent = [f for f in required if f not in fields]
    if absent:
        names = ", ".join(f"{mapping.header_of(f)} ({f})" for f in absent)
        raise IngestError(
            f"{file_name}: 缺少必需列 / missing required column(s) {names}; "
            f"the file's headers are: {', '.join(str(h) for h in headers)}"
        )
    missing = tuple(f for f in mapping.fields if f not in fields) + tuple(
        a for a in mapping.attributes if a not in attributes
    )
    return Layout(len(headers), fields, extra, missing, tuple(headers), attributes)


def header_score(mapping: SourceMapping, cells: list[str | None]) -> tuple[bool, int]:
    """(names every required field, how many cells are known headers) of a candidate header
    row: how an XLSX header row below title rows is found."""
    alias = {header_key(h): f for f, fm in mapping.fields.items() for h in fm.headers}
    found = {alias[k] for k in (header_key(c) for c in cells) if k in alias}
    return set(mapping.canonical.required) <= found, len(found)
