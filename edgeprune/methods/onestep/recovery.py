"""One-step recovery (paper Sec. 3.3): the pruned student mimics the dense teacher's
post-ReLU outputs at the crucial layers, all at once, classifier copied and frozen."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeprune.surgery.graph import PrunableGroup


@dataclass(frozen=True)
class Node:
    """Where a crucial layer's output is read: a module path, and whether to apply ReLU."""

    module: str
    relu: bool


def crucial_nodes(
    model: nn.Module, groups: list[PrunableGroup], crucial: list[str], example: torch.Tensor
) -> dict[str, Node]:
    """Per crucial group: its last conv's post-activation output.

    A residual block's last conv is read at the block output (the junction node, after the
    add and its ReLU); any other conv at its BN output, through a ReLU.
    """
    from edgeprune.surgery.blocks import find_blocks
    from edgeprune.surgery.gates import post_bn_modules

    by_name = {g.name: g for g in groups}
    block_of = {
        f"{p}.{s.last_conv}" if p else s.last_conv: p for p, s in find_blocks(model).items()
    }
    names = {m: n for n, m in model.named_modules()}
    after = post_bn_modules(model, example)
    out = {}
    for g in crucial:
        conv = by_name[g].convs[-1]
        if conv in block_of:
            out[g] = Node(block_of[conv], relu=False)
        else:
            out[g] = Node(names[after.get(conv, model.get_submodule(conv))], relu=True)
    return out


class FeatureTap:
    """Forward hooks that keep the latest output of each node (ReLU applied where asked)."""

    def __init__(self, model: nn.Module, nodes: dict[str, Node]) -> None:
        self.maps: dict[str, torch.Tensor] = {}
        self.handles = [
            model.get_submodule(n.module).register_forward_hook(self._hook(g, n.relu))
            for g, n in nodes.items()
        ]

    def _hook(self, key: str, relu: bool):
        def hook(_mod, _inp, out):
            self.maps[key] = F.relu(out) if relu else out

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


class MimicNet(nn.Module):
    """Teacher (frozen, eval) and student side by side for the one training loop.

    ``forward`` returns the student's logits detached: the loop's cross-entropy then adds
    no gradient, and the objective is only the mimic loss given as its ``extra_loss``.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, nodes: dict[str, Node], fn):
        super().__init__()
        self.student, self.teacher, self.fn = student, teacher, fn
        self.s_tap, self.t_tap = FeatureTap(student, nodes), FeatureTap(teacher, nodes)

    def train(self, mode: bool = True) -> MimicNet:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.teacher(x)
        return self.student(x).detach()

    def mimic_loss(self, *_args) -> torch.Tensor:
        """Eq. 8: the mean over crucial nodes of the mimic loss."""
        keys = list(self.t_tap.maps)
        return sum(self.fn(self.t_tap.maps[k], self.s_tap.maps[k]) for k in keys) / len(keys)

    def remove(self) -> None:
        self.s_tap.remove()
        self.t_tap.remove()


def trainable_params(student: nn.Module) -> list[nn.Parameter]:
    """Every student parameter but the classifier's (copied from the teacher, frozen)."""
    frozen = {id(p) for m in student.modules() if isinstance(m, nn.Linear) for p in m.parameters()}
    return [p for p in student.parameters() if id(p) not in frozen]


@torch.no_grad()
def mean_mimic_loss(net: MimicNet, batches: list[torch.Tensor]) -> float:
    """The mimic loss of the student in eval mode, averaged over fixed batches."""
    was = net.training
    net.eval()
    dev = next(net.student.parameters()).device
    total = 0.0
    for x in batches:
        net(x.to(dev))
        total += float(net.mimic_loss())
    net.train(was)
    return total / max(1, len(batches))


def reconstruct_(
    net: MimicNet, loader, cfg, limit_batches: int | None = None, log=None
) -> list[dict]:
    """Train the student on the mimic loss (Adam, lr / 10 every ``recover_lr_step`` epochs);
    ``log(line)`` after each epoch."""
    from edgeprune.train import TrainConfig, TrainHooks, train

    e = cfg.recover_epochs
    tcfg = TrainConfig(
        epochs=e,
        optimizer="adam",
        lr=cfg.recover_lr,
        weight_decay=0.0,
        schedule="step",
        milestones=tuple(k / e for k in range(cfg.recover_lr_step, e, cfg.recover_lr_step)),
        gamma=0.1,
        limit_batches=limit_batches,
        progress=False,
    )

    def on_epoch_end(_m, epoch: int, record: dict) -> None:
        if log is not None:
            loss, secs = record.get("train_loss", float("nan")), record.get("time_s", 0.0)
            log(f"onestep: reconstruction epoch {epoch + 1}/{e}: loss {loss:.4g} ({secs:.0f} s)")

    hooks = TrainHooks(
        params=lambda m: trainable_params(m.student),
        extra_loss=lambda m, _o: m.mimic_loss(),
        on_epoch_end=on_epoch_end,
    )
    return train(net, loader, tcfg, hooks=hooks).history
