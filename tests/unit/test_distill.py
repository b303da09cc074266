"""Distillation in the training loop: the loss on hand-made logits, a student that learns
its teacher, ``none`` as the old loss exactly, and the feature term on a pruned student."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.errors import UserError
from edgeprune.train import NO_DISTILL, DistillConfig, TrainConfig, distill_loss, train
from edgeprune.train.distill import (
    adjusted_teacher,
    attention_map,
    feature_term,
    kd_term,
    matched_stages,
)


def test_kd_term_on_hand_made_logits():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[2.0 * math.log(3.0), 0.0]])  # at T=2 the teacher says (3/4, 1/4)
    # KL((3/4, 1/4) || (1/2, 1/2)) * T^2
    want = (0.75 * math.log(1.5) + 0.25 * math.log(0.5)) * 4
    assert float(kd_term(s, t, 2.0)) == pytest.approx(want, rel=1e-6)
    assert float(kd_term(t, t, 2.0)) == pytest.approx(0.0, abs=1e-7)
    # averaged over the batch, not summed
    assert float(kd_term(s.repeat(3, 1), t.repeat(3, 1), 2.0)) == pytest.approx(want, rel=1e-6)


def test_distill_loss_mixes_labels_and_teacher():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[2.0 * math.log(3.0), 0.0]])
    y = torch.tensor([0])
    kl = (0.75 * math.log(1.5) + 0.25 * math.log(0.5)) * 4
    ce = math.log(2.0)
    cfg = DistillConfig(temperature=2.0, alpha=0.25)
    assert float(distill_loss(s, t, y, cfg)) == pytest.approx(0.75 * ce + 0.25 * kl, rel=1e-6)
    assert float(distill_loss(s, t, y, DistillConfig(alpha=0.0))) == pytest.approx(ce)


def test_adjusted_teacher_swaps_a_wrong_top_logit_with_the_label():
    t = torch.tensor([[3.0, 1.0, 0.5], [0.2, 2.0, 1.0]])
    y = torch.tensor([2, 1])  # row 0: the teacher says 0, the label is 2; row 1: right
    want = torch.tensor([[0.5, 1.0, 3.0], [0.2, 2.0, 1.0]])
    assert torch.equal(adjusted_teacher(t, y), want)
    assert torch.equal(t, torch.tensor([[3.0, 1.0, 0.5], [0.2, 2.0, 1.0]]))  # not in place
    # in the loss: a teacher that is wrong on the only sample, adjusted, becomes the label's
    s = torch.tensor([[0.0, 0.0]])
    wrong = torch.tensor([[2.0 * math.log(3.0), 0.0]])  # (3/4, 1/4) at T=2, label 1
    cfg = DistillConfig(temperature=2.0, alpha=1.0, adjust=True)
    flipped = (0.25 * math.log(0.5) + 0.75 * math.log(1.5)) * 4  # KL((1/4, 3/4) || (1/2, 1/2))
    assert float(distill_loss(s, wrong, torch.tensor([1]), cfg)) == pytest.approx(flipped)


def test_alpha_anneals_linearly_to_its_end_value():
    cfg = DistillConfig(alpha=0.9, alpha_end=0.1)
    assert [cfg.alpha_at(p) for p in (0.0, 0.5, 1.0, 2.0)] == pytest.approx([0.9, 0.5, 0.1, 0.1])
    assert DistillConfig(alpha=0.9, alpha_end=None).alpha_at(1.0) == 0.9  # no end: constant
    assert DistillConfig().alpha_at(1.0) == 0.0 and DistillConfig().adjust  # the defaults
    s, t, y = (
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[2.0 * math.log(3.0), 0.0]]),
        torch.tensor([0]),
    )
    ce, kl = math.log(2.0), (0.75 * math.log(1.5) + 0.25 * math.log(0.5)) * 4
    end = DistillConfig(temperature=2.0, alpha=1.0, alpha_end=0.0)
    assert float(distill_loss(s, t, y, end, progress=0.0)) == pytest.approx(kl)
    assert float(distill_loss(s, t, y, end, progress=1.0)) == pytest.approx(ce)
    with pytest.raises(UserError):
        DistillConfig(alpha_end=-0.5)


def test_distill_config_is_checked():
    with pytest.raises(UserError):
        DistillConfig(mode="fitnet")
    with pytest.raises(UserError):
        DistillConfig(alpha=1.5)
    assert DistillConfig.from_dict(DistillConfig().to_dict()) == DistillConfig()
    assert not NO_DISTILL.enabled and DistillConfig().enabled


class Net(nn.Module):
    def __init__(self, width: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.stage = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 4))

    def forward(self, x):
        return self.head(self.stage(self.stem(x)))


def _loader(n: int = 64) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 4
    x = torch.randn(n, 3, 8, 8, generator=g) + y.view(-1, 1, 1, 1) * 0.5
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=g)


def _kd_on(student, teacher, loader, t: float = 4.0) -> float:
    student.eval()
    teacher.eval()
    with torch.no_grad():
        return sum(float(kd_term(student(x), teacher(x), t)) for x, _ in loader) / len(loader)


def test_training_with_a_teacher_lowers_the_kd_loss():
    teacher, loader = Net(8, seed=1), _loader()
    train(teacher, loader, TrainConfig(epochs=5, lr=0.05, progress=False))
    student = Net(4, seed=2)
    before = _kd_on(student, teacher, loader)
    snapshot = copy.deepcopy(teacher.state_dict())
    cfg = DistillConfig(alpha=1.0, alpha_end=None)  # teacher only: the loss is the KD term
    train(
        student,
        loader,
        TrainConfig(epochs=6, lr=0.05, progress=False),
        teacher=teacher,
        distill=cfg,
    )
    assert _kd_on(student, teacher, loader) < 0.5 * before
    # the teacher is left as it was: no step, no BN update, eval mode restored
    assert all(torch.equal(v, snapshot[k]) for k, v in teacher.state_dict().items())


def test_distill_none_is_the_old_loss_exactly():
    loader = _loader()
    cfg = TrainConfig(epochs=2, lr=0.05, progress=False)
    plain, off, kd = Net(seed=3), Net(seed=3), Net(seed=3)
    hist_plain = train(plain, loader, cfg).history
    hist_off = train(off, loader, cfg, teacher=Net(seed=4), distill=NO_DISTILL).history
    hist_kd = train(kd, loader, cfg, teacher=Net(seed=4)).history
    assert [h["train_loss"] for h in hist_plain] == [h["train_loss"] for h in hist_off]
    assert all(
        torch.equal(a, b)
        for a, b in zip(plain.state_dict().values(), off.state_dict().values(), strict=True)
    )
    assert [h["train_loss"] for h in hist_kd] != [h["train_loss"] for h in hist_plain]


def test_feature_term_compares_pruned_and_dense_stages():
    dense, thin = Net(8, seed=5), Net(4, seed=6)
    x = torch.randn(2, 3, 8, 8)
    assert matched_stages(thin, dense, x) == ["stem", "stage"]  # head is not a 4-D map
    a = torch.randn(2, 8, 4, 4)
    assert float(feature_term([a], [a])) == 0.0
    assert attention_map(a).norm(dim=1).allclose(torch.ones(2))
    # equal maps up to channel count and scale: the same attention, no loss
    assert float(feature_term([a[:, :1].repeat(1, 3, 1, 1)], [3 * a[:, :1]])) == pytest.approx(
        0, abs=1e-12
    )
    loader = _loader()
    cfg = TrainConfig(epochs=1, lr=0.05, progress=False)
    hist_kd = train(copy.deepcopy(thin), loader, cfg, teacher=dense).history
    hist_feat = train(thin, loader, cfg, teacher=dense, distill=DistillConfig(mode="feat")).history
    assert hist_feat[0]["train_loss"] > hist_kd[0]["train_loss"]  # the extra term is counted
    assert not thin._forward_hooks and not thin.stem._forward_hooks  # taps removed
    assert not dense.stem._forward_hooks


def test_the_loop_anneals_alpha_over_every_step_of_every_epoch(monkeypatch):
    import edgeprune.train.loop as loop

    seen = []

    def spy(out, t_out, y, cfg, criterion=None, progress=0.0):
        seen.append(progress)
        return distill_loss(out, t_out, y, cfg, criterion, progress)

    monkeypatch.setattr(loop, "distill_loss", spy)
    cfg = TrainConfig(epochs=2, lr=0.01, progress=False)
    end = DistillConfig(alpha=0.9, alpha_end=0.0)
    train(Net(seed=7), _loader(), cfg, teacher=Net(seed=8), distill=end)
    assert seen == pytest.approx([i / 7 for i in range(8)])  # 2 epochs x 4 batches
