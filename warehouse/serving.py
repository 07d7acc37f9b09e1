"""The serving store BI reads: every mart named once, and how a run publishes them.

A :class:`Mart` is a table in the serving store (an embedded DuckDB file by default,
PostgreSQL when ``serving_url`` says so). ``publish`` writes a run's mart frames so that a
reader never sees a half-written store:

- DuckDB: the current file is copied beside itself, the copy is updated, then swapped in with
  ``os.replace`` (readers holding the old file keep reading it; new readers get the new one).
- PostgreSQL: all marts change in one transaction.

A mart with ``partition_by`` is incremental: the run's values of that column are replaced and
every other value is kept. A mart without it is rebuilt whole each run.

A mart's rows come as a pandas frame (small aggregates) or as a :class:`ParquetFrame`, a folder
of Parquet files Spark wrote (population-sized marts such as the target list): DuckDB scans
those files itself and PostgreSQL gets them batch by batch, so the rows never sit whole in the
driver.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import bindparam, create_engine, inspect, text
from sqlalchemy.engine import make_url

from warehouse.settings import Settings, get_settings

if TYPE_CHECKING:
    import pyarrow.dataset


@dataclass(frozen=True)
class ParquetFrame:
    """A mart's rows as a folder of Parquet files (Spark's ``df.write.parquet``; files whose
    names start with ``_`` or ``.`` are not data)."""

    path: Path

    def dataset(self) -> pyarrow.dataset.Dataset:
        import pyarrow.dataset as ds

        return ds.dataset(str(self.path), format="parquet")

    @property
    def columns(self) -> list[str]:
        return list(self.dataset().schema.names)

    def __len__(self) -> int:
        return self.dataset().count_rows()

    def glob(self) -> str:
        """The data files, as DuckDB's ``read_parquet`` takes them."""
        return str(self.path / "*.parquet").replace("'", "''")


Frame = pd.DataFrame | ParquetFrame
"""What :func:`publish` takes for one mart."""


@dataclass(frozen=True)
class Mart:
    """One serving table: its name, what it holds, and how a run refreshes it."""

    name: str
    description: str
    partition_by: str | None = None  # incremental on this column; None = rebuilt whole
    region_column: str | None = "region_code"  # district row-level security applies here


MART_TIER_DISTRIBUTION = Mart(
    "mart_tier_distribution",
    "信用风险分类分布 / enterprises per tier by as-of month × district × industry × size",
    partition_by="as_of",
)
MART_TARGET_LIST = Mart(
    "mart_target_list",
    "检查对象名单 / every district's risk-ranked list with tier, score, basis and reasons",
    partition_by="as_of",
)
MART_WARNINGS = Mart(
    "mart_warnings",
    "风险预警 / early warnings of the run, with trigger and evidence",
    partition_by="as_of",
)
MART_ENFORCEMENT_STATS = Mart(
    "mart_enforcement_stats",
    "执法统计 / penalties, inspections, complaints and list entries per month × district",
)
MART_PLAN_OUTCOMES = Mart(
    "mart_plan_outcomes",
    "抽查结果 / drawn, inspected, found, unreachable, not inspected and not-yet counts per "
    "plan × district × tier",
)
MART_PLAN_INSPECTORS = Mart(
    "mart_plan_inspectors",
    "计划完成情况（检查人员）/ plan completion per plan × district × inspector: drawn, "
    "inspected, found, unreachable, not inspected, not yet",
)
MART_QUALITY_TREND = Mart(
    "mart_quality_trend",
    "数据质量趋势 / quality-ledger checks per run date × table × source, by outcome",
    region_column=None,
)
MART_QUARANTINE = Mart(
    "mart_quarantine",
    "隔离统计 / quarantined rows per run date × source × check",
    region_column=None,
)
MART_MODEL_BACKTEST = Mart(
    "mart_model_backtest",
    "模型表现 / precision at the C+D budget of model, rules, random and oracle per fold",
    region_column=None,
)
MART_MODEL_CALIBRATION = Mart(
    "mart_model_calibration",
    "模型校准 / mean predicted vs observed finding rate per probability decile and fold",
    region_column=None,
)

MART_INSPECTOR_CONSISTENCY = Mart(
    "mart_inspector_consistency",
    "执法尺度统一 / per period × inspector: random-draw inspections, findings, findings expected "
    "from the visited enterprises' risk, the ratio relative to the period with its interval and "
    "a flag (stricter, more lenient)",
)

MARTS: tuple[Mart, ...] = (
    MART_TIER_DISTRIBUTION,
    MART_TARGET_LIST,
    MART_WARNINGS,
    MART_ENFORCEMENT_STATS,
    MART_PLAN_OUTCOMES,
    MART_PLAN_INSPECTORS,
    MART_INSPECTOR_CONSISTENCY,
    MART_QUALITY_TREND,
    MART_QUARANTINE,
    MART_MODEL_BACKTEST,
    MART_MODEL_CALIBRATION,
)


def duckdb_path(url: str) -> Path | None:
    """The file of a ``duckdb:///…`` URL, or None for any other store."""
    u = make_url(url)
    return Path(u.database) if u.get_backend_name() == "duckdb" and u.database else None


