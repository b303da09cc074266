"""Activation-based attention per filter (AAP Section 3.1).

A filter's attention is F(A) over its post-ReLU feature map A (h x w): the mean (default),
max or sum of |a|^p, averaged over the images of a fixed calibration draw.

Where the activation is taken:

- a conv followed by BN (and ReLU): ``relu(bn(conv(x)))``, i.e. the BN output clamped at 0
  (exact for conv-BN-ReLU; for a layer without ReLU, e.g. a linear bottleneck, it is the
  ReLU AAP's definition asks for, not what the network applies);
- the last conv of a residual block: the block's output, AFTER the residual add and its
  ReLU (as the public code does). Its channels are coupled with every other member of the
  residual stream, and pruning one removes it from the whole stream (the identity path
  included), so what matters is what the stream carries, not this block's residual update:
  a channel the block hardly updates but the stream uses heavily must score high. Taking it
  after bn2 (before the add) would score the update only and prune live stream channels.

A coupled group (a residual stream) scores each channel by the mean over its members.
Under DDP the sums and counts are all-reduced, so every rank prunes the same filters.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
import torch.nn as nn

from edgeprune.surgery.blocks import find_blocks
from edgeprune.surgery.graph import PrunableGroup


def attention_map(a: torch.Tensor, kind: str = "mean", p: float = 1.0) -> torch.Tensor:
    """Per image and channel: mean / max / sum over h x w of |a|^p; (N, C, H, W) -> (N, C)."""
    x = a.detach().abs().pow(p).flatten(2)
    if kind == "mean":
        return x.mean(2)
    if kind == "max":
        return x.amax(2)
    if kind == "sum":
        return x.sum(2)
    raise ValueError(f"unknown attention {kind!r}")


def _block_outputs(model: nn.Module) -> dict[str, str]:
    """Last conv of each residual block -> the block's module path."""
    out = {}
    for path, spec in find_blocks(model).items():
        out[f"{path}.{spec.last_conv}" if path else spec.last_conv] = path
    return out


def _post_bn_modules(model: nn.Module, example: torch.Tensor) -> dict[str, str]:
    """Per conv: the path of the module giving its feature map after BN (traced once)."""
    from edgeprune.surgery.gates import post_bn_modules

    names = {m: n for n, m in model.named_modules()}
    return {conv: names[mod] for conv, mod in post_bn_modules(model, example).items()}


def activation_points(
    model: nn.Module, groups: list[PrunableGroup], example: torch.Tensor
) -> dict[str, list[tuple[str, bool]]]:
    """Per group: (module path, apply ReLU) whose output is each member's activation."""
    blocks, bns = _block_outputs(model), _post_bn_modules(model, example)
    points: dict[str, list[tuple[str, bool]]] = {}
    for g in groups:
        pts = []
        for conv in g.convs:
            if conv in blocks:
                pts.append((blocks[conv], True))
            else:
                pts.append((bns.get(conv, conv), True))
        points[g.name] = pts
    return points


class _Accumulator:
    """Sums of per-channel attention over images, per module path."""

    def __init__(self, kind: str, p: float) -> None:
        self.kind, self.p = kind, p
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def hook(self, path: str, relu: bool):
        def fn(_mod, _inp, out):
            a = torch.relu(out) if relu else out
            att = attention_map(a, self.kind, self.p).double().sum(0).cpu()
            self.sums[path] = self.sums.get(path, 0) + att
            self.counts[path] = self.counts.get(path, 0) + a.shape[0]

        return fn


def _all_reduce(acc: _Accumulator) -> None:
    """Sum the accumulators over ranks when a process group is initialised."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    for path in sorted(acc.sums):
        buf = torch.cat(
            [acc.sums[path], torch.tensor([float(acc.counts[path])], dtype=torch.double)]
        )
        if dist.get_backend() == "nccl":
            buf = buf.cuda()
        dist.all_reduce(buf)
        buf = buf.cpu()
        acc.sums[path], acc.counts[path] = buf[:-1], int(round(float(buf[-1])))


@torch.no_grad()
def collect_attention(
    model: nn.Module,
    groups: list[PrunableGroup],
    batches: Iterable[torch.Tensor],
    example: torch.Tensor,
    kind: str = "mean",
    p: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Per group: one attention value per channel, averaged over ``batches`` (and ranks)."""
    points = activation_points(model, groups, example)
    acc = _Accumulator(kind, p)
    modules = dict(model.named_modules())
    wanted = {pt for pts in points.values() for pt in pts}
    handles = [modules[path].register_forward_hook(acc.hook(path, relu)) for path, relu in wanted]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for x in batches:
            model(x.to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    _all_reduce(acc)
    out = {}
    for g in groups:
        maps = [acc.sums[path] / acc.counts[path] for path, _ in points[g.name]]
        out[g.name] = torch.stack(maps).mean(0).float()
    return out


def calibration_batches(
    loader, n: int, seed: int, example: torch.Tensor, fallback_batch: int = 64
) -> list[torch.Tensor]:
    """A fixed draw of ``n`` input batches: the same on every call (and resume).

    From the loader with its shuffling generator and the global RNG (augmentation) seeded by
    ``seed``; without a loader, seeded Gaussian inputs (the paper finds attention insensitive
    to the inputs of a converged model).
    """
    if loader is None:
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(fallback_batch, *example.shape[1:], generator=g) for _ in range(n)]
    out: list[torch.Tensor] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = getattr(loader, "generator", None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(seed)
        for x, _y in loader:
            out.append(x)
            if len(out) >= n:
                break
    return out
