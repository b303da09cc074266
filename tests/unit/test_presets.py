"""The --preset values (issue #20): paper = every value the papers give, cpu = ours."""

from __future__ import annotations

import pytest

import edgeprune.methods  # noqa: F401 (registers)
from edgeprune.errors import UserError
from edgeprune.methods.base import check_options, method_class
from edgeprune.methods.presets import apply_preset, get_preset


def test_paam_paper_preset():
    cfg = check_options("paam", get_preset("paam", "paper").options)
    assert (cfg.warmup_epochs, cfg.warmup_lr, cfg.warmup_weight_decay) == (50, 0.1, 5e-4)
    assert (cfg.cycles, cfg.an_epochs, cfg.cnn_epochs) == (10, 3, 6)
    assert (cfg.an_lr, cfg.cnn_lr, cfg.lam, cfg.theta) == (1e-6, 1e-3, 5e-4, 0.5)
    assert (cfg.balance, cfg.binarize, cfg.final) == ("flops", "theta", "binarize")
    assert (cfg.final_scores, cfg.group_weights) == ("trained", "all")
    opts, rec, epochs, batch = apply_preset("paam", "paper", {}, 0, 128)
    assert (rec.optimizer, rec.lr, rec.momentum, rec.weight_decay) == ("sgd", 0.1, 0.9, 5e-4)
    assert (epochs, batch) == (300, 256)


def test_aap_paper_preset():
    cfg = check_options("aap", get_preset("aap", "paper").options)
    assert (cfg.t0, cfg.lam0, cfg.lam_rule, cfg.init_from_attention) == (0.0, 0.01, "paper", False)
    assert (cfg.epochs, cfg.rewind_epoch, cfg.round_epochs) == (182, 136, None)  # E - k = 46
    assert (cfg.lr, cfg.milestones, cfg.gamma, cfg.weight_decay) == (0.1, (91, 136), 0.1, 2e-4)
    assert cfg.train_dense and not cfg.retrain_dense and cfg.stream_threshold == "mean"
    _, rec, epochs, batch = apply_preset("aap", "paper", {}, 0, 128)
    assert rec is None and epochs == 0 and batch == 128


def test_onestep_paper_preset():
    cfg = check_options("onestep", get_preset("onestep", "paper").options)
    assert (cfg.lam, cfg.beta_lr, cfg.beta_epochs, cfg.beta_travel) == (1.0, 1e-5, 15, None)
    assert (cfg.n_crucial, cfg.mimic, cfg.ranking) == (4, "kl", "global")
    assert (cfg.recover_epochs, cfg.recover_lr, cfg.recover_lr_step) == (15, 1e-3, 5)
    _, rec, epochs, _ = apply_preset("onestep", "paper", {}, 0, 128)
    assert (rec.optimizer, rec.lr, rec.schedule, epochs) == ("adam", 1e-5, "constant", 20)


@pytest.mark.parametrize("name", ["paam", "aap", "onestep"])
def test_cpu_preset_is_the_short_schedule_and_opts_win(name):
    assert get_preset(name, "cpu").options == dict(method_class(name).short_schedule)
    opts, rec, epochs, batch = apply_preset(name, "cpu", {"seed": 3}, 2, 64)
    assert opts == {**method_class(name).short_schedule, "seed": 3}
    assert (rec, epochs, batch) == (None, 2, 64)
    merged, *_ = apply_preset("aap", "paper", {"lam0": 0.5}, 0, 128)
    assert merged["lam0"] == 0.5


def test_unknown_presets_are_one_sentence():
    with pytest.raises(UserError, match="no paper preset"):
        get_preset("l1", "paper")
    with pytest.raises(UserError, match="unknown preset"):
        get_preset("aap", "fast")
    assert apply_preset("aap", None, {"a": 1}, 0, 128) == ({"a": 1}, None, 0, 128)


def test_prune_takes_the_preset_flag():
    from edgeprune.cli.main import build_parser

    args = build_parser().parse_args(
        ["prune", "--model", "resnet20", "--out", "x", "--preset", "paper"]
    )
    assert args.preset == "paper"
