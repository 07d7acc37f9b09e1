"""`risk-insight explain`: hard rule or rank, score, and each reason with the source records
behind it (source, file, row, delivery date), point in time, on a hand-built lake."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from risk_insight.explain import explain, render_explanation
from tests.conftest import make_settings
from tests.test_lists import _put
from warehouse import tables

T = date(2026, 11, 1)
U, V = "91110101MA0000001X", "91110101MA0000002X"
RUN = date(2026, 10, 28)


def _reason(feature, text, c, raises):
    return {"feature": feature, "value": 1.0, "contribution": c, "text_zh": text,
            "text_en": text, "raises_risk": raises}  # fmt: skip


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    s = make_settings(tmp_path_factory.mktemp("explain"))
    lineage = {"_source_file": "registry.csv", "_run_date": RUN}
    _put(spark, s, tables.DIM_ENTERPRISE, [
        {"uscc": U, "name": "某某商贸有限公司", "region_code": "110101", "status": "存续",
         "address": "北京市东城区某某路1号", "valid_from": date(2015, 3, 1), "is_current": True,
         "founded_on": date(2015, 3, 1), "_source_row": 7, **lineage},
    ])  # fmt: skip
    _put(spark, s, tables.DIM_REGION, [
        {"region_code": "110101", "region_name": "东城区", "city_code": "110100",
         "city_name": "北京市", "province_name": "北京市"},
    ])  # fmt: skip
    pen = {"_source_file": "penalty.csv", "_run_date": RUN}
    _put(spark, s, tables.FCT_PENALTY, [
        {"case_no": "京东市监罚〔2026〕12号", "uscc": U, "decided_on": date(2026, 3, 5),
         "reported_on": date(2026, 3, 9), "category": "虚假宣传",
         "amount_yuan": Decimal("12000.00"), "_source_row": 41, **pen},
        {"case_no": "京东市监罚〔2025〕3号", "uscc": U, "decided_on": date(2025, 6, 1),
         "reported_on": date(2025, 6, 3), "category": "价格违法",
         "amount_yuan": Decimal("3000.00"), "_source_row": 12, **pen},
        # decided before T but made public after T: the score did not see it
        {"case_no": "京东市监罚〔2026〕99号", "uscc": U, "decided_on": date(2026, 10, 20),
         "reported_on": date(2026, 11, 5), "_source_row": 88, **pen},
        {"case_no": "OTHER", "uscc": V, "decided_on": date(2026, 3, 5),
         "reported_on": date(2026, 3, 9), "_source_row": 2, **pen},
    ])  # fmt: skip
    _put(spark, s, tables.FCT_COMPLAINT, [
        {"complaint_id": f"TS{i}", "uscc": U, "received_on": date(2026, 9, 1 + i),
         "category": "虚假宣传", "channel": "12315", "_source_file": "complaint.csv",
         "_source_row": 100 + i, "_run_date": date(2026, 10, 2)}
        for i in range(3)
    ])  # fmt: skip
    _put(spark, s, tables.CREDIT_TIERS, [
        {"as_of": T, "uscc": U, "region_code": "110101", "tier": "D", "model_tier": "D",
         "tier_source": "model", "excluded": False, "probability": 0.4321,
         "credit_score": 557, "risk_rank": 3, "policy_version": "tier-policy-x",
         "model_version": "m-test"},
        {"as_of": T, "uscc": V, "region_code": "110101", "tier": "B", "model_tier": "B",
         "tier_source": "model", "excluded": False, "probability": 0.1, "credit_score": 700,
         "risk_rank": 4, "policy_version": "tier-policy-x", "model_version": "m-test"},
    ])  # fmt: skip
    _put(spark, s, tables.RISK_SCORES, [
        {"as_of": T, "uscc": U, "region_code": "110101", "probability": 0.4321,
         "credit_score": 557, "model_version": "m-test", "reasons": [
             _reason("penalties_2y", "近2年行政处罚2次", 0.8, True),
             _reason("complaints_12m", "近12个月投诉举报3件", 0.4, True),
             _reason("age_years", "成立仅11.7年（新设企业）", 0.2, False),
         ]},
    ])  # fmt: skip
    return s


def test_explain_traces_each_reason_to_its_source_records(spark, lake):
    e = explain(spark, U, None, lake)
    assert e.as_of == T and e.tier == "D" and "模型排名第3位（共2家）" in e.basis
    assert e.region == "东城区（110101）" and "某某路1号" in e.address
    assert [r.feature for r in e.reasons] == ["penalties_2y", "complaints_12m"]  # not age
    pen = e.reasons[0].records
    assert [r.key for r in pen] == ["京东市监罚〔2026〕12号", "京东市监罚〔2025〕3号"]
    assert (pen[0].file, pen[0].row, pen[0].delivered) == ("penalty.csv", 41, RUN.isoformat())
    assert "12,000.00元" in pen[0].detail and "虚假宣传" in pen[0].detail
    assert len(e.reasons[1].records) == 3 and e.reasons[1].records[0].row == 102
    assert e.registry.file == "registry.csv" and e.registry.row == 7
    text = render_explanation(e)
    assert "penalty.csv 第41行 / row 41, 交付 / delivered 2026-10-28" in text
    assert "近2年行政处罚2次" in text and "成立仅" not in text
    assert "99号" not in text and "OTHER" not in text  # not known at T / another enterprise
    assert "未抽中 / not drawn" in text
    with pytest.raises(LookupError):
        explain(spark, "91110101MA0000009X", None, lake)
