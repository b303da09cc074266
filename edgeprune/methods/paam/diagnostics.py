"""PAAM diagnostics as JSON-able data: score histograms (Fig. 5), kept filters (Fig. 4)."""

from __future__ import annotations

import torch

from edgeprune.methods.paam.binarize import Binarization


def histogram(scores: dict[str, torch.Tensor], bins: int, top: float = 1.1) -> dict:
    """Counts of all analog scores over [0, top] (scores above ``top`` go in the last bin)."""
    flat = torch.cat([s.detach().float().flatten().cpu() for s in scores.values()])
    counts = torch.histc(flat.clamp(0.0, top), bins=bins, min=0.0, max=top)
    edges = torch.linspace(0.0, top, bins + 1)
    return {
        "edges": [round(float(e), 6) for e in edges],
        "counts": [int(c) for c in counts],
        "n": int(flat.numel()),
        "mean": float(flat.mean()),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "share_below_0.1": float((flat < 0.1).float().mean()),
        "share_above_0.9": float((flat > 0.9).float().mean()),
    }


def cycle_record(
    cycle: int,
    scores: dict[str, torch.Tensor],
    binar: Binarization,
    channels: dict[str, int],
    bins: int,
    losses: dict[str, float | None],
) -> dict:
    """One cycle: histogram after the AN phase, the CNN phase's theta, p, kept per layer."""
    return {
        "cycle": cycle,
        "histogram": histogram(scores, bins),
        "theta": binar.theta,
        "p": binar.p,
        "kept": binar.kept(),
        "channels": channels,
        **losses,
    }


def last_loss(history: list[dict]) -> float | None:
    """The last epoch's training loss of a ``train()`` history."""
    return float(history[-1]["train_loss"]) if history else None
