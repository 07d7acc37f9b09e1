"""Settings resolve every location once; the personal-data key never lives in the lake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warehouse import storage
from warehouse.settings import KeyMissing, Settings


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("RISK_INSIGHT_"):
            monkeypatch.delenv(name)
    return tmp_path


def test_relative_locations_become_absolute_against_the_working_directory(in_tmp: Path) -> None:
    s = Settings()
    assert s.lake_root == str(in_tmp / "lakehouse")
    assert s.landing_root == str(in_tmp / "data" / "sim" / "landing")
    assert s.outputs_root == str(in_tmp / "outputs")
    assert s.reports_dir() == str(in_tmp / "reports")
    assert s.data_docs_dir() == str(in_tmp / "quality_docs")
    assert s.serving_store() == f"duckdb:///{in_tmp}/lakehouse/serving/marts.duckdb"
    assert s.table_path("audit", "ingest_log") == f"{in_tmp}/lakehouse/audit/ingest_log"
    other = Settings(lake_root="some/where/../lake", quality_policy="policy.yaml")
    assert other.lake_root == str(in_tmp / "some" / "lake")
    assert other.quality_policy == str(in_tmp / "policy.yaml")


def test_absolute_and_home_paths(in_tmp: Path) -> None:
    assert Settings(lake_root="/data/lake/").lake_root == "/data/lake"
    s = Settings(lake_root="~/lake", reports_root="~/r")
    assert s.lake_root == str(Path.home() / "lake")
    assert s.reports_dir() == str(Path.home() / "r")


def test_environment_variables_are_resolved_too(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISK_INSIGHT_LAKE_ROOT", "./elsewhere")
    assert Settings().lake_root == str(in_tmp / "elsewhere")


def test_uris_pass_unchanged(in_tmp: Path) -> None:
    f = Settings(lake_root="file:///srv/lake")
    assert f.lake_root == "file:///srv/lake"
    assert f.table_path("gold", "risk_scores") == "file:///srv/lake/gold/risk_scores"
    assert f.reports_dir() == "/srv/reports"  # a file:// lake is local: reports beside it
    s3 = Settings(lake_root="s3a://bureau-lake/prod", landing_root="s3a://bureau-landing/in")
    assert s3.lake_root == "s3a://bureau-lake/prod"
    assert s3.landing_root == "s3a://bureau-landing/in"
    assert s3.table_path("silver", "fct_penalty") == "s3a://bureau-lake/prod/silver/fct_penalty"
    # files for people stay on this machine when the lake is in a bucket
    assert s3.reports_dir() == str(in_tmp / "reports")
    assert s3.data_docs_dir() == str(in_tmp / "quality_docs")
    assert s3.serving_store() == f"duckdb:///{in_tmp}/serving/marts.duckdb"
    abfss = "abfss://lake@account.dfs.core.windows.net/risk"
    assert Settings(lake_root=abfss).lake_root == abfss


def test_replace_resolves_like_loading(in_tmp: Path) -> None:
    s = Settings(lake_root="/a/lake")
    t = s.replace(lake_root="./b")
    assert t.lake_root == str(in_tmp / "b")
    assert t.reports_dir() == str(in_tmp / "reports")
    assert s.lake_root == "/a/lake"  # the original is untouched


def test_storage_paths_and_files(tmp_path: Path) -> None:
    assert storage.join("s3a://b/lake/", "models", "m1") == "s3a://b/lake/models/m1"
    assert storage.parent("s3a://b/lake/models") == "s3a://b/lake"
    assert storage.is_local("file:///x") and storage.is_local("/x")
    assert not storage.is_local("s3a://b/x")
    with pytest.raises(ValueError, match="not on the local file system"):
        storage.local_path("s3a://b/x")
    target = storage.join(f"file://{tmp_path}", "a", "b.txt")
    assert storage.is_empty(str(tmp_path)) and not storage.exists(target)
    storage.write_text(target, "模型")
    assert storage.read_text(target) == "模型" and storage.exists(target)
    assert not storage.is_empty(str(tmp_path))


def test_pii_key_generated_outside_the_lake_in_development(in_tmp: Path) -> None:
    s = Settings()
    key = s.resolved_pii_key()
    key_file = in_tmp / ".secrets" / "pii_key"
    assert key_file.read_text().strip() == key and len(key) == 64
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert not key_file.is_relative_to(Path(s.lake_root))
    assert Settings().resolved_pii_key() == key  # stable for the lake


def test_pii_key_required_in_production(in_tmp: Path) -> None:
    with pytest.raises(KeyMissing, match="RISK_INSIGHT_PII_KEY"):
        Settings(environment="production").resolved_pii_key()
    assert Settings(environment="production", pii_key="k").resolved_pii_key() == "k"
    (in_tmp / "key").write_text("from-file\n")
    assert Settings(environment="production", pii_key_file="key").resolved_pii_key() == (
        "from-file"
    )
    with pytest.raises(KeyMissing, match="does not exist"):
        Settings(pii_key_file="missing").resolved_pii_key()


def test_pii_key_file_inside_the_lake_is_refused(in_tmp: Path) -> None:
    inside = in_tmp / "lakehouse" / "_secrets" / "pii_key"
    inside.parent.mkdir(parents=True)
    inside.write_text("k")
    with pytest.raises(ValueError, match="must not be inside the lake"):
        Settings(pii_key_file=str(inside)).resolved_pii_key()
