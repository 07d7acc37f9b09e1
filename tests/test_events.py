"""Events of further kinds declared in a source mapping (tests/fixtures/bureau_b_events):
bureau B's administrative-licensing export (行政许可, GB18030 and UTF-8 files) read as the
event source, with two kinds declared — 准予许可 (licence granted) and 吊销/撤销许可 (licence
revoked). Rows land in silver with lineage, a word outside the mapping and a broken USCC are
quarantined with their reasons, each kind becomes a point-in-time gold feature ``evt_<kind>``
(dated in its window and reported before T), and a LightGBM model names the revocation in its
reasons with the mapping's Chinese template. No Python names either kind."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from models.registry import model_dir
from models.score import score
from models.train import fit
from pipelines.conform import conform_day
from pipelines.features import build_features
from pipelines.features.build import features_frame
from pipelines.ingest import land_day
from tests.conftest import make_settings
from warehouse import contracts, tables
from warehouse.contracts import MappingError, load_mapping, load_mappings
from warehouse.contracts.features import CATEGORICAL, FEATURE_NAMES

FIXTURES = Path(__file__).parent / "fixtures"
EVENTS = FIXTURES / "bureau_b_events"
REGISTRY = FIXTURES / "bureau_b_attributes"  # the same bureau's registry export
DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 5)
BEFORE, AFTER = date(2026, 3, 1), date(2026, 4, 1)
FOOD_MAKER = "91350100M000100Y43"  # revoked 2025-11-03; granted 2019 (outside the window)
PETROL = "91110000802100433B"  # granted 2026-01-10
FOOD_SHOP = "91440305MA5FXXH2KY"  # revoked 2026-03-03, reported 03-04
TELECOM = "914403001922038216"  # revoked 2026-02-20 but reported 03-04; a 变更许可 quarantined
REVOKED_ZH = "近12个月被吊销或撤销许可1次"


def _event_yaml() -> str:
    return (EVENTS / "mappings" / "event.yaml").read_text(encoding="utf-8")


def _bad(tmp_path: Path, old: str, new: str) -> str:
    text = _event_yaml()
    assert old in text
    path = tmp_path / "event.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    return str(err.value)


def test_the_mapping_declares_two_kinds_as_features() -> None:
    m = load_mapping(EVENTS / "mappings" / "event.yaml")
    granted, revoked = m.declared_features()
    assert (granted.name, granted.family, granted.direction) == ("evt_licence_granted", "event", 0)
    assert (revoked.name, revoked.direction) == ("evt_licence_revoked", 1)
    assert revoked.can_raise(1.0) and not revoked.can_raise(0.0)
    assert not granted.can_raise(3.0)  # no direction: never a reason
    assert m.words("kind")["撤销许可"] == "licence_revoked"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    licence_revoked: [吊销许可证, 撤销许可]\n",
            "    licence_revoked: [吊销许可证, 撤销许可]\n    licence_changed: [变更许可]\n",
            "vocabularies.kind: ['licence_changed'] are not kinds declared in events",
        ),
        (
            "    licence_granted: [准予许可, 新办, 延续]\n",
            "",
            "events.licence_granted: vocabularies.kind lists no word for it",
        ),
        (
            "zh: 近12个月被吊销或撤销许可{v}次",
            "zh: 近12个月被吊销{n}次",
            "events.licence_revoked: zh: a template may only name {v}",
        ),
        ("    window_days: 365", "    window_days: 0", "events.licence_revoked.window_days"),
        ("    direction: 1\n", "    direction: -1\n", "events.licence_revoked.direction"),
        (
            "  licence_revoked:\n    title_zh",
            "  LicenceRevoked:\n    title_zh",
            "vocabularies.kind: ['licence_revoked'] are not kinds declared in events",
        ),
    ],
)
def test_a_bad_event_kind_is_refused_with_file_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert expected in _bad(tmp_path, old, new)


def test_only_the_event_mapping_declares_kinds(tmp_path: Path) -> None:
    path = tmp_path / "penalty.yaml"
    path.write_text(
        "source: penalty\ntitle_zh: 行政处罚\ntitle_en: penalties\nowner_zh: 稽查处\n"
        "files: [XZCF_*.csv]\nfields: {case_no: 文号, uscc: 统一社会信用代码, decided_on: 日期}\n"
        "events:\n"
        "  fined: {title_zh: 罚款, title_en: fined, zh: '罚款{v}次', en: 'fined {v} times'}\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match="penalty.yaml:7: events: only the event mapping"):
        load_mapping(path)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Bureau B's registry and licensing exports of two days, landed and conformed."""
    root = tmp_path_factory.mktemp("events")
    maps, landing = root / "mappings", root / "landing"
    maps.mkdir()
    shutil.copy(REGISTRY / "mappings" / "registry.yaml", maps)
    shutil.copy(EVENTS / "mappings" / "event.yaml", maps)
    for src in (REGISTRY / "landing", EVENTS / "landing"):
        shutil.copytree(src, landing, dirs_exist_ok=True)
    s = make_settings(root).replace(sources_dir=str(maps), landing_root=str(landing))
    landed = {}
    for day in (DAY1, DAY2):
        landed[day] = {r.source: r for r in land_day(spark, landing, day, s)}
        conform_day(spark, day, s)
    return s, landed


