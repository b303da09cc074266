"""benchmarks/distill_recovery.py takes the prune command's distillation flags, with
``--distill`` a comma list of modes."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_recovery.py"


def _script():
    spec = importlib.util.spec_from_file_location("distill_recovery", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_modes_list_and_the_prune_commands_flags():
    mod = _script()
    base = ["--latency-budget", "0.5x", "--data-root", "d", "--out", "o"]
    args = mod.get_args_parser().parse_args(
        [*base, "--distill", "none,kd", "--distill-alpha-end", "0.9", "--no-distill-adjust"]
    )
    assert args.distill.split(",") == ["none", "kd"]
    kd = mod._distill(args, "kd")
    assert (kd.mode, kd.alpha, kd.alpha_end, kd.adjust) == ("kd", 0.9, 0.9, False)
    assert not mod._distill(args, "none").enabled
    assert mod._name(args, "kd") == "l1-kd-a0.9-0.9-k1"
    default = mod.get_args_parser().parse_args([*base, "--candidates", "3"])
    assert default.measure_host == 0  # off unless asked: a deploy per structure
    assert mod._name(default, "kd") == "l1-kd-a0.9-0.0-adj-k3"  # session 8-9 run names
