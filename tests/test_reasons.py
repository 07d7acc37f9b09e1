"""Reasons an inspector can use (no Spark): names instead of codes, only risk-raising
attributes flagged as reasons, no odd phrases, five kept largest first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.score import reasons_for
from warehouse.contracts.features import BY_NAME, FEATURES, render

NAMES = {
    "region_code": {"110101": ("东城区", "东城区 (110101)")},
    "industry": {"F": ("批发和零售业", "Wholesale and retail trade")},
}


def test_codes_read_as_names():
    zh, en = render(BY_NAME["region_code"], "110101", NAMES["region_code"])
    assert zh.startswith("所在区县：东城区") and "110101" not in zh and "东城区 (110101)" in en
    zh, en = render(BY_NAME["industry"], "F", NAMES["industry"])
    assert "批发和零售业" in zh and "行业门类F" not in zh and "Wholesale" in en
    # an unknown code still reads, with the code itself
    assert "999999" in render(BY_NAME["region_code"], "999999", NAMES["region_code"])[0]


def test_no_odd_phrases():
    assert render(BY_NAME["months_since_finding"], 0.0) == (
        "本月检查发现问题",
        "an inspection found a problem within the last month",
    )
    assert render(BY_NAME["months_since_finding"], 7.0)[0] == "7个月前检查发现问题"
    assert render(BY_NAME["months_since_penalty"], 0.0)[0] == "本月受到行政处罚"
    for f in FEATURES:  # no template renders "…0个月" or "距上次…"
        for v in (0.0, 1.0, 12.0):
            if f.categorical:
                continue
            zh, _ = render(f, v)
            assert "距上次" not in zh and not zh.endswith("0个月"), (f.name, zh)


def test_only_risk_raising_values_are_reasons():
    can = {f: BY_NAME[f].can_raise for f in BY_NAME}
    assert not can["age_years"](12.0) and can["age_years"](1.5)  # "成立12年" is a neutral fact
    assert not can["inspections_3y"](4.0)  # being inspected is not a risk
    assert not can["penalties_2y"](0.0) and can["penalties_2y"](2.0)
    assert can["employees"](None) and can["employees"](0.0) and not can["employees"](30.0)
    assert not can["months_since_penalty"](None) and can["months_since_penalty"](3.0)
    assert not can["months_since_penalty"](60.0)
    assert can["region_code"]("110101")  # a category: its positive contribution decides
    assert not can["rep_associates"](1.0) and can["rep_associates"](4.0)


def test_the_five_kept_are_the_largest_risk_raising_contributions():
    feats = ["age_years", "penalties_2y", "region_code", "inspections_3y", "complaints_12m",
             "industry", "on_abnormal_list", "reports_late_3y"]  # fmt: skip
    raw = pd.DataFrame(
        {"age_years": [12.0, 1.0], "penalties_2y": [2.0, 0.0], "region_code": ["110101"] * 2,
         "inspections_3y": [3.0, 3.0], "complaints_12m": [4.0, 0.0], "industry": ["F", "F"],
         "on_abnormal_list": [1.0, 0.0], "reports_late_3y": [0.0, 0.0]}
    )  # fmt: skip
    # row 0: the largest contributions are a neutral age and an inspection count
    contrib = np.array(
        [
            [0.9, 0.3, 0.2, 0.8, 0.25, 0.1, 0.15, -0.2, -1.0],
            [0.5, -0.1, 0.05, 0.4, -0.2, -0.3, -0.1, -0.1, -1.0],
        ]
    )
    out = reasons_for(raw, raw, contrib, feats, 5, NAMES)
    assert [len(r) for r in out] == [5, 5]
    first = out[0]
    flagged = [r["feature"] for r in first if r["raises_risk"]]
    assert flagged == ["penalties_2y", "complaints_12m", "region_code", "on_abnormal_list",
                       "industry"]  # fmt: skip
    assert "age_years" not in flagged and "inspections_3y" not in flagged
    assert [r["contribution"] for r in first] == sorted(
        (r["contribution"] for r in first), reverse=True
    )
    texts = [r["text_zh"] for r in first]
    assert any("东城区" in t for t in texts) and any("批发和零售业" in t for t in texts)
    # row 1: a young enterprise (a reason) and the region; the rest fill up, not flagged
    second = {r["feature"]: r["raises_risk"] for r in out[1]}
    assert second["age_years"] and second["region_code"]
    assert sum(second.values()) == 2


def test_vectorised_choice_equals_the_row_by_row_rule_on_random_rows():
    from models.score import pick_reasons

    rng = np.random.default_rng(7)
    contrib = np.round(rng.normal(0, 1, (500, 9)), 2)  # rounding makes ties
    raises = (rng.random((500, 9)) < 0.4) & (contrib > 0)
    for n in (1, 5, 9, 12):
        got = pick_reasons(contrib, raises, n)
        for i in range(len(contrib)):
            order = sorted(range(9), key=lambda j: -contrib[i, j])
            picked = [j for j in order if raises[i, j]][:n]
            rest = [j for j in order if not raises[i, j]][: min(n, 9) - len(picked)]
            want = sorted(picked + rest, key=lambda j: (-contrib[i, j], j not in picked))
            assert sorted(got[i].tolist()) == sorted(want), (n, i)
            assert list(contrib[i, got[i]]) == sorted(contrib[i, got[i]], reverse=True)