def test_events_land_in_silver_with_lineage_and_bad_rows_are_quarantined(spark, lake):
    s, landed = lake
    assert landed[DAY1]["event"].status == "landed"
    silver = {(r.uscc, r.kind_code): r for r in tables.read(spark, tables.FCT_EVENT, s).collect()}
    assert set(silver) == {
        (FOOD_MAKER, "licence_revoked"),
        (FOOD_MAKER, "licence_granted"),
        (PETROL, "licence_granted"),
        (FOOD_SHOP, "licence_revoked"),
        (TELECOM, "licence_revoked"),
    }
    shop = silver[(FOOD_SHOP, "licence_revoked")]
    assert (shop.kind, shop.event_on, shop.reported_on) == (
        "吊销许可证",
        date(2026, 3, 3),
        date(2026, 3, 4),
    )
    assert Path(shop._source_file).name == "行政许可_20260305.csv" and shop._source_row == 1
    assert silver[(PETROL, "licence_granted")].kind == "新办"  # the bureau's word is kept
    rejected = tables.read(spark, tables.REJECTED_ROWS, s).where(F.col("source") == "event")
    reasons = {r._source_row: r.check_name for r in rejected.collect()}
    assert reasons == {4: "vocabulary_kind", 5: "uscc_check_digit", 6: "required_kind"}


def test_event_features_are_point_in_time(spark, lake):
    s, _ = lake
    rows = features_frame(spark, [BEFORE, AFTER], s).collect()
    got = {(r.as_of, r.uscc): (r.evt_licence_granted, r.evt_licence_revoked) for r in rows}
    assert got[(BEFORE, FOOD_MAKER)] == (0.0, 1.0)  # the 2019 grant is outside the window
    assert got[(BEFORE, PETROL)] == (1.0, 0.0)
    assert got[(BEFORE, FOOD_SHOP)] == (0.0, 0.0)  # revoked after T: does not leak back
    assert got[(BEFORE, TELECOM)] == (0.0, 0.0)  # dated before T but reported after it
    assert got[(AFTER, FOOD_SHOP)] == (0.0, 1.0)
    assert got[(AFTER, TELECOM)] == (0.0, 1.0)
    assert got[(AFTER, FOOD_MAKER)] == (0.0, 1.0)


def _synthetic_frame(n: int = 600, seed: int = 11) -> pd.DataFrame:
    """Gold-shaped rows where only a revoked licence carries signal."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: (["X"] * n if c in CATEGORICAL else np.zeros(n)) for c in FEATURE_NAMES})
    df["attr_business_scope"] = "其他"
    df["attr_floor_area"] = 100.0
    revoked = rng.uniform(size=n) < 0.3
    df["evt_licence_granted"] = rng.integers(0, 3, size=n).astype(float)
    df["evt_licence_revoked"] = revoked.astype(float)
    df["label"] = (rng.uniform(size=n) < np.where(revoked, 0.6, 0.05)).astype(int)
    return df


def test_a_model_names_the_revocation_in_its_reasons(spark, lake):
    s, _ = lake
    catalogue = contracts.catalogue(s)
    assert list(catalogue)[-2:] == ["evt_licence_granted", "evt_licence_revoked"]
    frame = _synthetic_frame()
    model = fit(
        frame,
        frame,
        params={"min_data_in_leaf": 5, "min_data_per_group": 5, "cat_smooth": 1.0},
        num_rounds=30,
        catalogue=catalogue,
    )
    assert model.features[-2:] == ["evt_licence_granted", "evt_licence_revoked"]
    assert model.spec()["monotone"]["evt_licence_revoked"] == 1
    version = "m-events"
    d = Path(model_dir(s, version))
    d.mkdir(parents=True)
    model.booster.save_model(str(d / "booster.txt"))
    (d / "features.json").write_text(json.dumps(model.spec(), ensure_ascii=False), "utf-8")
    build_features(spark, [AFTER], s)
    gold = tables.read(spark, tables.ENTERPRISE_FEATURES, s)
    assert {"evt_licence_granted", "evt_licence_revoked"} <= set(gold.columns)
    score(spark, AFTER, s, version)
    scores = tables.read(spark, tables.RISK_SCORES, s).where(F.col("as_of") == F.lit(AFTER))
    reasons = {r.uscc: r.reasons for r in scores.collect()}
    top = reasons[FOOD_SHOP][0]
    assert (top.feature, top.text_zh, top.raises_risk) == ("evt_licence_revoked", REVOKED_ZH, True)
    assert top.text_en == "licence revoked 1 times in 12 months"
    petrol = [r for r in reasons[PETROL] if r.feature.startswith("evt_")]
    assert not any(r.raises_risk for r in petrol)  # a grant is never a reason


def test_the_demo_bureau_declares_no_events() -> None:
    assert "event" not in load_mappings(contracts.SHIPPED_MAPPINGS)
    assert not any(f.startswith("evt_") for f in contracts.catalogue())
