"""The contracts between layers: the canonical sources conform reads and the source mappings
that say how a bureau's files are read into them.

``mappings(settings)`` is the set in force: the folder ``settings.sources_dir`` (a bureau's
own), or the shipped ``mappings/`` folder, which describes the demo bureau's extracts (the
source simulator's files) like any other bureau's. ``catalogue(settings)`` is the feature
catalogue in force: the built-in features and those the mappings declare (attributes and
event kinds).
"""

from __future__ import annotations

from pathlib import Path

from warehouse import caches
from warehouse.contracts.canonical import (
    CANONICAL,
    CLOSED_STATUSES,
    OBSERVED_RESULTS,
    CanonicalSource,
    Vocabulary,
    canonical,
)
from warehouse.contracts.features import BY_NAME, Feature
from warehouse.contracts.mapping import (
    ATTRIBUTE_PREFIX,
    EVENT_PREFIX,
    Attribute,
    EventKind,
    MappingError,
    SourceMapping,
    header_key,
    load_mapping,
    load_mappings,
)
from warehouse.settings import Settings, get_settings

SHIPPED_MAPPINGS = Path(__file__).with_name("mappings")


def mappings_dir(settings: Settings | None = None) -> Path:
    """The folder of source mappings in force."""
    s = settings or get_settings()
    return Path(s.sources_dir) if s.sources_dir else SHIPPED_MAPPINGS


def mappings(settings: Settings | None = None) -> dict[str, SourceMapping]:
    """The validated source mappings in force, by source (read once per folder and
    process). MappingError names every problem."""
    return _load(str(mappings_dir(settings)))


@caches.per_run(maxsize=8)
def _load(folder: str) -> dict[str, SourceMapping]:
    return load_mappings(folder)


def mapping(source: str, settings: Settings | None = None) -> SourceMapping:
    """The mapping of ``source``; KeyError when the bureau does not deliver it."""
    found = mappings(settings)
    if source not in found:
        raise KeyError(f"no source mapping for {source!r} in {mappings_dir(settings)}")
    return found[source]


def declared_features(settings: Settings | None = None) -> tuple[Feature, ...]:
    """The gold features the mappings in force declare (attributes, then event kinds, per
    mapping in source order)."""
    return tuple(f for m in mappings(settings).values() for f in m.declared_features())


def catalogue(settings: Settings | None = None) -> dict[str, Feature]:
    """Every feature in force by name: the built-in catalogue, then the declared ones."""
    return {**BY_NAME, **{f.name: f for f in declared_features(settings)}}


__all__ = [
    "ATTRIBUTE_PREFIX",
    "CANONICAL",
    "CLOSED_STATUSES",
    "EVENT_PREFIX",
    "OBSERVED_RESULTS",
    "SHIPPED_MAPPINGS",
    "Attribute",
    "CanonicalSource",
    "EventKind",
    "MappingError",
    "SourceMapping",
    "Vocabulary",
    "canonical",
    "catalogue",
    "declared_features",
    "header_key",
    "load_mapping",
    "load_mappings",
    "mapping",
    "mappings",
    "mappings_dir",
]
