"""Enterprise attributes declared in a source mapping (tests/fixtures/bureau_b_attributes):
bureau B's registry with its 经营范围 (business scope, read through keywords) and
经营场所面积（平方米） (floor area) declared — no longer unmapped, landed in silver with the
enterprise's SCD2 version and lineage, point-in-time gold features ``attr_<name>``, and a
LightGBM model that names the attribute in its reasons with the mapping's Chinese template."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from models.registry import model_dir
from models.score import score
from models.train import fit
from pipelines.conform import dim_enterprise
from pipelines.features import build_features
from pipelines.features.build import features_frame
from pipelines.ingest import land_day
from pipelines.ingest.layout import IngestError, layout
from tests.conftest import make_settings
from warehouse import contracts, tables
from warehouse.contracts import MappingError, load_mapping, load_mappings
from warehouse.contracts.features import CATEGORICAL, FEATURE_NAMES

FIXTURE = Path(__file__).parent / "fixtures" / "bureau_b_attributes"
MAPPINGS = FIXTURE / "mappings"
LANDING = FIXTURE / "landing"
DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 5)
BEFORE, AFTER = date(2026, 3, 1), date(2026, 4, 1)  # around the 2026-03-04 version
FOOD_SHOP = "91440305MA5FXXH2KY"  # 日用百货零售 → 餐饮服务；日用百货零售 on 2026-03-04
FOOD_MAKER = "91350100M000100Y43"  # 食品生产；预包装食品销售
SCOPE_ZH = "经营范围涉及食品（重点监管领域）"


def _registry_yaml() -> str:
    return (MAPPINGS / "registry.yaml").read_text(encoding="utf-8")


def _bad(tmp_path: Path, old: str, new: str) -> str:
    text = _registry_yaml()
    assert old in text
    path = tmp_path / "registry.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    return str(err.value)


def test_the_mapping_declares_two_attributes_as_features() -> None:
    m = load_mappings(MAPPINGS)["registry"]
    scope, area = m.attribute_features()
    assert (scope.name, scope.categorical, scope.direction) == ("attr_business_scope", True, 0)
    assert (area.name, area.categorical, area.direction) == ("attr_floor_area", False, -1)
    assert scope.can_raise("药品、成品油") and not scope.can_raise("其他")
    assert area.can_raise(15.0) and not area.can_raise(60.0)
    assert set(contracts.catalogue()) == set(FEATURE_NAMES)  # the demo bureau declares none


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    kind: categorical\n",
            "    kind: categorical\n    direction: 1\n",
            "registry.yaml:34: attributes.business_scope: a categorical attribute has no order: "
            "direction must be 0",
        ),
        (
            "    kind: numeric\n",
            "    kind: number\n",
            "registry.yaml:47: attributes.floor_area.kind",
        ),
        (
            "zh: 经营场所面积仅{v}平方米",
            "zh: 经营场所面积仅{area}平方米",
            "attributes.floor_area: zh: a template may only name {v} and {code}",
        ),
        (
            "risky: [食品, 药品, 成品油]",
            "risky: [食品, 烟草]",
            "attributes.business_scope: risky: ['烟草'] are not keyword values",
        ),
        (
            "    headers: [经营范围]",
            "    headers: [住所]",
            "registry.yaml:34: attributes.business_scope: header '住所' is already read as address",
        ),
        ("  floor_area:", "  FloorArea:", "attributes.FloorArea: a name is snake_case"),
    ],
)
def test_a_bad_attribute_is_refused_with_file_line_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert expected in _bad(tmp_path, old, new)


def test_only_the_registry_declares_attributes(tmp_path: Path) -> None:
    path = tmp_path / "penalty.yaml"
    path.write_text(
        "source: penalty\ntitle_zh: 行政处罚\ntitle_en: penalties\nowner_zh: 稽查处\n"
        "files: [XZCF_*.csv]\nfields: {case_no: 文号, uscc: 统一社会信用代码, decided_on: 日期}\n"
        "attributes:\n"
        "  law: {headers: [法律依据], kind: categorical, zh: '依据{v}', en: 'by {v}'}\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match="penalty.yaml:7: attributes: only the registry"):
        load_mapping(path)


def test_declared_columns_are_no_longer_unmapped() -> None:
    m = load_mappings(MAPPINGS)["registry"]
    required = [m.header_of(f) for f in m.canonical.required]
    headers = [*required, "经营范围", "经营场所面积", "备注"]
    lay = layout(m, headers, "登记信息_1.csv")
    at = len(required)
    assert lay.attributes == {"business_scope": at, "floor_area": at + 1}
    assert lay.unmapped == ("备注",)
    with pytest.raises(IngestError, match="duplicated header"):
        layout(m, [*headers, "经营场所面积（平方米）"], "登记信息_1.csv")


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    s = make_settings(tmp_path_factory.mktemp("attributes")).replace(
        sources_dir=str(MAPPINGS), landing_root=str(LANDING)
    )
    landed = {}
    for day in (DAY1, DAY2):
        (landed[day],) = land_day(spark, LANDING, day, s)
        dim_enterprise.conform(spark, day, s)
    return s, landed


def test_attributes_land_in_bronze_and_silver_with_lineage(spark, lake):
    s, landed = lake
    assert landed[DAY1].status == "landed" and landed[DAY1].unmapped == ("备注",)
    bronze = tables.read(spark, tables.BRONZE["registry"], s).where(F.col("uscc") == FOOD_MAKER)
    row = bronze.first()
    assert row._attributes == {
        "business_scope": "食品生产；预包装食品销售",
        "floor_area": "800平方米",
    }
    assert row._extra == {"备注": None} or row._extra == {"备注": ""}
    dim = tables.read(spark, tables.DIM_ENTERPRISE, s).where(F.col("uscc") == FOOD_SHOP)
    versions = {r.valid_from: r for r in dim.collect()}
    old, new = versions[date(2018, 7, 2)], versions[date(2026, 3, 4)]
    assert old.attributes == {"business_scope": "日用百货零售", "floor_area": "60"}
    assert new.attributes == {
        "business_scope": "餐饮服务;日用百货零售",
        "floor_area": "15",
    }  # half-width
    assert old.valid_to == new.valid_from and new.is_current
    assert Path(new._source_file).name == "登记信息_20260305.csv" and new._source_row == 1


def test_attribute_features_are_point_in_time(spark, lake):
    s, _ = lake
    rows = features_frame(spark, [BEFORE, AFTER], s).collect()
    got = {(r.as_of, r.uscc): (r.attr_business_scope, r.attr_floor_area) for r in rows}
    assert got[(BEFORE, FOOD_SHOP)] == ("其他", 60.0)  # the later version does not leak back
    assert got[(AFTER, FOOD_SHOP)] == ("食品", 15.0)
    assert got[(AFTER, FOOD_MAKER)] == ("食品", 800.0)
    assert got[(AFTER, "91110000802100433B")] == ("药品、成品油", None)  # mapping order
    assert got[(AFTER, "914403001922038216")] == ("其他", 1200.0)


def _synthetic_frame(n: int = 600, seed: int = 7) -> pd.DataFrame:
    """Gold-shaped rows where only the business scope carries signal: 食品 / 药品 scopes are
    found in violation far more often."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: (["X"] * n if c in CATEGORICAL else np.zeros(n)) for c in FEATURE_NAMES})
    scope = rng.choice(["食品", "其他", "药品、成品油"], size=n)
    df["attr_business_scope"] = scope
    df["attr_floor_area"] = rng.uniform(10, 500, size=n)
    p = np.where(scope == "其他", 0.05, 0.6)
    df["label"] = (rng.uniform(size=n) < p).astype(int)
    return df


