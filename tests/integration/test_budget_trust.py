"""The measured-verification loop end to end on this host (real ONNX Runtime, a tiny model):
every check carries a 95% interval, the final verification is a separate run (pruned first),
and ``budget_met`` follows the final interval's rule. Structure only, no speed numbers."""

from __future__ import annotations

import json
import statistics

from edgeprune.budget import Budget
from edgeprune.budget.controller import ControllerConfig
from edgeprune.cli.main import main
from edgeprune.runtimes.interval import DEFAULT_SESSIONS, RatioInterval, combine_sessions
from edgeprune.workflows.prune import PruneConfig, run_prune, summary


def test_prune_local_verifies_with_intervals_and_judges_the_final_run(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))  # profiles this host for resnet8
    budget = Budget(latency_ratio=0.6, device="local")
    cfg = PruneConfig(
        model="resnet8",
        out=str(tmp_path / "run"),
        budget=budget,
        device="local",
        verify_min_time_s=0.3,
        verify_max_time_s=1.0,
        controller=ControllerConfig(max_retries=1),
    )
    run_prune(cfg)
    doc = json.loads((tmp_path / "run" / "report.json").read_text())
    search, final = doc["measurements"]["search"], doc["measurements"]["final"]
    assert final["order"] == "alternating, pruned_first"
    # the controller's accepted measurement is its confirmation in separate sessions; a plan
    # the quick (one-session) check never met keeps that quick measurement
    attempts = doc["verification"]
    confirmed = [a for a in attempts if "confirm" in a]
    for a in confirmed:  # confirmed only after the quick check met; its verdict is the one
        assert a["interval"]["hi"] <= 0.6 * 1.03 and a["confirm"]["met"] == a["met"]
        assert a["confirm"]["interval"]["n_rounds"] >= 6
    # the search keeps the met plan's confirmation or, none met, the last attempt's last timing
    confirmed_last = any(a["met"] for a in attempts) or "confirm" in attempts[-1]
    want = "alternating, pruned_first" if confirmed_last else "dense_first"
    assert search["order"] == want
    orders = [s["order"] for s in final["sessions"]]
    assert orders == ["pruned_first", "dense_first"] * (DEFAULT_SESSIONS // 2)  # swapped
    for m in (search, final, *final["sessions"], *search["sessions"]):
        iv = m["interval"]
        assert iv["lo"] <= iv["median"] <= iv["hi"] and iv["n_rounds"] >= 6
        assert iv["stop"] in ("narrow", "time_cap", "sessions_disagree")
        assert iv["target_halfwidth"] == 0.015
        assert m["ratio"] == iv["median"] and m["pruned_latency_ms"] > 0
    # the final interval combines its sessions' (a t-interval over their medians)
    each = [RatioInterval.from_dict(s["interval"]) for s in final["sessions"]]
    want = combine_sessions(each)
    assert (final["interval"]["lo"], final["interval"]["hi"]) == (want.lo, want.hi)
    assert doc["latency_ratio"] == final["ratio"]
    assert doc["latency_ratio_ci95"] == [final["interval"]["lo"], final["interval"]["hi"]]
    assert doc["budget_met"] is (final["interval"]["hi"] <= 0.6 * 1.03)
    assert all("interval" in a and "met" in a for a in doc["verification"])
    assert "host_note" not in doc  # measured on the host the table was profiled on
    assert "95%, final run" in summary(doc)

    # the independent check a user runs next reports the same kind of interval
    dep = tmp_path / "deploy"
    args = ["deploy", str(tmp_path / "run"), "--device", "local", "--compare-dense"]
    assert main([*args, "--min-time", "0.3", "--out", str(dep)]) == 0
    rep = json.loads((dep / "report.json").read_text())
    lo, hi = rep["ratio_ci95"]
    assert lo <= rep["ratio"] <= hi and rep["ratio_rounds"] >= 6
    assert rep["ratio_stop"] in ("narrow", "time_cap", "sessions_disagree")
    assert not rep.get("host_note")
    sessions = rep["results"][0]["ratio_sessions"]  # as many sessions as the final verification
    assert len(sessions) == len(final["sessions"]) == DEFAULT_SESSIONS
    assert lo <= statistics.median(sessions) <= hi
    assert "95% interval" in (dep / "report.md").read_text()
