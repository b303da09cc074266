"""One PAAM run on a model: set-up, resume, warm-up, cycles, and clean-up."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from edgeprune.errors import UserError
from edgeprune.methods.paam.attention import an_param_count, build_attention
from edgeprune.methods.paam.balance import layer_weights
from edgeprune.methods.paam.binarize import Binarization, by_budget, by_ratio, by_theta
from edgeprune.methods.paam.config import PAAMConfig
from edgeprune.methods.paam.diagnostics import cycle_record, histogram, last_loss
from edgeprune.methods.paam.schedule import an_phase_, cnn_phase_, warmup_
from edgeprune.methods.paam.scores import ScoreBank, eval_mode
from edgeprune.surgery.blocks import droppable_groups
from edgeprune.surgery.graph import PrunableGroup

Binarizer = Callable[[dict[str, torch.Tensor]], Binarization]


def make_binarizer(
    cfg: PAAMConfig, model: nn.Module, groups: list[PrunableGroup], ctx, droppable: set[str]
) -> tuple[str, Binarizer]:
    """(mode, g) for binarize = auto | budget | ratio | theta."""
    mode = cfg.binarize
    meets = None
    if mode in ("auto", "budget"):
        from edgeprune.methods.paam.budgetfit import budget_checker

        meets = budget_checker(model, groups, ctx)
        if meets is None and mode == "budget":
            raise UserError("paam option binarize=budget needs a budget with targets")
        mode = "budget" if meets is not None else "theta"
    if mode == "budget":
        return mode, lambda s: by_budget(s, groups, meets, droppable)
    if mode == "ratio":
        return mode, lambda s: by_ratio(s, groups, cfg.prune_ratio, droppable)
    return mode, lambda s: by_theta(s, groups, cfg.theta, droppable)


class PAAMRun:
    """The state of one PAAM training run (the model is trained in place)."""

    def __init__(self, cfg: PAAMConfig, model: nn.Module, groups: list[PrunableGroup], ctx):
        from edgeprune.train import resolve_device

        if ctx.train_loader is None:
            raise UserError("PAAM trains attention networks on data: give --data-root")
        self.cfg, self.model, self.groups, self.ctx = cfg, model, groups, ctx
        self.home = next(model.parameters()).device
        self.device = resolve_device(cfg.device)
        self.droppable = droppable_groups(model)
        with eval_mode(model):
            self.mode, self.binarize = make_binarizer(cfg, model, groups, ctx, self.droppable)
        model.to(self.device)
        self.balance, self.weights = layer_weights(
            cfg.balance, model, groups, ctx.example_input, ctx.latency_weights
        )
        self.nets = build_attention(model, groups, cfg).to(self.device)
        self.records: list[dict] = []
        self.warmup_history: list[dict] = []
        self.done_cycles, self.warm = 0, cfg.warmup_epochs == 0
        self.bank: ScoreBank | None = None
        self.trained_scores: dict[str, torch.Tensor] | None = None

    # -- checkpoints -------------------------------------------------------------------
    def _fingerprint(self) -> dict:
        d = self.cfg.to_dict()
        d.pop("device")
        return d

    def save(self) -> None:
        if self.ctx.checkpoint is None:
            return
        self.ctx.checkpoint.save(
            {
                "paam": 1,
                "config": self._fingerprint(),
                "warm": self.warm,
                "done_cycles": self.done_cycles,
                "model": self.model.state_dict(),
                "nets": self.nets.state_dict(),
                "records": self.records,
                "warmup_history": self.warmup_history,
                "trained_scores": self.trained_scores,
            }
        )

    def resume(self) -> None:
        """Continue from the last saved cycle when ``ctx.resume`` and a PAAM state exist."""
        if not self.ctx.resume or self.ctx.checkpoint is None:
            return
        state = self.ctx.checkpoint.load()
        if not state or state.get("paam") != 1:
            self.ctx.log("paam: no saved PAAM state to resume; starting afresh")
            return
        if state["config"] != self._fingerprint():
            raise UserError(
                "the saved PAAM state was made with other options; rerun with the same --opt "
                "values or without --resume"
            )
        self.model.load_state_dict(state["model"])
        self.nets.load_state_dict(state["nets"])
        self.warm, self.done_cycles = state["warm"], state["done_cycles"]
        self.records, self.warmup_history = state["records"], state["warmup_history"]
        self.trained_scores = state.get("trained_scores")
        self.ctx.log(f"paam: resumed after {self.done_cycles} of {self.cfg.cycles} cycles")

    # -- phases ----------------------------------------------------------------------
    def warmup(self) -> None:
        if self.warm:
            return
        self.ctx.log(f"paam: dense warm-up, {self.cfg.warmup_epochs} epochs")
        self.warmup_history = warmup_(self.model, self.cfg, self.ctx)
        self.warm = True
        self.save()

    def cycle(self, i: int) -> None:
        """One cycle: AN phase, binarize, CNN phase; recorded and checkpointed."""
        bank = self.bank
        an = an_phase_(bank, self.weights, self.cfg, self.ctx, seed=1000 * i + 1)
        scores = bank.scores()
        self.trained_scores = scores  # the masks of this CNN phase come from these
        binar = self.binarize(scores)
        cnn = cnn_phase_(bank, binar.masks, self.cfg, self.ctx, seed=1000 * i + 2)
        chans = {g.name: g.channels for g in self.groups}
        losses = {"an_loss": last_loss(an), "cnn_loss": last_loss(cnn)}
        rec = cycle_record(i + 1, scores, binar, chans, self.cfg.hist_bins, losses)
        self.records.append(rec)
        self.done_cycles = i + 1
        self.ctx.log(
            f"paam cycle {i + 1}/{self.cfg.cycles}: AN loss {losses['an_loss']:.4f}, mean score "
            f"{rec['histogram']['mean']:.3f}, {self.mode} theta {binar.theta:.3f} p {binar.p:.3f}, "
            f"CNN loss {losses['cnn_loss']:.4f}"
        )
        self.save()

    def execute(self) -> dict[str, torch.Tensor]:
        """Warm-up and all cycles; returns the final analog scores (CPU): those the last
        CNN phase's masks came from (``final_scores=trained``) or recomputed. Leaves the model
        trained, without ANs, on its original device."""
        self.resume()
        try:
            self.warmup()
            self.bank = ScoreBank(
                self.model,
                self.groups,
                self.nets,
                self.ctx.example_input,
                self.cfg.group_weights,
            )
            for i in range(self.done_cycles, self.cfg.cycles):
                self.cycle(i)
            if self.cfg.final_scores == "trained" and self.trained_scores is not None:
                return {k: v.clone() for k, v in self.trained_scores.items()}
            return self.bank.scores()
        finally:
            if self.bank is not None:
                self.bank.remove()
            self.model.to(self.home).eval()

    def diagnostics(self, final: dict[str, torch.Tensor]) -> dict:
        """Everything the run directory's diagnostics.json shows."""
        end = self.binarize(final)
        paper = by_theta(final, self.groups, self.cfg.theta, self.droppable)
        return {
            "method": "paam",
            "config": self.cfg.to_dict(),
            "lambda": self.cfg.lam,
            "balance": self.balance,
            "layer_weights": self.weights,
            "binarize": self.mode,
            "an_params": an_param_count(
                self.model,
                self.groups,
                self.cfg.variant,
                self.cfg.group_weights,
                self.cfg.kq_dim_divisor,
            ),
            "warmup": self.warmup_history,
            "cycles": self.records,
            "final": {
                "histogram": histogram(final, self.cfg.hist_bins),
                "theta": end.theta,
                "p": end.p,
                "kept": end.kept(),
                "kept_at_theta": {"theta": self.cfg.theta, "p": paper.p, "kept": paper.kept()},
                "scores": {k: [round(float(x), 5) for x in v] for k, v in final.items()},
            },
        }
