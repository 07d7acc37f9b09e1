"""Reasons an inspector can use (no Spark): names instead of codes, only risk-raising
attributes flagged as reasons, no odd phrases, five kept largest first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

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


def _booster_and_rows(rows: int = 3000):
    """A small LightGBM model on five catalogue features (two categorical) and raw rows."""
    import lightgbm as lgb

    from models.dataset import encode

    rng = np.random.default_rng(3)
    raw = pd.DataFrame({
        "age_years": np.round(rng.gamma(2.0, 3.0, rows), 2),
        "penalties_2y": rng.poisson(0.3, rows).astype(float),
        "complaints_12m": np.where(rng.random(rows) < 0.1, np.nan, rng.poisson(1.0, rows)),
        "region_code": rng.choice(["110101", "110102", "110105"], rows),
        "industry": rng.choice(["F", "C", "I"], rows),
    })  # fmt: skip
    feats = list(raw.columns)
    vocab = {c: sorted(raw[c].unique()) for c in ("region_code", "industry")}
    x = encode(raw, vocab, feats)
    logit = -2 + 0.8 * raw["penalties_2y"] - 0.1 * raw["age_years"] + (raw["industry"] == "F")
    y = rng.random(rows) < 1 / (1 + np.exp(-logit))
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1}
    ds = lgb.Dataset(x, y, categorical_feature=["region_code", "industry"])
    return lgb.train(params, ds, 30), raw, x, feats, vocab


def _batch(raw: pd.DataFrame, previous: pa.ListArray | None = None, key=None) -> pa.RecordBatch:
    cols = {c: pa.array(raw[c].tolist()) for c in raw.columns}
    if previous is not None:
        cols["_prev_key"] = pa.array(key, pa.int64())
        cols["_prev_reasons"] = previous
    return pa.RecordBatch.from_pydict(cols)


def test_a_rows_key_changes_only_when_it_crosses_a_split() -> None:
    from models.score import raising_flags, reasons_key, split_points

    booster, raw, x, feats, vocab = _booster_and_rows()
    points = split_points(booster, feats, set(vocab))
    assert points[3] is None and points[4] is None  # categories: their code decides
    age = points[0]
    # two ages between the same thresholds (on one side of 3 years: "new" raises the risk),
    # and one past the next threshold
    triples = zip(age, age[1:], [*age[2:], age[-1] + 2], strict=False)
    lo, hi, beyond = next((a, b, c) for a, b, c in triples if not a < 3 < b)
    ages = [lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3, (hi + beyond) / 2]
    rows = pd.concat([raw.iloc[[0]]] * 3, ignore_index=True)
    rows["age_years"] = ages
    enc = pd.concat([x.iloc[[0]]] * 3, ignore_index=True)
    enc["age_years"] = ages
    key = reasons_key(enc, raising_flags(rows, feats, BY_NAME), points)
    assert key[0] == key[1] != key[2]


def test_reasons_taken_from_the_previous_score_equal_treeshap_computed_again() -> None:
    """Yesterday's scores feed today's: the rows whose key is unchanged take yesterday's
    contributions, the others are computed; all equal a full recomputation, texts from
    today's values."""
    from models.score import reasons_array, reasons_for_batch, split_points

    booster, raw, x, feats, vocab = _booster_and_rows()
    points = split_points(booster, feats, set(vocab))
    first, key, computed = reasons_for_batch(booster, points, _batch(raw), raw, x, feats, NAMES,
                                             BY_NAME)  # fmt: skip
    assert computed == len(raw)
    today = raw.copy()
    today["age_years"] += 1 / 365  # a day older: most stay between the same thresholds
    today.loc[:99, "penalties_2y"] += 2  # and a hundred enterprises were penalised
    xt = x.copy()
    xt["age_years"] = today["age_years"].to_numpy()
    xt["penalties_2y"] = today["penalties_2y"].to_numpy()
    batch = _batch(today, first, key)
    again, key2, computed2 = reasons_for_batch(booster, points, batch, today, xt, feats, NAMES,
                                               BY_NAME)  # fmt: skip
    assert 50 <= computed2 < len(raw) // 2, computed2
    assert computed2 == int((key2 != key).sum())
    full = reasons_array(today, booster.predict(xt, pred_contrib=True), feats, 5, NAMES, BY_NAME)
    assert again.to_pylist() == full.to_pylist()
    # a row with no previous score, or a previous list of another length, is computed
    prev = first.to_pylist()
    prev[0] = None
    prev[1] = prev[1][:2]
    third = reasons_for_batch(booster, points, _batch(raw, pa.array(prev, first.type), key),
                              raw, x, feats, NAMES, BY_NAME)  # fmt: skip
    assert third[2] == 2 and third[0].to_pylist() == first.to_pylist()