def test_a_model_names_the_attribute_in_its_reasons(spark, lake):
    s, _ = lake
    catalogue = contracts.catalogue(s)
    frame = _synthetic_frame()
    model = fit(
        frame,
        frame,
        params={"min_data_in_leaf": 5, "min_data_per_group": 5, "cat_smooth": 1.0},
        num_rounds=30,
        catalogue=catalogue,
    )
    assert model.features[-2:] == ["attr_business_scope", "attr_floor_area"]
    assert model.spec()["monotone"]["attr_floor_area"] == -1
    assert model.spec()["categorical"][-1] == "attr_business_scope"
    version = "m-attributes"
    d = Path(model_dir(s, version))
    d.mkdir(parents=True)
    model.booster.save_model(str(d / "booster.txt"))
    (d / "features.json").write_text(json.dumps(model.spec(), ensure_ascii=False), "utf-8")
    build_features(spark, [AFTER], s)
    gold = tables.read(spark, tables.ENTERPRISE_FEATURES, s)
    assert {"attr_business_scope", "attr_floor_area"} <= set(gold.columns)
    score(spark, AFTER, s, version)
    scores = tables.read(spark, tables.RISK_SCORES, s).where(F.col("as_of") == F.lit(AFTER))
    reasons = {r.uscc: r.reasons for r in scores.collect()}
    top = reasons[FOOD_MAKER][0]
    assert (top.feature, top.text_zh, top.raises_risk) == ("attr_business_scope", SCOPE_ZH, True)
    assert "business scope covers 食品" in top.text_en
    other = [r for r in reasons["914403001922038216"] if r.feature == "attr_business_scope"]
    assert not any(r.raises_risk for r in other)  # 其他 is not a risky value
