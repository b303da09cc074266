"""`edgeprune device setup` through the loopback sshd: a venv, the runtime, a host record.

Offline: the wheels come from a local folder (``EDGEPRUNE_TEST_WHEELS``; ``.ci/run`` fills
it with numpy, onnxruntime and their dependencies for this Python).
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path

import pytest

from edgeprune.cli.main import main

pytestmark = pytest.mark.ssh

WHEELS = os.environ.get("EDGEPRUNE_TEST_WHEELS", "")
NEEDS_WHEELS = pytest.mark.skipif(
    not (WHEELS and os.path.isdir(WHEELS)),
    reason="set EDGEPRUNE_TEST_WHEELS to a folder made by: pip download -d DIR "
    "--only-binary=:all: numpy onnxruntime",
)


def _ssh_flags(sshd) -> list[str]:
    return [
        "--host",
        sshd.host,
        "--key",
        str(sshd.client_key),
        "--known-hosts",
        str(sshd.known_hosts),
    ]


@NEEDS_WHEELS
def test_setup_installs_the_runtime_and_becomes_the_default_python(
    sshd, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    venv = tmp_path / "device" / "venv"
    rc = main(
        [
            "device",
            "setup",
            *_ssh_flags(sshd),
            "--remote-python",
            sys.executable,
            "--venv",
            str(venv),
            "--wheels",
            WHEELS,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    python = venv / "bin" / "python"
    assert python.exists()

    records = list((tmp_path / "home" / "devices").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["host"] == f"{sshd.user}@127.0.0.1:{sshd.port}"
    assert record["python"] == str(python) and record["runtime"] == "ort"
    ident = record["identity"]
    assert ident["machine"] and ident["cores"] >= 1 and isinstance(ident["isa"], list)
    assert ident["versions"]["onnxruntime"] == metadata.version("onnxruntime")
    assert ident["python_executable"] == str(python)
    capsys.readouterr()

    # a second setup reuses the venv; `device list` shows the host
    assert main(["device", "list"]) == 0
    assert record["host"] in capsys.readouterr().out

    # deploy without --remote-python runs the agent with the provisioned interpreter
    out = tmp_path / "deploy"
    rc = main(
        [
            "deploy",
            "resnet8",
            "--device",
            "local",
            *_ssh_flags(sshd),
            "--out",
            str(out),
            "--min-time",
            "0.1",
            "--min-runs",
            "3",
            "--warmup",
            "1",
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["device_identity"]["python_executable"] == str(python)


def test_setup_refuses_a_wheels_folder_without_wheels(tmp_path, capsys):
    empty = tmp_path / "wheels"
    empty.mkdir()
    rc = main(["device", "setup", "--host", "nobody@127.0.0.1:1", "--wheels", str(empty)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no .whl files" in err[0]


def test_setup_needs_a_host(capsys):
    assert main(["device", "setup"]) == 2
    assert "needs --host" in capsys.readouterr().err


def test_setup_names_a_missing_interpreter(sshd, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    rc = main(
        [
            "device",
            "setup",
            *_ssh_flags(sshd),
            "--remote-python",
            str(Path(tmp_path) / "no-such-python"),
            "--venv",
            str(tmp_path / "venv"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not run on" in err and "Traceback" not in err
    assert not (tmp_path / "home" / "devices").exists()
