"""Shared fixtures: one Spark session per test run (it takes ~15 s to start), lakes in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse.settings import Settings


@pytest.fixture(scope="session")
def spark():
    from warehouse.spark import get_spark

    session = get_spark(Settings(spark_master="local[2]", shuffle_partitions=4, driver_memory="3g"))
    yield session
    session.stop()


def make_settings(root: Path) -> Settings:
    """Settings for a throw-away lake under ``root`` with a fixed tokenisation key."""
    return Settings(
        lake_root=str(root / "lakehouse"),
        landing_root=str(root / "landing"),
        pii_key="test-key-not-secret",
    )


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)
