"""End-to-end `edgeprune deploy`: locally and through a loopback sshd (real ORT, real SSH)."""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import threading

import pytest

from edgeprune.cli.main import main
from edgeprune.runtimes.interval import DEFAULT_SESSIONS

FAST = ["--min-time", "0.2", "--min-runs", "5", "--warmup", "2"]
REQUIRED = {
    "model",
    "device",
    "runtime",
    "batch",
    "latency_ms_median",
    "latency_ms_p90",
    "throughput_ips",
    "params",
    "flops",
    "predicted_latency_ms",
}


def _check_report(out, batches, dense=True) -> dict:
    for ext in ("json", "csv", "md"):
        assert (out / f"report.{ext}").is_file()
    report = json.loads((out / "report.json").read_text())
    assert REQUIRED <= set(report)
    assert [r["batch"] for r in report["results"]] == list(batches)
    for r in report["results"]:
        assert r["latency_ms_median"] > 0 and r["throughput_ips"] > 0
        assert r["latency_ms_p90"] >= r["latency_ms_median"] * 0.999
    if dense:
        assert {"dense_latency_ms_median", "speedup"} <= set(report)
        assert all(0.2 < r["speedup"] < 5 for r in report["results"])
    assert report["params"] > 0 and report["onnx_size_bytes"] > 0
    assert report["device_identity"]["cores"] >= 1
    # the device computed torch's outputs (random-init models have large logits: relative)
    assert report["device_check_max_abs_diff"] <= 1e-4 * report["device_check_output_scale"]
    assert not [n for n in report["notes"] if "outputs on the device" in n]
    assert len((out / "report.csv").read_text().strip().splitlines()) == 1 + len(batches)
    assert not [p for p in os.listdir(out) if ".tmp" in p or ".part" in p]
    return report


def test_local_deploy_resnet56_compare_dense(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "deploy",
            "resnet56",
            "--device",
            "local",
            "--compare-dense",
            "--out",
            str(out),
            "--threads",
            "1",
            *FAST,
        ]
    )
    assert rc == 0
    report = _check_report(out, [1])
    assert report["model"] == "resnet56" and report["runtime"] == "ort"
    assert report["params"] == report["dense_params"]
    assert (out / "model.onnx").is_file() and (out / "model.opt.onnx").is_file()
    assert "speedup" in capsys.readouterr().out


def test_local_deploy_pruned_dir_is_faster_than_dense(tmp_path, uniform_pruned):
    uniform_pruned(tmp_path / "pruned", "resnet20", 0.25)
    out = tmp_path / "out"
    rc = main(
        [
            "deploy",
            str(tmp_path / "pruned"),
            "--device",
            "local",
            "--compare-dense",
            "--threads",
            "1",
            "--out",
            str(out),
            "--min-time",
            "0.5",
            "--min-runs",
            "20",
        ]
    )
    assert rc == 0
    report = _check_report(out, [1])
    assert report["pruned"] and report["params"] < report["dense_params"] / 4
    assert report["flops"] < report["dense_flops"] / 4
    assert report["speedup"] > 1.2  # ~10x fewer MACs; interleaved ratio, robust to load
    sessions = report["results"][0]["ratio_sessions"]  # the interval: over their medians
    lo, hi = report["ratio_ci95"]
    assert len(sessions) == DEFAULT_SESSIONS
    assert report["ratio"] == pytest.approx(statistics.median(sessions))
    assert lo <= report["ratio"] <= hi


@pytest.mark.ssh
def test_deploy_through_ssh_alias(sshd, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host edgebox\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    out = tmp_path / "out"
    rc = main(
        [
            "deploy",
            "resnet8",
            "--device",
            "local",
            "--host",
            "edgebox",
            "--ssh-config",
            str(cfg),
            "--known-hosts",
            str(sshd.known_hosts),
            "--remote-python",
            sys.executable,
            "--compare-dense",
            "--batch",
            "1,2",
            "--profile-layers",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert rc == 0
    report = _check_report(out, [1, 2])
    assert report["host"] == "edgebox"
    assert report["layers"] and any(x["module"].startswith("layer1") for x in report["layers"])
    assert not [p for p in os.listdir(sshd.remote_tmp) if p.startswith("edgeprune-")]


@pytest.mark.ssh
def test_deploy_unknown_host_key_is_one_line(sshd, tmp_path, capsys):
    empty = tmp_path / "kh"
    empty.write_text("")
    rc = main(
        [
            "deploy",
            "resnet8",
            "--device",
            "local",
            "--host",
            sshd.host,
            "--key",
            str(sshd.client_key),
            "--known-hosts",
            str(empty),
            "--ssh-config",
            "/dev/null",
            "--out",
            str(tmp_path / "out"),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("edgeprune: error:")]
    assert rc == 2 and len(errors) == 1 and "--trust-host-key" in errors[0]
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.ssh
def test_connection_dropped_mid_run(own_sshd, tmp_path, caplog):
    from edgeprune.runtimes.settings import AgentSettings
    from edgeprune.targets import TargetConnectionError
    from edgeprune.targets.ssh import SSHOptions
    from edgeprune.workflows.deploy import DeployConfig, run_deploy

    timers = []

    def progress(msg: str) -> None:
        if "benchmark" in msg:  # the agent is starting on the device: pull the plug soon
            timers.append(threading.Timer(2.0, own_sshd.kill))
            timers[-1].start()

    cfg = DeployConfig(
        model="resnet8",
        device="local",
        out=str(tmp_path / "out"),
        host=own_sshd.host,
        key=str(own_sshd.client_key),
        remote_python=sys.executable,
        threads=1,
        bench=AgentSettings(min_time_s=60, min_runs=5, warmup=2),
        ssh=SSHOptions(
            known_hosts=str(own_sshd.known_hosts),
            ssh_config=None,
            retries=2,
            retry_delay_s=0.1,
            connect_timeout=3,
            allow_agent=False,
        ),
    )
    caplog.set_level(logging.WARNING)
    with pytest.raises(TargetConnectionError, match="dropped"):
        run_deploy(cfg, progress)
    for t in timers:
        t.join()
    assert "could not remove remote directory" in caplog.text  # cleanup was attempted
    out = tmp_path / "out"
    assert not (out / "report.json").exists()
    assert not [p for p in os.listdir(out) if ".tmp" in p or ".part" in p]


def test_deploy_into_a_used_out_refused_or_replaced_only_on_success(tmp_path, capsys, monkeypatch):
    """A used --out is refused without --overwrite; with it, a failed deploy leaves the old
    files untouched (outputs are staged) and a successful one replaces them all."""
    import edgeprune.workflows.deploy as deploy

    out = tmp_path / "out"
    argv = ["deploy", "resnet8", "--device", "local", "--threads", "1", "--out", str(out), *FAST]
    assert main(argv) == 0

    def files() -> dict:
        return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}

    before = files()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds files" in err and "--overwrite" in err and "[deploy] load" not in err
    assert files() == before

    def broken_benchmark(*args, **kwargs):
        raise deploy.UserError("the device went away")

    monkeypatch.setattr(deploy, "_benchmark", broken_benchmark)
    assert main([*argv, "--overwrite"]) == 2
    assert "the device went away" in capsys.readouterr().err
    assert files() == before  # no new model.onnx beside the old report
    monkeypatch.undo()

    (out / "stray.txt").write_text("from the earlier deploy")
    assert main([*argv, "--overwrite"]) == 0
    assert "stray.txt" not in os.listdir(out) and (out / "report.json").is_file()
    assert not [p for p in os.listdir(out) if p.startswith(".staging")]
