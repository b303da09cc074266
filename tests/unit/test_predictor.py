"""Predictor: sums of a hand-made table over a traced model, width overrides, calibration."""

import copy
import random
import time

import pytest
from hand_profiles import bilinear_cost as cost
from hand_profiles import hand_profile, hand_table

from edgeprune.cost.latency import LatencyPredictor, predict_latency, predict_ops
from edgeprune.cost.ops import extract_ops
from edgeprune.devices.estimate import estimate_rows  # noqa: F401  (import check)
from edgeprune.devices.profile import Calibration, DeviceProfile, Identity
from edgeprune.errors import UserError
from edgeprune.models import create_model


def make_profile(tmp_path, model, size=(3, 32, 32), calibration=None):
    ops = extract_ops(model, size)
    table = hand_table(ops, lambda key, _: cost(*key[:7]))
    return hand_profile(tmp_path, table, calibration=calibration), ops


def expected(ops, widths=None):
    total = 0.0
    for o in ops:
        ci = (widths or {}).get(o.c_in_from, o.c_in) if o.c_in_from else o.c_in
        co = (widths or {}).get(o.c_out_from, o.c_out) if o.c_out_from else o.c_out
        if ci == 0 or co == 0:
            continue
        total += cost(o.op, ci, co, o.kernel, o.stride, o.h_in, o.w_in)
    return total


def test_ops_of_cifar_resnet():
    ops = extract_ops(create_model("resnet8"), (3, 32, 32))
    kinds = [o.op for o in ops]
    assert kinds.count("conv") == 7 and kinds.count("add") == 3
    assert kinds.count("pad_shortcut") == 2 and kinds[-2:] == ["pool", "linear"]
    pad = next(o for o in ops if o.op == "pad_shortcut")
    assert pad.stride == 2 and pad.c_out_from == "layer2.0.conv2"


def test_sum_of_table_entries(tmp_path):
    model = create_model("resnet8")
    prof, ops = make_profile(tmp_path, model)
    pred = predict_latency(model, prof)
    assert pred.table_ms == pytest.approx(expected(ops))
    assert pred.total_ms == pytest.approx(pred.table_ms) and pred.remainder_ms == 0
    assert len(pred.per_layer) == len(ops) and pred.estimated


def test_width_override_and_dropped_block(tmp_path):
    model = create_model("resnet8")
    prof, ops = make_profile(tmp_path, model)
    widths = {"layer1.0.conv1": 5, "layer3.0.conv1": 20}
    assert predict_ops(ops, prof, widths).table_ms == pytest.approx(expected(ops, widths))
    dropped = predict_ops(ops, prof, {"layer1.0.conv1": 0})
    names = {c.name for c in dropped.per_layer if c.latency_ms == 0}
    assert {"layer1.0.conv1", "layer1.0.conv2"} <= names and "add" not in names
    assert dropped.table_ms == pytest.approx(expected(ops, {"layer1.0.conv1": 0}))


def test_calibration_applies(tmp_path):
    model = create_model("resnet8")
    cal = {"default": Calibration(scale=2.0, offset_ms=0.5)}
    prof, ops = make_profile(tmp_path, model, calibration=cal)
    pred = predict_ops(ops, prof)
    assert pred.total_ms == pytest.approx(2 * expected(ops) + 0.5)
    assert pred.remainder_ms == pytest.approx(pred.total_ms - pred.table_ms)
    assert pred.calibration == "default"


def test_calibrated_shares_sum_to_total(tmp_path):
    model = create_model("resnet8")
    cal = {"default": Calibration(scale=0.5, offset_ms=0.2, scale_unaligned=0.8)}
    prof, ops = make_profile(tmp_path, model, calibration=cal)
    pred = LatencyPredictor(ops, prof)
    widths = {"layer1.0.conv1": 5}
    shares = sum(pred.calibrated_op_ms(o, widths) for o in ops)
    assert shares + 0.2 == pytest.approx(pred.total_ms(widths))
    a, u = pred.split_ms(widths)
    assert pred.total_ms(widths) == pytest.approx(0.5 * a + 0.8 * u + 0.2)


def test_plan_matches_pruned_model(tmp_path):
    from edgeprune.surgery import apply_plan_, random_plan

    model = create_model("resnet8").eval()
    prof, _ = make_profile(tmp_path, model)
    plan = random_plan(model, seed=3, min_keep_frac=0.3)
    via_plan = predict_latency(plan, prof, model=model)
    pruned = apply_plan_(copy.deepcopy(model), plan)
    assert via_plan.table_ms == pytest.approx(predict_latency(pruned, prof).table_ms, rel=1e-6)


def test_out_of_table_width_is_extrapolated(tmp_path):
    # a width beyond the measured range is priced by linear extrapolation (the table's rule)
    model = create_model("resnet8")
    prof, ops = make_profile(tmp_path, model)
    wide = predict_ops(ops, prof, {"layer1.0.conv1": 99}).table_ms
    assert wide > predict_ops(ops, prof, {"layer1.0.conv1": 16}).table_ms


