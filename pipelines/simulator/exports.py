"""How the simulated bureau exports each source: read from its shipped source mappings
(``warehouse/contracts/mappings``), like any bureau's files are described, plus the encodings
its systems happen to write. Headers, file names and formats are not repeated in Python."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from warehouse.contracts import SHIPPED_MAPPINGS, SourceMapping, load_mapping, load_mappings

# The business scope (经营范围) column the simulated registry adds when licences carry risk
# (SimulationConfig.licence_signal > 0): the simulator's own convention, not in the mappings.
SCOPE_FIELD = "business_scope"
SCOPE_HEADER = "经营范围"
# The licensing export (event source) written beside it, and the mapping that reads it.
LICENSING_MAPPING = Path(__file__).with_name("licensing.yaml")

# The simulated agencies' export encodings (ingest detects them per file; nothing reads these).
EXPORT_ENCODING = {
    "registry": "gbk",
    "annual_report": "utf-8-sig",
    "penalty": "gbk",
    "abnormal_list": "utf-8-sig",
    "serious_list": "xlsx",
    "inspection": "gbk",
    "complaint": "utf-8-sig",
    "event": "utf-8-sig",
}


@dataclass(frozen=True)
class Export:
    """One source's extract as the simulated bureau writes it."""

    name: str
    title_zh: str
    fields: list[str]  # canonical fields, in the file's column order
    headers_zh: list[str]  # the header of each field (the mapping's first alias)
    file_name: str
    fmt: str  # csv | xlsx
    export_encoding: str
    natural_key: tuple[str, ...]
    pii: tuple[str, ...]
    date_fields: tuple[str, ...]
    amount_fields: tuple[str, ...]


def _export(m: SourceMapping) -> Export:
    literal = [p for p in m.files if not any(c in p for c in "*?[")]
    if not literal:
        raise ValueError(f"{m.path}: the simulator needs one literal file name in files")
    spec = m.canonical
    fields = list(m.fields)
    return Export(
        name=m.source,
        title_zh=m.title_zh,
        fields=fields,
        headers_zh=[m.header_of(f) for f in fields],
        file_name=literal[0],
        fmt=m.file_format(literal[0]),
        export_encoding=EXPORT_ENCODING[m.source],
        natural_key=spec.key,
        pii=spec.pii,
        date_fields=tuple(f for f in spec.dates if f in fields),
        amount_fields=tuple(f for f in spec.amounts if f in fields),
    )


@lru_cache(maxsize=1)
def exports() -> dict[str, Export]:
    """Every source the simulated bureau delivers, in landing order."""
    return {name: _export(m) for name, m in load_mappings(SHIPPED_MAPPINGS).items()}


@lru_cache(maxsize=1)
def licensing_export() -> Export:
    """The licensing export (event source) as LICENSING_MAPPING describes it."""
    return _export(load_mapping(LICENSING_MAPPING))


def with_scope(spec: Export) -> Export:
    """``spec`` with the business-scope column (SCOPE_HEADER) appended as the last column."""
    return replace(
        spec, fields=[*spec.fields, SCOPE_FIELD], headers_zh=[*spec.headers_zh, SCOPE_HEADER]
    )


def written_exports(scope: bool) -> dict[str, Export]:
    """The extracts as written: :func:`exports`; when ``scope``, the registry ``with_scope``
    and the licensing export."""
    specs = dict(exports())
    if scope:
        specs["registry"] = with_scope(specs["registry"])
        specs["event"] = licensing_export()
    return specs
