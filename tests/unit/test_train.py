"""Unit tests of edgeprune.train on a tiny CNN and tiny synthetic data."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.errors import UserError
from edgeprune.train import (
    TrainConfig,
    TrainHooks,
    evaluate,
    load_checkpoint,
    lr_factor_fn,
    resolve_device,
    save_atomic,
    topk_correct,
    train,
)
from edgeprune.train import checkpoint as ckpt_mod


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def tiny_loader(n: int = 64, batch: int = 16, shuffle: bool = True) -> DataLoader:
    """Learnable data: 4 classes, each a distinct mean colour under noise."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 4
    colours = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, -1.0, -1.0]])
    x = torch.randn(n, 3, 8, 8, generator=g) * 0.5 + colours[y].view(-1, 3, 1, 1)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=shuffle, generator=g)


CFG = TrainConfig(epochs=2, lr=0.05, weight_decay=0.0, progress=False)


def test_training_lowers_the_loss():
    model, loader = tiny_model(), tiny_loader()
    before = evaluate(model, loader, progress=False)
    res = train(model, loader, TrainConfig(epochs=8, lr=0.05, progress=False), val_loader=loader)
    after = evaluate(model, loader, progress=False)
    assert after.loss < 0.5 * before.loss and after.top1 > 0.9
    assert len(res.history) == 8 and res.final.top1 == after.top1
    assert res.final.loss == pytest.approx(after.loss, rel=1e-6)  # float sums vary by threads
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert after.n == 64 and 0 <= after.top1 <= after.top5 <= 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle"])
def test_every_optimizer_and_schedule_runs(optimizer, schedule):
    cfg = TrainConfig(epochs=1, optimizer=optimizer, schedule=schedule, lr=0.01, progress=False)
    res = train(tiny_model(), tiny_loader(), cfg)
    assert math.isfinite(res.history[0]["train_loss"])


def test_lr_schedules():
    cos = lr_factor_fn(TrainConfig(epochs=10, schedule="cosine", warmup_epochs=1), 10)
    assert cos(0) == pytest.approx(0.1) and cos(5) == pytest.approx(0.55)
    assert cos(10) == pytest.approx(1.0) and cos(100) == pytest.approx(0.0, abs=1e-9)
    step = lr_factor_fn(TrainConfig(epochs=4, schedule="step", milestones=(0.5, 0.75)), 1)
    assert [step(i) for i in range(4)] == pytest.approx([1, 1, 0.1, 0.01])
    one = lr_factor_fn(TrainConfig(epochs=10, schedule="onecycle"), 10)
    assert one(0) == pytest.approx(0.04) and one(30) == pytest.approx(1.0)
    assert one(99) < 0.01
    const = lr_factor_fn(TrainConfig(epochs=2, schedule="constant", warmup_epochs=0.5), 4)
    assert [const(i) for i in range(4)] == pytest.approx([0.1, 0.55, 1, 1])


def test_config_round_trip_and_validation():
    cfg = TrainConfig(epochs=3, optimizer="adam", milestones=[0.3], label_smoothing=0.1)
    assert cfg.milestones == (0.3,)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UserError, match="unknown optimizer"):
        TrainConfig(optimizer="lion")
    with pytest.raises(UserError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(UserError, match="limit_batches"):
        TrainConfig(limit_batches=0)


def test_topk_correct():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05], [0.2, 0.3, 0.5]])
    targets = torch.tensor([1, 1, 2])
    assert topk_correct(logits, targets, ks=(1, 2)) == [2, 3]
    assert topk_correct(logits, targets, ks=(1, 5)) == [2, 3]  # k capped at the class count


def test_limit_batches_caps_every_phase():
    seen = []
    cfg = TrainConfig(epochs=1, limit_batches=2, progress=False)
    res = train(
        tiny_model(),
        tiny_loader(),
        cfg,
        val_loader=tiny_loader(shuffle=False),
        hooks=TrainHooks(on_step_end=lambda m, s: seen.append(s)),
    )
    assert seen == [0, 1] and res.final.n == 32


def test_resume_continues_at_the_right_epoch_with_the_same_result(tmp_path):
    full = tiny_model()
    train(full, tiny_loader(), CFG, ckpt_dir=tmp_path / "a")

    def interrupt(model, epoch, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # killed after the first epoch's checkpoint
        hooks = TrainHooks(on_epoch_end=interrupt)
        train(tiny_model(), tiny_loader(), CFG, ckpt_dir=tmp_path / "b", hooks=hooks)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    resumed = tiny_model(seed=123)  # fresh, different weights: all state must come from disk
    res = train(resumed, tiny_loader(), CFG, ckpt_dir=tmp_path / "b", resume=True)
    assert [r["epoch"] for r in res.history] == [1, 2]
    ckpt = load_checkpoint(tmp_path / "b" / "last.pt")
    assert ckpt["epoch"] == 2 and set(ckpt) >= {"model", "optimizer", "scheduler", "config"}
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    again = train(resumed, tiny_loader(), CFG, ckpt_dir=tmp_path / "b", resume=True)
    assert len(again.history) == 2  # nothing left to do


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_atomic({"epoch": 1}, path)

    def crash(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", crash)
    with pytest.raises(RuntimeError):
        save_atomic({"epoch": 2}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.pt"]


def test_bad_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot be read"):
        load_checkpoint(tmp_path / "bad.pt")


def test_hooks_select_params_and_add_loss():
    model = tiny_model()
    head = model[5]
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("5.")}
    calls = []

    def penalty(m, out):
        calls.append(out.shape)
        return 0.01 * m[5].weight.abs().sum()

    before = head.weight.clone()
    train(
        model,
        tiny_loader(),
        CFG,
        hooks=TrainHooks(extra_loss=penalty, params=lambda m: m[5].parameters()),
    )
    assert len(calls) == 8 and not torch.equal(head.weight, before)
    for k, v in frozen.items():
        if (
            "running" not in k and "num_batches" not in k
        ):  # BN statistics still update in train mode
            torch.testing.assert_close(model.state_dict()[k], v, msg=k)
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_selecting_no_params_is_a_user_error():
    with pytest.raises(UserError, match="no parameters"):
        train(tiny_model(), tiny_loader(), CFG, hooks=TrainHooks(params=lambda m: []))


def test_diverging_loss_is_a_user_error():
    model = tiny_model()
    with pytest.raises(UserError, match="lower the lr"):
        train(model, tiny_loader(), TrainConfig(lr=1e30, epochs=2, progress=False, weight_decay=0))


def test_label_smoothing_and_amp_flag_on_cpu():
    cfg = TrainConfig(epochs=1, label_smoothing=0.1, amp=True, channels_last=True, progress=False)
    res = train(tiny_model(), tiny_loader(), cfg)  # amp / channels_last are CUDA-only: ignored
    assert math.isfinite(res.history[0]["train_loss"])


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda")
