"""The argument groups every sub-command shares, so a flag means the same everywhere.

Group titles and help texts are written once here; ``--help`` of prune, bench, profile and
deploy reads the same for the same flag (defaults may differ per command).
"""

from __future__ import annotations

import argparse

MODEL = "model"
DEVICE = "device profile"
RECOVERY = "recovery training"
SSH = "SSH (remote devices)"
TIMING = "timing on the device"
OUTPUT = "output"
PRECISION = "precision (int8: ONNX Runtime static quantization, QDQ)"


def _group(p: argparse.ArgumentParser, title: str):
    """The argument group titled ``title`` on ``p`` (created on first use)."""
    for g in p._action_groups:
        if g.title == title:
            return g
    return p.add_argument_group(title)


def add_model_args(
    p: argparse.ArgumentParser,
    *,
    positional: bool = False,
    repeatable: bool = False,
    required: bool = True,
    help: str = "registry name (see edgeprune.models) or a pruned-model directory",
) -> None:
    """The model: ``--model`` (or a positional MODEL_DIR), ``--weights``, ``--trust-pickle``."""
    g = _group(p, MODEL)
    if positional:
        g.add_argument("model", metavar="MODEL_DIR", help=help)
    elif repeatable:
        g.add_argument("--model", action="append", default=[], help=f"{help} (repeatable)")
    else:
        g.add_argument("--model", required=required, help=help)
    if repeatable:
        return  # profile sweeps layer shapes of registry models: no weights involved
    g.add_argument("--weights", help="checkpoint path or URL (append #sha256=HEX to pin it)")
    g.add_argument(
        "--trust-pickle",
        action="store_true",
        help="let --weights hold pickled Python objects (loading them can run code)",
    )


def add_device_args(
    p: argparse.ArgumentParser, *, required: bool = False, note: str | None = None
) -> None:
    """``--device``: a device profile (never a torch device; eval's is ``--torch-device``)."""
    text = "device profile name (local, xeon, rpi3, gpu) or YAML path"
    _group(p, DEVICE).add_argument(
        "--device", required=required, help=f"{text}; {note}" if note else text
    )


def add_recovery_args(
    p: argparse.ArgumentParser,
    *,
    schedule: bool = True,
    epochs_alias: str | None = None,
) -> None:
    """Recovery training: ``--data-root``, ``--epochs`` (``--lr``/``--batch-size`` when the
    command lets the user set the schedule), ``--limit-batches``."""
    g = _group(p, RECOVERY)
    g.add_argument("--data-root", help="CIFAR-10 root (top-1 and recovery training)")
    g.add_argument("--epochs", type=int, default=0, help="recovery epochs (0: none)")
    if epochs_alias:
        add_alias(g, epochs_alias, "epochs", int)
    if schedule:
        g.add_argument("--lr", type=float, default=0.01, help="recovery learning rate")
        g.add_argument("--batch-size", type=int, default=128, help="recovery batch size")
    g.add_argument("--limit-batches", type=int, help="cap batches in every phase (smoke runs)")


def add_distill_args(p: argparse.ArgumentParser) -> None:
    """Recovery from the dense teacher and structure candidates: ``--distill``,
    ``--distill-temperature``, ``--distill-alpha``, ``--distill-alpha-end``,
    ``--distill-adjust``, ``--candidates``, ``--candidate-batches``."""
    g = _group(p, RECOVERY)
    g.add_argument(
        "--distill",
        choices=["kd", "feat", "none"],
        default="kd",
        help="recovery learns from the dense model: kd (softened logits + labels), feat (kd "
        "plus attention maps of the stages), none (labels only) (default %(default)s)",
    )
    g.add_argument("--distill-temperature", type=float, default=4.0, help="softening T (default 4)")
    g.add_argument(
        "--distill-alpha",
        type=float,
        default=0.9,
        help="weight of the teacher's logits; the labels get 1 - alpha (default 0.9)",
    )
    g.add_argument(
        "--distill-alpha-end",
        type=float,
        default=0.0,
        help="anneal that weight linearly to this value by the last step, so the last steps "
        "learn the labels (default 0; the --distill-alpha value keeps it constant)",
    )
    g.add_argument(
        "--distill-adjust",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="correct the teacher's wrong answers before distilling: where its top class is not "
        "the label, the two logits swap (Knowledge Adjustment) (default: on)",
    )
    g.add_argument(
        "--candidates",
        type=int,
        default=1,
        help="structures meeting the budget tried by short distilled fine-tunes, best on val "
        "kept (default 1: the first that fits)",
    )
    g.add_argument(
        "--candidate-batches",
        type=int,
        default=200,
        help="training batches of each candidate's fine-tune (default %(default)s)",
    )


