"""SSHTarget against a real loopback OpenSSH server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edgeprune.targets import TargetError
from edgeprune.targets.ssh import SSHOptions, SSHTarget

pytestmark = pytest.mark.ssh


def _target(server, **kw) -> SSHTarget:
    key = kw.pop("key", str(server.client_key))
    kw.setdefault("known_hosts", str(server.known_hosts))
    opts = SSHOptions(ssh_config=None, retries=1, connect_timeout=10, allow_agent=False, **kw)
    return SSHTarget(server.host, opts, key=key)


def test_put_get_run_and_quoting(sshd, tmp_path, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(300_000))
    with _target(sshd) as t:
        work = t.mkdtemp()
        assert work.startswith(str(sshd.remote_tmp))
        remote = f"{work}/a file; with 'quotes'.bin"
        t.put(str(src), remote)
        back = tmp_path / "back.bin"
        t.get(remote, str(back))
        assert back.read_bytes() == src.read_bytes()
        nasty = "x; echo PWNED $HOME `id` 'q' \"d\""
        res = t.run(["printf", "%s", nasty])
        assert res.ok and res.stdout == nasty
        res = t.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (res.rc, res.stdout.strip(), res.stderr.strip()) == (3, "out", "err")
        t.cleanup(work)
        assert not os.path.exists(work)
    key_body = sshd.client_key.read_text().splitlines()[1]
    assert "127.0.0.1" in caplog.text and key_body not in caplog.text  # no key material logged


def test_unknown_host_key_refused_unless_trusted(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TargetError, match=r"is not in .*known_hosts.*--trust-host-key"):
        _target(sshd, known_hosts=str(empty)).connect()
    with _target(sshd, known_hosts=str(empty), trust_host_key=True) as t:
        assert t.run(["true"]).ok


def test_changed_host_key_refused(sshd, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = (tmp_path / "other.pub").read_text().split()[:2]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    with pytest.raises(TargetError, match="CHANGED"):
        _target(sshd, known_hosts=str(kh)).connect()


def test_wrong_key_refused(sshd, tmp_path):
    wrong = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    with pytest.raises(TargetError, match="authentication to .* failed") as info:
        _target(sshd, key=str(wrong)).connect()
    assert "PRIVATE KEY" not in str(info.value)


def test_connection_refused_is_one_sentence_after_retries(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = SSHOptions(ssh_config=None, retries=2, retry_delay_s=0.05, connect_timeout=2)
    with pytest.raises(TargetError, match="cannot connect to"):
        SSHTarget(f"nobody@127.0.0.1:{port}", opts).connect()


def test_remote_agent_failure_is_clear_and_cleans_up(sshd, tmp_path):
    from edgeprune.runtimes import AgentSettings, time_models

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    with _target(sshd) as t:
        with pytest.raises(TargetError, match="device agent failed on"):
            time_models(
                t,
                [str(bad)],
                "ort",
                AgentSettings(min_time_s=0.1, min_runs=2, warmup=1),
                sys.executable,
            )
    assert [p for p in os.listdir(sshd.remote_tmp) if p.startswith("edgeprune-")] == []


def test_run_agent_over_ssh(sshd, tmp_path):
    import torch

    from edgeprune.export import export_onnx
    from edgeprune.runtimes import AgentSettings, time_models

    paths = []
    for i, width in enumerate((8, 16)):
        m = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        paths.append(export_onnx(m, (3, 16, 16), str(tmp_path / f"m{i}.onnx")).path)
    st = AgentSettings(min_time_s=0.1, min_runs=5, warmup=2, interleave=True, batch=2)
    with _target(sshd) as t:
        rows = time_models(t, paths, "ort", st, sys.executable)
    assert [r["model"] for r in rows] == ["m0.onnx", "m1.onnx"]
    assert all(r["batch"] == 2 and r["n_runs"] >= 5 and r["interleaved"] for r in rows)
    assert [p for p in os.listdir(sshd.remote_tmp) if p.startswith("edgeprune-")] == []