def publish(frames: dict[Mart, Frame], settings: Settings | None = None) -> str:
    """Write ``frames`` to the serving store atomically; returns the store's URL.

    Incremental marts replace only the partition values present in their frame."""
    for mart, df in frames.items():
        if mart.partition_by and mart.partition_by not in df.columns:
            raise ValueError(f"{mart.name}: the frame has no {mart.partition_by} column")
    url = (settings or get_settings()).serving_store()
    path = duckdb_path(url)
    if path is not None:
        _publish_duckdb(frames, path)
    else:
        _publish_sql(frames, url)
    return url


def _publish_duckdb(frames: dict[Mart, Frame], path: Path) -> None:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.exists():
        shutil.copyfile(path, work)
    try:
        with duckdb.connect(str(work)) as con:
            existing = {
                r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            for mart, df in frames.items():
                if isinstance(df, ParquetFrame):
                    con.execute(
                        "CREATE OR REPLACE TEMP VIEW _incoming AS "
                        f"SELECT * FROM read_parquet('{df.glob()}')"
                    )
                else:
                    con.register("_incoming", df)
                if mart.partition_by and mart.name in existing:
                    # rows of other partitions kept; BY NAME tolerates a column added since
                    con.execute(
                        f"CREATE OR REPLACE TABLE {mart.name} AS "
                        f"SELECT * FROM {mart.name} WHERE {mart.partition_by} NOT IN "
                        f"(SELECT DISTINCT _incoming.{mart.partition_by} FROM _incoming) "
                        "UNION ALL BY NAME SELECT * FROM _incoming"
                    )
                else:
                    con.execute(f"CREATE OR REPLACE TABLE {mart.name} AS SELECT * FROM _incoming")
                if isinstance(df, ParquetFrame):
                    con.execute("DROP VIEW _incoming")
                else:
                    con.unregister("_incoming")
            con.execute("CHECKPOINT")
        os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)


def _batches(df: Frame, rows: int = 50_000) -> Iterator[pd.DataFrame]:
    """``df`` in pandas batches of at most ``rows`` (a ParquetFrame read batch by batch; at
    least one batch, maybe empty, so the table is created)."""
    if not isinstance(df, ParquetFrame):
        yield df
        return
    empty = True
    for batch in df.dataset().to_batches(batch_size=rows):
        if batch.num_rows or empty:
            empty = False
            yield batch.to_pandas()
    if empty:
        yield df.dataset().schema.empty_table().to_pandas()


def _partition_values(df: Frame, column: str) -> list:
    if isinstance(df, ParquetFrame):
        return df.dataset().to_table(columns=[column]).column(0).unique().to_pylist()
    return df[column].drop_duplicates().tolist()


def _publish_sql(frames: dict[Mart, Frame], url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            for mart, df in frames.items():
                incremental = bool(mart.partition_by) and mart.name in existing
                if incremental:
                    values = _partition_values(df, str(mart.partition_by))
                    if values:
                        conn.execute(
                            text(
                                f"DELETE FROM {mart.name} WHERE {mart.partition_by} IN :v"
                            ).bindparams(bindparam("v", expanding=True)),
                            {"v": values},
                        )
                for i, batch in enumerate(_batches(df)):
                    mode = "append" if incremental or i else "replace"
                    batch.to_sql(mart.name, conn, if_exists=mode, index=False)
    finally:
        engine.dispose()


def read_mart(mart: Mart, settings: Settings | None = None, where: str = "") -> pd.DataFrame:
    """A mart as the serving store holds it (for checks and the CLI)."""
    return query(f"SELECT * FROM {mart.name} {where}", settings)


def query(sql: str, settings: Settings | None = None) -> pd.DataFrame:
    """The rows of ``sql`` run on the serving store (read-only)."""
    url = (settings or get_settings()).serving_store()
    path = duckdb_path(url)
    if path is not None:
        import duckdb

        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(sql).df()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(text(sql), conn)
    finally:
        engine.dispose()


def store_columns(settings: Settings | None = None) -> dict[str, list[tuple[str, str]]]:
    """(column, SQL type) of every table in the serving store, by table name."""
    url = (settings or get_settings()).serving_store()
    path = duckdb_path(url)
    if path is not None:
        import duckdb

        if not path.exists():
            return {}
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "ORDER BY table_name, ordinal_position"
            ).fetchall()
        out: dict[str, list[tuple[str, str]]] = {}
        for table, column, dtype in rows:
            out.setdefault(table, []).append((column, dtype))
        return out
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {
            t: [(c["name"], str(c["type"])) for c in insp.get_columns(t)]
            for t in insp.get_table_names()
        }
    finally:
        engine.dispose()


def reader_url(settings: Settings | None = None) -> str:
    """The store's URL for readers (BI): DuckDB opened read-only, so concurrent dashboard
    queries never contend for the file's write lock."""
    url = (settings or get_settings()).serving_store()
    if duckdb_path(url) is not None and "access_mode" not in url:
        return url + ("&" if "?" in url else "?") + "access_mode=read_only"
    return url