def distill_config_from_args(args: argparse.Namespace):
    """The DistillConfig those flags describe."""
    from edgeprune.train.distill import DistillConfig

    return DistillConfig(
        args.distill,
        args.distill_temperature,
        args.distill_alpha,
        adjust=args.distill_adjust,
        alpha_end=args.distill_alpha_end,
    )


def add_ssh_args(p: argparse.ArgumentParser) -> None:
    """Add --host, --key, --known-hosts, --trust-host-key, --verbose and friends to ``p``."""
    ssh = _group(p, SSH)
    ssh.add_argument("--host", help="USER@HOST[:PORT] or a Host alias from ~/.ssh/config")
    ssh.add_argument(
        "--key", help="private key file, never stored (default: ssh-agent / ssh config / ~/.ssh)"
    )
    ssh.add_argument("--known-hosts", default="~/.ssh/known_hosts", help="known_hosts file")
    ssh.add_argument(
        "--trust-host-key",
        action="store_true",
        help="accept an unknown or changed host key (only if you verified it)",
    )
    ssh.add_argument("--ssh-config", default="~/.ssh/config", help="ssh config file for aliases")
    ssh.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds for the TCP connection, the SSH banner and the login (default 10)",
    )
    ssh.add_argument("--retries", type=int, default=3, help="connection attempts on network errors")
    ssh.add_argument(
        "--remote-python",
        help="python on the device (default: the one 'device setup' installed, the profile's, "
        "or python3)",
    )
    ssh.add_argument(
        "--verbose", action="store_true", help="show the SSH library's log (handshake, errors)"
    )


def ssh_options_from_args(args: argparse.Namespace):
    """The SSHOptions those flags describe (host and key are passed separately)."""
    from edgeprune.targets.ssh import SSHOptions

    return SSHOptions(
        known_hosts=args.known_hosts,
        trust_host_key=args.trust_host_key,
        connect_timeout=args.connect_timeout,
        retries=args.retries,
        ssh_config=args.ssh_config,
        verbose=args.verbose,
    )


def check_run_args(args: argparse.Namespace) -> None:
    """Refuse (UserError) prune/bench counts out of range: epochs, candidates, batches."""
    from edgeprune.errors import UserError

    if args.epochs < 0:
        raise UserError("--epochs must be >= 0")
    if args.candidates < 1 or args.candidate_batches < 1:
        raise UserError("--candidates and --candidate-batches must be >= 1")
    if args.precision_batches < 0:
        raise UserError("--precision-batches must be >= 0")


def run_options_from_args(args: argparse.Namespace) -> dict:
    """The options prune and bench share, by their PruneConfig/BenchConfig field names:
    weights, device and SSH, data, seed, distillation, candidates and precision."""
    return dict(
        weights=args.weights,
        trust_pickle=args.trust_pickle,
        device=args.device,
        host=args.host,
        key=args.key,
        remote_python=args.remote_python,
        ssh=ssh_options_from_args(args),
        data_root=args.data_root,
        limit_batches=args.limit_batches,
        seed=args.seed,
        distill=distill_config_from_args(args),
        candidates=args.candidates,
        candidate_batches=args.candidate_batches,
        precision=args.precision,
        precision_batches=args.precision_batches,
        quantization=quant_config_from_args(args),
    )


