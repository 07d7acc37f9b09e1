"""The run graph and its runner (pipelines/steps.py, risk_insight/graph.py): steps declared
once, run in order, a failure stopping what follows except the ``always`` steps."""

from __future__ import annotations

import json
from datetime import date

import pytest

from pipelines.steps import DELIVERY, Run, Step, check_graph, run_steps, select
from risk_insight import graph
from warehouse.settings import Settings


def _run() -> Run:
    return Run(Settings(lake_root="/nonexistent"), date(2026, 10, 28))


def _step(name: str, log: list[str], fail: bool = False, **kw) -> Step:
    def work(run: Run) -> str:
        log.append(name)
        if fail:
            raise RuntimeError(f"{name} broke")
        return f"{name} done"

    return Step(name, work, f"doing {name}", **kw)


def test_steps_run_in_declared_order_and_their_results_are_kept() -> None:
    log: list[str] = []
    said: list[str] = []
    run = _run()
    run.say = said.append
    steps = (_step("a", log), _step("b", log, after=("a",)), _step("c", log, after=("b",)))
    done = run_steps(steps, run)
    assert log == ["a", "b", "c"]
    assert done == {"a": "a done", "b": "b done", "c": "c done"} == run.results
    assert said == ["2026-10-28: doing a", "2026-10-28: doing b", "2026-10-28: doing c"]
    assert run.as_of == date(2026, 10, 29)  # features at T use records known before T


def test_a_failing_step_stops_the_rest_but_always_steps_run_and_the_error_is_raised() -> None:
    log: list[str] = []
    steps = (
        _step("gate", log, fail=True),
        _step("after_gate", log, after=("gate",)),
        _step("docs", log, always=True),
    )
    with pytest.raises(RuntimeError, match="gate broke"):
        run_steps(steps, _run())
    assert log == ["gate", "docs"]

    log.clear()  # an always step that fails after an earlier failure does not hide it
    steps = (_step("gate", log, fail=True), _step("docs", log, fail=True, always=True))
    with pytest.raises(RuntimeError, match="gate broke"):
        run_steps(steps, _run())
    assert log == ["gate", "docs"]


def test_the_graph_is_checked_and_selected_by_name() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="declared after it"):
        check_graph((_step("b", log, after=("a",)), _step("a", log)))
    with pytest.raises(ValueError, match="declared twice"):
        check_graph((_step("a", log), _step("a", log)))
    with pytest.raises(KeyError, match="nope"):
        select(graph.DAILY, ["score", "nope"])
    assert [s.name for s in select(graph.DAILY, ["gold_gate", "features"])] == [
        "features",
        "gold_gate",
    ]


def test_the_daily_graph_extends_the_delivery_and_ends_with_the_data_docs() -> None:
    names = [s.name for s in graph.DAILY]
    delivery = [s.name for s in DELIVERY if not s.always]
    assert names[: len(delivery)] == delivery
    assert names[-1] == "data_docs" and graph.step("data_docs").always
    assert names.index("gold_gate") < names.index("tiers_plans_lists_warnings")
    assert names.index("insight_gate") < names.index("serving_marts")
    gates = {s.name for s in graph.DAILY if s.gate}
    assert gates == {"bronze_gate", "silver_gate", "gold_gate", "insight_gate"}
    for s in graph.DAILY:
        assert s.key in ("run_date", "as_of", ""), s.name
        assert s.doc and s.title, s.name
        assert all(a in names[: names.index(s.name)] for a in s.after), s.name
    # run_day's progress lines, which the kill tests wait for (tests/test_reliability.py)
    assert [s.title.split(" (")[0] for s in DELIVERY] == [
        "landing files",
        "bronze quality gate",
        "conforming to silver",
        "rectification reports",
        "silver quality gate",
        "rebuilding data docs",
    ]


def test_a_step_uses_only_results_of_steps_it_follows() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="does not follow"):
        check_graph((_step("a", log), _step("b", log, uses=("a",))))
    check_graph((_step("a", log), _step("b", log, after=("a",), uses=("a",))))


def test_the_retrain_graph_hands_the_schedule_and_decision_on_and_skips_an_unpromoted_rescore() -> (
    None
):
    from models.train import Schedule, make_schedule

    names = [s.name for s in graph.RETRAIN]
    assert names == ["training_schedule", "training_features", "backtest_train_and_gate",
                     "record_decision", "rescore_with_champion"]  # fmt: skip
    assert graph.step("record_decision", "model_retrain").uses == ("backtest_train_and_gate",)
    with pytest.raises(KeyError):
        graph.step("record_decision")  # not a step of the daily graph
    # the schedule travels between tasks as JSON (an XCom) and comes back the same
    sched = make_schedule(date(2020, 1, 5), date(2025, 11, 20))
    assert Schedule.from_json(json.loads(json.dumps(sched.to_json()))) == sched
    # a challenger the gate did not promote leaves the champion's scores alone (no Spark here:
    # the lake root does not exist)
    run = _run()
    run.results["record_decision"] = {"promoted": False, "challenger": "m1", "champion": None}
    done = graph.step("rescore_with_champion", "model_retrain").run(run)
    assert set(done) == {"skipped"}
    with pytest.raises(ValueError, match="set all of"):
        run.options = {"n_folds": 2}
        graph.training_schedule(run)
