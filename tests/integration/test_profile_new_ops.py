"""Profiling the new ops with the real ONNX Runtime: every op kind a MobileNetV3-, ConvNeXt-,
RegNet- and ShuffleNet-style model executes gets measured rows, and the predictor prices the
model from them."""

import sys
from dataclasses import replace

import pytest

pytest.importorskip("onnxruntime")

from edgeprune.cost.latency import LatencyPredictor  # noqa: E402
from edgeprune.cost.latency_table import ELEMENTWISE_OPS, validate_table_frame  # noqa: E402
from edgeprune.cost.ops import extract_ops  # noqa: E402
from edgeprune.devices.profile import DeviceProfile, Identity, Provenance, TableRef  # noqa: E402
from edgeprune.devices.sweep import (  # noqa: E402
    SWEEP_TIMING,
    SweepSettings,
    make_runner,
    plan_jobs,
    read_partial,
    run_sweep,
)


def _unit_nets():
    """The tiny nets of tests/unit/test_cost_new_ops.py (tests is no package)."""
    import importlib.util
    from pathlib import Path

    unit = Path(__file__).parents[1] / "unit"
    if str(unit) not in sys.path:  # its helpers (hand_profiles) import by plain name
        sys.path.insert(0, str(unit))
    path = unit / "test_cost_new_ops.py"
    spec = importlib.util.spec_from_file_location("_cost_new_ops_nets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_NETS = _unit_nets()
SIZE, GroupedNet, LNNet, SENet = _NETS.SIZE, _NETS.GroupedNet, _NETS.LNNet, _NETS.SENet


def _fewest(jobs):
    """The smallest and the largest channel count of every family (the fewest configs)."""
    fams = {}
    for j in jobs:
        fams.setdefault((j.op, j.kernel, j.stride, j.h, j.w, j.groups), []).append(j)
    out = []
    for members in fams.values():
        members.sort(key=lambda j: (j.c_a, j.c_b))
        out += [members[0]] if len(members) == 1 else [members[0], members[-1]]
    return out


@pytest.mark.parametrize("net", [SENet, LNNet, GroupedNet], ids=["se", "layernorm", "grouped"])
def test_sweep_measures_the_new_ops_and_the_predictor_prices_them(tmp_path, net):
    ops = extract_ops(net().eval(), SIZE)
    jobs = _fewest(plan_jobs(ops, alignment=1))
    timing = replace(SWEEP_TIMING, threads=1, min_time_s=0.02, min_runs=5, warmup=1)
    settings = SweepSettings(run=timing)
    partial = tmp_path / "t.csv"
    measured, _ = run_sweep(jobs, partial, make_runner(settings), settings, progress=False)
    assert measured == len(jobs)
    df = validate_table_frame(read_partial(partial))
    new = {o.op for o in ops if o.op in ELEMENTWISE_OPS}
    new |= {"conv"} if any(o.groups > 1 and o.op == "conv" for o in ops) else set()
    assert new and new <= set(df["op"])
    assert (df["latency_ms_median"] >= 0).all() and (df["n_runs"] >= 5).all()
    if net is GroupedNet:
        assert 4 in set(df[df["op"] == "conv"]["groups"])
    # the predictor prices the dense model from this table only
    df_full = df
    plan_all = plan_jobs(ops, alignment=1)
    missing = [j for j in plan_all if j not in jobs]
    if missing:  # complete the grid cheaply so interpolation has its corners
        run_sweep(missing, partial, make_runner(settings), settings, progress=False)
        df_full = read_partial(partial)
    df_full.to_csv(tmp_path / "table.csv", index=False)
    prof = DeviceProfile(
        name="here",
        identity=Identity(arch="x86_64", threads=1),
        channel_alignment=1,
        tables=(TableRef("table.csv", Provenance("measured", method="test")),),
        path=str(tmp_path / "here.yaml"),
    )
    pred = LatencyPredictor(ops, prof)
    assert pred.total_ms() > 0