def add_timing_args(
    p: argparse.ArgumentParser,
    *,
    min_time: float,
    runs: tuple[int, int] | None = None,
    min_time_alias: str | None = None,
) -> None:
    """``--min-time`` (and ``--min-runs``/``--warmup`` where the command takes them)."""
    g = _group(p, TIMING)
    g.add_argument(
        "--min-time",
        type=float,
        default=min_time,
        help="seconds of timed runs per measurement (default %(default)s)",
    )
    if min_time_alias:
        add_alias(g, min_time_alias, "min_time", float)
    if runs is not None:
        g.add_argument(
            "--min-runs",
            type=int,
            default=runs[0],
            help="timed runs at least (default %(default)s)",
        )
        g.add_argument(
            "--warmup",
            type=int,
            default=runs[1],
            help="untimed runs first (default %(default)s)",
        )


def add_output_args(
    p: argparse.ArgumentParser,
    *,
    required: bool = True,
    help: str = "output directory",
    overwrite: str | None = None,
    resume: str | None = None,
) -> None:
    """``--out``, plus ``--overwrite``/``--resume`` with the command's own meaning."""
    g = _group(p, OUTPUT)
    g.add_argument("--out", required=required, help=help)
    if overwrite:
        g.add_argument("--overwrite", action="store_true", help=overwrite)
    if resume:
        g.add_argument("--resume", action="store_true", help=resume)


def add_alias(g, flag: str, dest: str, type: type) -> None:
    """An old spelling of an option that still parses, left out of ``--help``."""
    g.add_argument(flag, dest=dest, type=type, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_precision_args(
    p: argparse.ArgumentParser,
    *,
    quantizes: bool = True,
    default: str | None = "fp32",
    chooses: bool = False,
) -> None:
    """``--precision`` (fp32 | int8 | auto), how to quantize where the command does, and
    (``chooses``) ``--precision-batches`` where the command chooses the precision."""
    from edgeprune.quant import CALIBRATION_METHODS, PRECISIONS

    g = _group(p, PRECISION)
    g.add_argument(
        "--precision",
        default=default,
        choices=[*PRECISIONS, "auto"],
        help="the deployed model's precision; int8: per-channel int8 weights, uint8 "
        "activations, calibrated on training images; auto: the device decides (default "
        + ("%(default)s)" if default else "the run dir's model.onnx, else fp32)"),
    )
    if not quantizes:
        return
    g.add_argument(
        "--calibration",
        default="minmax",
        choices=list(CALIBRATION_METHODS),
        help="int8: how activation ranges are calibrated (default %(default)s)",
    )
    g.add_argument(
        "--calibration-images",
        type=int,
        default=256,
        help="int8: training images (val held out) to calibrate on (default %(default)s)",
    )
    g.add_argument(
        "--qat-epochs",
        type=int,
        default=0,
        help="int8: when quantizing costs > 0.5 point of val top-1, fine-tune this many epochs "
        "with int8 fake quantization and keep it if better (needs --data-root; default 0)",
    )
    if chooses:
        g.add_argument(
            "--precision-batches",
            type=int,
            default=100,
            help="auto: training batches of a short common recovery, distilled like the "
            "recovery, before each precision's candidate is scored on val (default 100, "
            "capped by --limit-batches; 0: none, scoring unrecovered candidates near chance "
            "after heavy pruning; --candidates > 1 uses --candidate-batches)",
        )


def quant_config_from_args(args: argparse.Namespace):
    """The QuantConfig of ``--calibration``/``--calibration-images`` (None: not int8)."""
    from edgeprune.quant.deployable import QuantConfig

    return QuantConfig(
        method=args.calibration,
        calibration_images=args.calibration_images,
        qat_epochs=args.qat_epochs,
    )
