"""The serving store: atomic, incremental publishes to the embedded DuckDB file, and the same
marts in a real PostgreSQL server the harness starts (initdb + pg_ctl in a tmp folder)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import free_port, make_settings
from warehouse import serving

TIERS = serving.MART_TIER_DISTRIBUTION  # incremental on as_of
QUALITY = serving.MART_QUALITY_TREND  # rebuilt whole


def _tiers(as_of: date, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": [as_of] * n,
            "region_code": [f"1101{i:02d}" for i in range(n)],
            "tier": ["A", "B", "C", "D"][:n],
            "enterprises": list(range(1, n + 1)),
        }
    )


def _quality(n: int) -> pd.DataFrame:
    return pd.DataFrame({"run_date": [date(2026, 1, i + 1) for i in range(n)], "checks": [5] * n})


def test_publish_replaces_only_the_runs_partition_and_is_idempotent(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    url = serving.publish({TIERS: _tiers(date(2026, 1, 1), 4), QUALITY: _quality(2)}, s)
    assert url.startswith("duckdb:///") and serving.duckdb_path(url).exists()
    serving.publish({TIERS: _tiers(date(2026, 2, 1), 3), QUALITY: _quality(3)}, s)
    got = serving.read_mart(TIERS, s)
    assert got.groupby("as_of").size().to_dict() == {
        pd.Timestamp("2026-01-01"): 4,
        pd.Timestamp("2026-02-01"): 3,
    } or got.groupby("as_of").size().to_dict() == {date(2026, 1, 1): 4, date(2026, 2, 1): 3}
    assert len(serving.read_mart(QUALITY, s)) == 3  # rebuilt whole
    before = serving.read_mart(TIERS, s).sort_values(["as_of", "region_code"])
    serving.publish({TIERS: _tiers(date(2026, 2, 1), 3)}, s)  # the same run again
    after = serving.read_mart(TIERS, s).sort_values(["as_of", "region_code"])
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))


def _count_in_another_process(path: Path) -> int:
    """Rows of the tier mart as a new reader process (like a BI server) sees them."""
    code = (
        f"import duckdb; c = duckdb.connect({str(path)!r}, read_only=True); "
        f"print(c.execute('SELECT COUNT(*) FROM {TIERS.name}').fetchone()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout)


def test_a_reader_keeps_its_snapshot_while_a_new_store_is_swapped_in(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    serving.publish({TIERS: _tiers(date(2026, 1, 1), 4)}, s)
    path = serving.duckdb_path(s.serving_store())
    reader = duckdb.connect(str(path), read_only=True)
    try:
        serving.publish({TIERS: _tiers(date(2026, 2, 1), 2)}, s)
        # the open reader still sees the file it opened; a new reader sees the new one
        assert reader.execute(f"SELECT COUNT(*) FROM {TIERS.name}").fetchone()[0] == 4
        assert _count_in_another_process(path) == 6
    finally:
        reader.close()
    assert not list(path.parent.glob(".*.tmp")), "a work file was left behind"


def test_a_failed_publish_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    serving.publish({TIERS: _tiers(date(2026, 1, 1), 4)}, s)
    serving.publish({QUALITY: _quality(2)}, s)
    bad_date = _tiers(date(2026, 2, 1), 2).assign(as_of="not a date")
    with pytest.raises(duckdb.Error):  # the quality mart is written first, then this fails
        serving.publish({QUALITY: _quality(5), TIERS: bad_date}, s)
    assert len(serving.read_mart(TIERS, s)) == 4
    assert len(serving.read_mart(QUALITY, s)) == 2
    no_key = _tiers(date(2026, 2, 1), 2).drop(columns=["as_of"])
    with pytest.raises(ValueError, match="as_of"):
        serving.publish({TIERS: no_key}, s)
    assert len(serving.read_mart(TIERS, s)) == 4


def test_reader_url_opens_duckdb_read_only(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    assert serving.reader_url(s).endswith("?access_mode=read_only")
    pg = s.model_copy(update={"serving_url": "postgresql://u@127.0.0.1:5432/marts"})
    assert serving.reader_url(pg) == "postgresql://u@127.0.0.1:5432/marts"


# ---- PostgreSQL ---------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if not found:
        pytest.fail(f"PostgreSQL's {name} is not installed (make test-tools installs it)")
    return found


@pytest.fixture(scope="module")
def postgres() -> str:
    """A throw-away PostgreSQL on 127.0.0.1 (as the ``postgres`` user when run as root)."""
    root = Path(tempfile.mkdtemp(prefix="pg-"))  # not under pytest's tmp: that is root-only
    data, port = root / "data", free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    run = lambda *a: subprocess.run([*as_user, *a], check=True, capture_output=True)  # noqa: E731
    run(_pg_bin("initdb"), "-D", str(data), "-U", "marts", "--auth=trust", "-E", "UTF8")
    run(
        _pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-w", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start",
    )  # fmt: skip
    yield f"postgresql://marts@127.0.0.1:{port}/postgres"
    run(_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop")
    shutil.rmtree(root, ignore_errors=True)


def test_postgres_serving_holds_the_same_marts(tmp_path: Path, postgres: str) -> None:
    duck = make_settings(tmp_path)
    pg = duck.model_copy(update={"serving_url": postgres})
    for s in (duck, pg):
        serving.publish({TIERS: _tiers(date(2026, 1, 1), 4), QUALITY: _quality(2)}, s)
        serving.publish({TIERS: _tiers(date(2026, 2, 1), 3), QUALITY: _quality(3)}, s)
        serving.publish({TIERS: _tiers(date(2026, 2, 1), 3)}, s)  # a re-run changes nothing

    def rows(s):
        df = serving.query(
            f"SELECT CAST(as_of AS DATE) AS as_of, region_code, tier, enterprises "
            f"FROM {TIERS.name} ORDER BY as_of, region_code",
            s,
        )
        df["as_of"] = pd.to_datetime(df["as_of"]).dt.date
        return df.astype({"enterprises": "int64"})

    pd.testing.assert_frame_equal(rows(duck), rows(pg))
    assert len(rows(pg)) == 7
    assert len(serving.read_mart(QUALITY, pg)) == 3
    assert {t for t, _ in serving.store_columns(pg).items()} >= {TIERS.name, QUALITY.name}


def _parquet(folder: Path, *parts: pd.DataFrame) -> serving.ParquetFrame:
    """Part files and a _SUCCESS marker, as Spark's ``df.write.parquet`` leaves them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    for i, part in enumerate(parts):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), folder / f"part-{i}.parquet"
        )
    (folder / "_SUCCESS").write_text("")
    return serving.ParquetFrame(folder)


