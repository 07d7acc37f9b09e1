"""Compare two lakes table by table: do they hold the same content?

Every Delta table under each lake root is read with ``deltalake`` (no Spark), batch by batch,
and reduced to an order-independent fingerprint of its rows (and of each column), so two lakes
of any size are compared in bounded memory. Wall-clock audit stamps (when a row was written)
are left out, and so are append-only logs of attempts (``audit.events``): a re-run that writes
the same content at another time is equal. So is a model trained at another time or in another
lake: its versions' training times and the lake's own root are masked (:func:`normalise`), which
lets a lake built on a cluster, or by a changed pipeline, be compared with a reference.

``risk-insight lake diff LAKE_A LAKE_B`` prints the result; :func:`contents` gives small lakes'
tables as sorted pandas frames for tests that need to look inside.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

# When a row was written, not what it says: a re-run at another time differs only here.
AUDIT_STAMPS = frozenset(
    {
        "_ingested_at",  # bronze rows, quarantine payload lineage
        "ingested_at",  # audit.ingest_log
        "quarantined_at",  # quarantine.rejected_rows
        "finished_at",  # audit.conform_log
        "validated_at",  # audit.quality_results
        "_built_at",  # gold features
        "_scored_at",  # gold scores
        "_loaded_at",
        "_planned_at",
        "committed_at",  # audit.plan_commitments
        "registered_at",  # audit.model_registry
        "decided_at",  # audit.model_decisions
        "computed_at",  # audit.inspector_consistency
    }
)
# Records of each attempt (a killed run's start, a refused run): different by design.
APPEND_ONLY = frozenset({"audit/events"})

_MASK = (1 << 64) - 1


def delta_tables(lake: str | Path) -> list[str]:
    """Relative paths (``layer/name``) of every Delta table under ``lake``, sorted."""
    root = Path(lake)
    return sorted(str(log.parent.relative_to(root)) for log in root.rglob("_delta_log"))


# Values that name when or where a model was trained rather than what it is: a model version
# ``m<trained at, 14 digits>-<hash of the booster>`` keeps its hash, and a lake's own root (in
# artifact paths) reads ``<lake>``, so the same model trained in another lake or at another
# time compares equal wherever its version is quoted (registry, scores, tiers, plans, JSON);
# and a lake's own folder does not count (another checkout's lake compares with this one).
MODEL_VERSION = re.compile(r"\bm\d{14}-([0-9a-f]{8})\b")


def normalise(values: pd.Series, root: str | None = None) -> pd.Series:
    """``values`` (strings) with model versions' training times masked, and the lake ``root``
    and the folder it sits in (where its landing zone and outputs usually are: files the lake
    records by absolute path) read ``<lake>`` and ``<lake>/..``."""
    out = values.str.replace(MODEL_VERSION, r"m<trained_at>-\1", regex=True)
    if root:
        lake = Path(root)
        out = out.str.replace(_path_prefix(lake), "<lake>", regex=True)
        if lake.parent != lake:
            out = out.str.replace(_path_prefix(lake.parent), "<lake>/..", regex=True)
    return out


def _path_prefix(folder: Path) -> re.Pattern[str]:
    # the folder as a whole path at the start of a path: not inside a longer name or path
    return re.compile(r"(?<![\w./-])" + re.escape(str(folder)) + r"(?![\w.-])")


def _root(lake: str | Path) -> str:
    return str(Path(lake).resolve())


def _frames(path: Path, ignore: frozenset[str], batch_rows: int = 65_536, root: str | None = None):
    from deltalake import DeltaTable

    dataset = DeltaTable(str(path)).to_pyarrow_dataset()
    cols = [c for c in dataset.schema.names if c not in ignore]
    texts = [
        f.name
        for f in dataset.schema
        if f.name in cols and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    for batch in dataset.to_batches(columns=cols, batch_size=batch_rows):
        # integers stay integers whether or not this batch has a NULL (else 5 and 5.0 differ)
        df = batch.to_pandas(integer_object_nulls=True).astype(str)[cols]
        for c in texts:
            df[c] = normalise(df[c], root)
        yield df


def _row_hashes(df: pd.DataFrame) -> list[int]:
    # stable across processes (pandas' own hash is keyed per call; blake2b over the row text)
    return [
        int.from_bytes(hashlib.blake2b("\x1f".join(r).encode(), digest_size=8).digest(), "big")
        for r in df.itertuples(index=False, name=None)
    ]


@dataclass
class Fingerprint:
    """Order-independent summary of a table's rows (and of each column's values)."""

    rows: int = 0
    total: int = 0  # sum of row hashes mod 2^64
    squares: int = 0  # sum of squared row hashes mod 2^64 (guards against cancelling sums)
    columns: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, df: pd.DataFrame) -> None:
        hashes = _row_hashes(df)
        self.rows += len(hashes)
        self.total = (self.total + sum(hashes)) & _MASK
        self.squares = (self.squares + sum(h * h for h in hashes)) & _MASK
        for c in df.columns:
            values = _row_hashes(df[[c]])
            t, q = self.columns.get(c, (0, 0))
            self.columns[c] = ((t + sum(values)) & _MASK, (q + sum(v * v for v in values)) & _MASK)

    def same(self, other: Fingerprint) -> bool:
        return (self.rows, self.total, self.squares) == (other.rows, other.total, other.squares)


def fingerprint(
    path: str | Path, ignore: frozenset[str] = AUDIT_STAMPS, root: str | None = None
) -> Fingerprint:
    """The fingerprint of the Delta table at ``path`` (current version; string values
    :func:`normalise`-d against the lake ``root``)."""
    fp = Fingerprint()
    for df in _frames(Path(path), ignore, root=root):
        fp.add(df)
    return fp


@dataclass
class LakeDiff:
    """Tables only in A, only in B, and in both with other content (with what differs)."""

    lake_a: str
    lake_b: str
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    differing: dict[str, str] = field(default_factory=dict)
    equal: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.only_a or self.only_b or self.differing)

    def report(self) -> str:
        """A few lines for people."""
        lines = [
            f"{len(self.equal)} tables equal, {len(self.differing)} differ, "
            f"{len(self.only_a)} only in A, {len(self.only_b)} only in B"
        ]
        lines += [f"  only in A ({self.lake_a}): {t}" for t in self.only_a]
        lines += [f"  only in B ({self.lake_b}): {t}" for t in self.only_b]
        lines += [f"  differs: {t}: {why}" for t, why in self.differing.items()]
        return "\n".join(lines)


def diff(
    lake_a: str | Path,
    lake_b: str | Path,
    ignore_columns: frozenset[str] = AUDIT_STAMPS,
    skip_tables: frozenset[str] = APPEND_ONLY,
) -> LakeDiff:
    """Compare every Delta table of two lakes by content (see the module docstring)."""
    a = set(delta_tables(lake_a)) - skip_tables
    b = set(delta_tables(lake_b)) - skip_tables
    out = LakeDiff(str(lake_a), str(lake_b), sorted(a - b), sorted(b - a))
    for name in sorted(a & b):
        fa = fingerprint(Path(lake_a) / name, ignore_columns, _root(lake_a))
        fb = fingerprint(Path(lake_b) / name, ignore_columns, _root(lake_b))
        if fa.same(fb):
            out.equal.append(name)
            continue
        cols = sorted(c for c in set(fa.columns) | set(fb.columns)
                      if fa.columns.get(c) != fb.columns.get(c))  # fmt: skip
        out.differing[name] = f"{fa.rows} vs {fb.rows} rows; columns differing: {cols or '-'}"
    return out


def contents(
    lake: str | Path,
    ignore_columns: frozenset[str] = AUDIT_STAMPS,
    skip_tables: frozenset[str] = APPEND_ONLY,
) -> dict[str, pd.DataFrame]:
    """Every Delta table of a *small* lake as a pandas frame of strings, stamps dropped, rows
    sorted (for tests that need to look inside)."""
    out = {}
    for name in delta_tables(lake):
        if name in skip_tables:
            continue
        frames = list(_frames(Path(lake) / name, ignore_columns, root=_root(lake)))
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        out[name] = df.sort_values(list(df.columns)).reset_index(drop=True) if len(df) else df
    return out
