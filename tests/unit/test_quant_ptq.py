"""INT8 post-training quantization round trip on tiny conv models (real ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from edgeprune.errors import UserError  # noqa: E402
from edgeprune.export.onnx_export import export_onnx  # noqa: E402
from edgeprune.models import create_model  # noqa: E402
from edgeprune.quant.calibration import random_batches  # noqa: E402
from edgeprune.quant.ptq import count_qdq, is_int8, quantize_onnx  # noqa: E402

# the stated tolerance of the round trip on the check inputs (measured: agreement 1.0 and
# 0.98, relative L2 error 0.008 and 0.017 for vgg_tiny and mobilenetv2_tiny)
MIN_TOP1_AGREEMENT = 0.95
MAX_REL_L2 = 0.05


def _run(path, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def fp32_models(tmp_path_factory):
    out = {}
    d = tmp_path_factory.mktemp("q")
    torch.manual_seed(0)
    for name in ("vgg_tiny", "mobilenetv2_tiny"):
        path = d / f"{name}.onnx"
        export_onnx(create_model(name).eval(), (3, 32, 32), str(path))
        out[name] = path
    return out


@pytest.mark.parametrize("name", ["vgg_tiny", "mobilenetv2_tiny"])
def test_round_trip_is_qdq_runs_and_agrees(fp32_models, tmp_path, name):
    int8 = tmp_path / "model.onnx"
    quantize_onnx(fp32_models[name], int8, random_batches((3, 32, 32), 64, seed=1))
    counts = count_qdq(int8)
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > 0 and is_int8(int8)
    assert not is_int8(fp32_models[name])
    x = random_batches((3, 32, 32), 64, batch_size=64, seed=2)[0]
    a, b = _run(fp32_models[name], x), _run(int8, x)
    assert b.shape == a.shape and np.all(np.isfinite(b))
    assert (a.argmax(1) == b.argmax(1)).mean() >= MIN_TOP1_AGREEMENT
    rel = np.linalg.norm(a - b) / np.linalg.norm(a)
    assert 0 < rel <= MAX_REL_L2  # > 0: the int8 model is not the fp32 one renamed


def test_weights_are_int8_per_channel(fp32_models, tmp_path):
    import onnx
    from onnx import numpy_helper

    int8 = tmp_path / "model.onnx"
    quantize_onnx(fp32_models["vgg_tiny"], int8, random_batches((3, 32, 32), 16))
    g = onnx.load(str(int8)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    conv_w = {n.input[1] for n in g.node if n.op_type == "Conv"}
    dq = [n for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] in conv_w]
    assert dq, "conv weights are not dequantized from int8"
    for n in dq:
        assert inits[n.input[0]].dtype == np.int8
        assert inits[n.input[1]].ndim == 1 and inits[n.input[1]].size > 1  # per channel
    act = [n for n in g.node if n.op_type == "QuantizeLinear"]
    assert all(inits[n.input[2]].dtype == np.uint8 for n in act)  # uint8 activations


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_other_calibration_methods_run(fp32_models, tmp_path, method):
    int8 = tmp_path / "model.onnx"
    quantize_onnx(fp32_models["vgg_tiny"], int8, random_batches((3, 32, 32), 16), method=method)
    assert is_int8(int8)


def test_unknown_method_and_no_batches_are_user_errors(fp32_models, tmp_path):
    out = tmp_path / "model.onnx"
    with pytest.raises(UserError, match="unknown calibration method 'kl'"):
        quantize_onnx(fp32_models["vgg_tiny"], out, [], method="kl")
    with pytest.raises(UserError):
        quantize_onnx(fp32_models["vgg_tiny"], out, [])
    assert not out.exists()  # nothing half-written
    assert not list(tmp_path.iterdir())


def test_random_batches_shape():
    bs = random_batches((3, 8, 8), 70, batch_size=32)
    assert [b.shape[0] for b in bs] == [32, 32, 6] and bs[0].dtype == np.float32


# --- the int8 rule: edgeprune.quant.agreement.judge and the device agent's copy ----------


def _cases():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((64, 10))
    yield ref, ref + 0.01 * rng.standard_normal(ref.shape)  # close: ok
    yield ref, ref + 0.3 * rng.standard_normal(ref.shape)  # rel error ~0.3: fails
    flipped = ref.copy()
    flipped[:10] = -flipped[:10]  # 10 of 64 top-1 flipped
    yield ref, flipped
    yield ref, np.zeros_like(ref)
    yield ref, ref[:32]  # shape mismatch
    bad = ref.copy()
    bad[0, 0] = np.nan
    yield ref, bad
    yield np.zeros((4, 10)), np.zeros((4, 10))
    for _ in range(20):
        r = rng.standard_normal((32, 10))
        yield r, r + rng.uniform(0, 0.4) * rng.standard_normal(r.shape)


def test_judge_and_the_agents_copy_agree():
    from edgeprune.deploy_agent.edgeprune_agent import int8_agreement

    from edgeprune.quant.agreement import MAX_REL_L2, MIN_TOP1_AGREEMENT, judge

    verdicts = []
    for ref, out in _cases():
        a = judge(ref, out)
        agree, rel, ok = int8_agreement(ref, out, MIN_TOP1_AGREEMENT, MAX_REL_L2)
        assert (a.top1_agreement, a.ok) == (agree, ok)
        assert a.rel_l2 == pytest.approx(rel) or a.rel_l2 == rel == float("inf")
        verdicts.append(ok)
    assert verdicts[:6] == [True, False, False, False, False, False]
    assert any(verdicts[7:]) and not all(verdicts[7:])  # the random cases fall both ways


def test_judge_numbers():
    from edgeprune.quant.agreement import judge

    ref = np.eye(10)[:, :10] * 5
    out = ref.copy()
    out[0] = np.roll(out[0], 1)  # one of 10 disagrees
    a = judge(ref, out, min_top1_agreement=0.9, max_rel_l2=1.0)
    assert a.top1_agreement == 0.9 and a.ok and a.n == 10
    assert a.rel_l2 == pytest.approx(np.sqrt(50) / np.sqrt(250))
    assert not judge(ref, out, min_top1_agreement=0.95).ok
    assert "agreement 0.900" in a.sentence()


def test_agent_output_check_applies_the_int8_rule(fp32_models, tmp_path):
    """The agent's output check on a real int8 model with the check file the host writes."""
    import onnxruntime as ort
    from edgeprune.deploy_agent.edgeprune_agent import output_check

    from edgeprune.quant.agreement import write_check_file

    int8 = tmp_path / "model.onnx"
    quantize_onnx(fp32_models["vgg_tiny"], int8, random_batches((3, 32, 32), 64, seed=1))
    x = random_batches((3, 32, 32), 32, batch_size=32, seed=3)[0]
    ref = _run(fp32_models["vgg_tiny"], x)
    write_check_file(str(int8), x, ref)
    row = output_check(ort.InferenceSession(str(int8)), str(int8))
    assert row["check_rule"] == "int8" and row["check_ok"] is True
    assert row["check_top1_agreement"] >= 0.9 and 0 < row["check_rel_l2"] <= 0.15
    write_check_file(str(int8), x, -ref)  # outputs that cannot be right
    row = output_check(ort.InferenceSession(str(int8)), str(int8))
    assert row["check_ok"] is False