def test_no_table_is_clear_error():
    prof = DeviceProfile(name="empty", identity=Identity(arch="x86_64"))
    with pytest.raises(UserError, match="no latency table"):
        predict_ops([], prof)


def test_fast_path_speed(tmp_path):
    model = create_model("resnet56")
    prof, ops = make_profile(tmp_path, model)
    pred = LatencyPredictor(ops, prof)
    convs = [o for o in ops if o.op == "conv"]
    rng = random.Random(0)
    t0 = time.perf_counter()
    for _ in range(300):
        pred.total_ms({o.name: rng.randint(1, o.c_out) for o in convs})
    per_call = (time.perf_counter() - t0) / 300
    assert per_call < 0.01  # ~1 ms typical; the controller evaluates thousands


def test_a_pruned_variant_with_dropped_blocks_keeps_its_dense_calibration(tmp_path):
    """A dropped block leaves an add without a branch (its constant output plus the
    shortcut); it must not change the op families, or the pruned model is priced with the
    generic ``default`` calibration (ResNet-56 on xeon: offset 1.15 ms instead of 0.71)."""
    from edgeprune.cost.latency import ops_signature
    from edgeprune.surgery import Plan, apply_plan_

    dense = create_model("resnet20").eval()
    pruned = apply_plan_(copy.deepcopy(dense), Plan({"layer1.1.conv1": [], "layer2.2.conv1": []}))
    assert type(pruned.layer1[1]).__name__ == "BlockBypass"
    pruned_ops = extract_ops(pruned, (3, 32, 32))
    assert any(o.op == "add" and o.branch is None for o in pruned_ops)
    dense_sig = ops_signature(extract_ops(dense, (3, 32, 32)))
    assert ops_signature(pruned_ops).split(":")[1] == dense_sig.split(":")[1]
    cal = {
        "resnet20": Calibration(scale=1.0, offset_ms=0.1, signature=dense_sig),
        "default": Calibration(scale=1.0, offset_ms=5.0),
    }
    prof, _ = make_profile(tmp_path, dense, calibration=cal)
    pred = LatencyPredictor(pruned_ops, prof)
    assert pred.calibration_name == "resnet20"
    assert pred.total_ms() == pytest.approx(pred.table_ms() + 0.1)


def test_a_variant_that_empties_a_whole_stage_keeps_the_dense_calibration(tmp_path):
    """With every block of a stage dropped, the variant's op families differ from the dense
    model's (no 3x3 conv at 16x16 left): traced on its own it falls back to ``default``;
    priced as a variant of the dense predictor (as the budget oracle prices every model a
    method proposes) it keeps the dense calibration."""
    from edgeprune.cost.latency import ops_signature
    from edgeprune.methods.context import _metrics_fn
    from edgeprune.surgery import Plan, apply_plan_

    dense = create_model("resnet20").eval()
    stage = {f"layer2.{i}.conv1": [] for i in range(3)}
    pruned = apply_plan_(copy.deepcopy(dense), Plan(stage))
    dense_sig = ops_signature(extract_ops(dense, (3, 32, 32)))
    cal = {
        "resnet20": Calibration(scale=1.0, offset_ms=0.1, signature=dense_sig),
        "default": Calibration(scale=1.0, offset_ms=5.0),
    }
    prof, _ = make_profile(tmp_path, dense, calibration=cal)
    alone = LatencyPredictor.from_model(pruned, (3, 32, 32), prof)
    assert alone.calibration_name == "default"
    dense_pred = LatencyPredictor.from_model(dense, (3, 32, 32), prof)
    variant = dense_pred.for_variant(pruned, (3, 32, 32))
    assert variant.calibration_name == "resnet20"
    assert variant.total_ms() == pytest.approx(alone.table_ms() + 0.1)
    assert variant.total_ms() < dense_pred.total_ms()
    oracle_ms = _metrics_fn((3, 32, 32), dense_pred)(pruned)["latency_ms"]
    assert oracle_ms == pytest.approx(variant.total_ms())


def test_widths_price_a_dropped_block_as_its_pruned_model_runs(tmp_path):
    """Surgery leaves a dropped block's add (``shortcut + bias``): pricing the dense trace
    under widths (the controller) and tracing the pruned model (a variant) must agree."""
    from edgeprune.surgery import Plan, apply_plan_

    dense = create_model("resnet20").eval()
    prof, ops = make_profile(tmp_path, dense)
    plan = Plan({"layer1.1.conv1": [], "layer2.0.conv1": [], "layer3.2.conv1": [0, 1, 2]})
    pruned = apply_plan_(copy.deepcopy(dense), plan)
    widths = {"layer1.1.conv1": 0, "layer2.0.conv1": 0, "layer3.2.conv1": 3}
    by_widths = predict_ops(ops, prof, widths).table_ms
    dense_pred = LatencyPredictor(ops, prof)
    assert dense_pred.for_variant(pruned, (3, 32, 32)).table_ms() == pytest.approx(by_widths)