def test_parquet_frames_publish_like_pandas_in_both_stores(tmp_path: Path, postgres: str) -> None:
    duck = make_settings(tmp_path / "duck")
    pg = duck.model_copy(update={"serving_url": postgres})
    feb = _tiers(date(2026, 2, 1), 3)
    staged = _parquet(tmp_path / "feb", feb.iloc[:2], feb.iloc[2:], feb.iloc[:0])
    assert len(staged) == 3 and staged.columns == list(feb.columns)
    empty = _parquet(tmp_path / "empty", _quality(0))
    for s in (duck, pg):
        serving.publish({TIERS: _tiers(date(2026, 1, 1), 4)}, s)
        serving.publish({TIERS: staged, QUALITY: empty}, s)
        serving.publish({TIERS: staged}, s)  # a re-run changes nothing
        got = serving.query(
            f"SELECT CAST(as_of AS DATE) AS d, COUNT(*) AS n FROM {TIERS.name} GROUP BY d", s
        )
        by_day = {pd.Timestamp(d).date(): int(n) for d, n in zip(got["d"], got["n"], strict=True)}
        assert by_day == {date(2026, 1, 1): 4, date(2026, 2, 1): 3}
        assert len(serving.read_mart(QUALITY, s)) == 0  # created, with no rows
        assert [c for c, _ in serving.store_columns(s)[QUALITY.name]] == ["run_date", "checks"]


def test_marts_spark_writes_as_parquet_publish_what_collecting_would(spark, tmp_path: Path) -> None:
    from pipelines.marts import _staged

    df = spark.createDataFrame(
        [(date(2026, 3, 1), "110101", "A", 5), (date(2026, 3, 1), "110102", "D", None)],
        "as_of date, region_code string, tier string, enterprises long",
    ).repartition(2)
    staged = _staged(df, TIERS, tmp_path / "staging")
    assert isinstance(staged, serving.ParquetFrame) and len(staged) == 2
    stores = [make_settings(tmp_path / "staged"), make_settings(tmp_path / "collected")]
    serving.publish({TIERS: staged}, stores[0])
    serving.publish({TIERS: _staged(df, TIERS, None)}, stores[1])
    a, b = (
        serving.read_mart(TIERS, s).sort_values("region_code", ignore_index=True) for s in stores
    )
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    staged_types, collected_types = (dict(serving.store_columns(s)[TIERS.name]) for s in stores)
    assert staged_types["as_of"] == collected_types["as_of"] == "DATE"
    # collecting turns a nullable integer into a float; the Parquet files keep it an integer
    assert (staged_types["enterprises"], collected_types["enterprises"]) == ("BIGINT", "DOUBLE")