# --- TensorRT: int8 from the QDQ model (explicit quantization); no TensorRT here --------


def test_trtexec_builds_int8_from_qdq_and_never_best():
    from edgeprune.runtimes.trtexec import trtexec_argv

    argv = trtexec_argv(
        "trtexec", onnx="/w/model.onnx", engine="/w/m.engine", shapes="input:1x3x32x32", int8=True
    )
    assert "--int8" in argv and "--best" not in argv and "--fp16" not in argv
    assert not any(a.startswith("--calib") for a in argv)  # the scales come from Q/DQ nodes
    load = trtexec_argv("trtexec", engine="/w/m.engine", shapes="input:1x3x32x32", int8=True,
                        build=False)  # fmt: skip
    assert "--int8" not in load and "--loadEngine=/w/m.engine" in load


def test_trt_build_script_takes_int8():
    from edgeprune.deploy_agent.trt_build import get_args_parser

    args = get_args_parser().parse_args(
        ["--onnx", "m.onnx", "--engine", "m.engine", "--shape", "input:1x3x32x32", "--int8"]
    )
    assert args.int8 and not args.fp16


def test_agent_settings_accept_int8():
    from edgeprune.runtimes.settings import AgentSettings

    assert AgentSettings(precision="int8").precision == "int8"
    with pytest.raises(UserError):
        AgentSettings(precision="int4")


# --- QAT: fake quantization on and off ---------------------------------------------------


def test_fake_quant_trains_and_comes_off_cleanly():
    from edgeprune.quant.qat import add_fake_quant_, remove_fake_quant_

    torch.manual_seed(0)
    model = create_model("vgg_tiny")
    keys = set(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 3, 32, 32)
    undo = add_fake_quant_(model)
    model.train()
    out = model(x)
    w = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)).weight
    assert len(torch.unique(w[0])) <= 255  # the weight the forward sees is int8-valued
    out.square().mean().backward()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    opt.step()
    remove_fake_quant_(undo)
    assert set(model.state_dict()) == keys  # plain modules again: exports as before
    conv = next(k for k in keys if k.endswith("weight") and before[k].ndim == 4)
    assert not torch.equal(model.state_dict()[conv], before[conv])  # gradients reached it
    assert not any(hasattr(m, "input_fake_quant") for m in model.modules())
