"""One CLI vocabulary: the same flag means the same in every sub-command, and one logging
path (``--quiet``, ``--log-format json``)."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from edgeprune.cli.main import build_parser, main

SSH_FLAGS = (
    "--host",
    "--key",
    "--known-hosts",
    "--trust-host-key",
    "--ssh-config",
    "--connect-timeout",
    "--retries",
    "--remote-python",
    "--verbose",
)
DEVICE_COMMANDS = ("prune", "bench", "profile", "deploy")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(p: argparse.ArgumentParser) -> dict[str, tuple[str | None, str | None]]:
    """option string -> (help text, group title)."""
    out = {}
    for group in p._action_groups:
        for action in group._group_actions:
            for flag in action.option_strings:
                out[flag] = (action.help, group.title)
    return out


@pytest.fixture(scope="module")
def subparsers():
    return _subparsers()


@pytest.mark.parametrize("flags", [SSH_FLAGS, ("--min-time",), ("--device",), ("--out",)])
def test_shared_flags_read_the_same_everywhere(subparsers, flags):
    seen = {cmd: _options(subparsers[cmd]) for cmd in DEVICE_COMMANDS}
    for flag in flags:
        texts = {cmd: opts.get(flag) for cmd, opts in seen.items()}
        assert all(t is not None for t in texts.values()), (flag, texts)
        if flag in ("--device", "--out"):  # same group; a note of the command's own may follow
            assert len({t[1] for t in texts.values()}) == 1, (flag, texts)
            continue
        assert len(set(texts.values())) == 1, (flag, texts)


def test_device_setup_takes_the_same_ssh_flags(subparsers):
    device = subparsers["device"]
    verbs = next(a for a in device._actions if isinstance(a, argparse._SubParsersAction))
    opts = _options(verbs.choices["setup"])
    prune = _options(subparsers["prune"])
    assert {f: opts[f] for f in SSH_FLAGS} == {f: prune[f] for f in SSH_FLAGS}


def test_device_is_a_profile_everywhere_and_eval_names_the_torch_device(subparsers):
    for cmd in (*DEVICE_COMMANDS,):
        assert "device profile" in _options(subparsers[cmd])["--device"][0]
    ev = _options(subparsers["eval"])
    assert "--device" not in ev and "--torch-device" in ev


def test_one_name_for_recovery_epochs_and_min_time_old_spellings_still_parse(subparsers):
    bench, prune = subparsers["bench"], subparsers["prune"]
    common = ["--model", "m", "--out", "o"]
    a = bench.parse_args([*common, "--flops-budgets", "0.5x", "--recovery", "2"])
    b = bench.parse_args([*common, "--flops-budgets", "0.5x", "--epochs", "2"])
    assert a.epochs == b.epochs == 2
    assert prune.parse_args([*common, "--verify-min-time", "0.5"]).min_time == 0.5
    assert prune.parse_args(common).min_time == 3.0
    for p in (bench, prune):  # old spellings stay out of --help
        text = p.format_help()
        assert "--verify-min-time" not in text and "--recovery " not in text


def test_bench_methods_come_from_the_registry(subparsers):
    from edgeprune.methods.base import list_methods

    bench = subparsers["bench"]
    args = bench.parse_args(["--model", "m", "--out", "o", "--flops-budgets", "0.5x"])
    assert args.methods.split(",") == list(list_methods())


def test_prune_and_bench_pass_ssh_options_to_their_configs(subparsers, monkeypatch):
    import edgeprune.workflows.prune as wp

    seen = {}

    def fake_run(cfg):
        from edgeprune.report.run_report import ModelStats, RunReport

        seen["cfg"] = cfg
        stats = ModelStats(params=1, flops=1, weight_bytes=4)
        return RunReport("resnet8", "l1", stats, stats, budget_met=True)

    monkeypatch.setattr(wp, "run_prune", fake_run)
    monkeypatch.setattr(wp, "summary", lambda report: "ok")
    argv = ["prune", "--model", "resnet8", "--flops-budget", "0.5x", "--out", "o"]
    argv += ["--host", "me@h:2222", "--key", "k", "--remote-python", "/py", "--trust-host-key"]
    assert main(argv) == 0
    cfg = seen["cfg"]
    assert (cfg.host, cfg.key, cfg.remote_python) == ("me@h:2222", "k", "/py")
    assert cfg.ssh.trust_host_key


def _progress_loop() -> None:
    from edgeprune.log import get_logger, progress

    get_logger("prune").info("hello")
    for _ in progress(range(3), "steps", area="train"):
        pass


def test_quiet_silences_progress_and_info(capsys):
    from edgeprune.log import configure

    try:
        configure(quiet=True)
        _progress_loop()
        assert capsys.readouterr().err == ""
        configure()
        _progress_loop()
        err = capsys.readouterr().err
        assert "[prune] hello" in err and "steps" in err
    finally:
        configure()


def test_json_log_format_is_one_object_per_line(capsys):
    from edgeprune.log import configure, get_logger

    try:
        configure(fmt="json")
        _progress_loop()
        get_logger("bench").warning("careful")
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        configure()
    objs = [json.loads(line) for line in lines]
    assert objs[0] == {"level": "info", "area": "prune", "message": "hello"}
    events = [o for o in objs if o.get("event")]
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    assert events[-1]["n"] == events[-1]["total"] == 3 and events[-1]["area"] == "train"
    assert objs[-1]["level"] == "warning" and objs[-1]["area"] == "bench"


def test_cli_flags_configure_logging_and_errors_stay_one_line(capsys):
    rc = main(["--log-format", "json", "eval", "--model", "resnet8", "--data-root", "/nope"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and json.loads(err[0])["level"] == "error"
    rc = main(["--quiet", "eval", "--model", "resnet8", "--data-root", "/nope"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err == [err[0]] and err[0].startswith("edgeprune: error: ")
    assert logging.getLogger("edgeprune").handlers  # one handler, reconfigured per command
    main_handlers = [h for h in logging.getLogger("edgeprune").handlers]
    main(["--quiet", "eval", "--model", "resnet8", "--data-root", "/nope"])
    capsys.readouterr()
    assert logging.getLogger("edgeprune").handlers == main_handlers
