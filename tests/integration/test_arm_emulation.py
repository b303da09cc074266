"""The ARM path end to end: deploy over a real loopback sshd to an emulated aarch64 python.

The device side runs ``edgeprune_agent.py`` with aarch64 ONNX Runtime under qemu-user
(Cortex-A53, the Pi 3B+'s core). Needs the root from ``deploy/emulate/make_aarch64_root.sh``
and ``EDGEPRUNE_AARCH64_PYTHON`` pointing at its ``python-aarch64``. Timings under emulation
mean nothing; this proves the agent, the model and the report on aarch64.
"""

from __future__ import annotations

import json
import os

import pytest

from edgeprune.cli.main import main

AARCH64_PYTHON = os.environ.get("EDGEPRUNE_AARCH64_PYTHON", "")

pytestmark = [
    pytest.mark.ssh,
    pytest.mark.aarch64,
    pytest.mark.skipif(
        not os.access(AARCH64_PYTHON, os.X_OK),
        reason="no emulated aarch64 root: run deploy/emulate/make_aarch64_root.sh ROOT and set "
        "EDGEPRUNE_AARCH64_PYTHON=ROOT/python-aarch64",
    ),
]


def test_deploy_pruned_model_to_emulated_pi(sshd, tmp_path, uniform_pruned):
    uniform_pruned(tmp_path / "pruned", "resnet20", 0.5)
    out = tmp_path / "out"
    rc = main(
        [
            "deploy",
            str(tmp_path / "pruned"),
            "--device",
            "rpi3",
            "--host",
            sshd.host,
            "--key",
            str(sshd.client_key),
            "--known-hosts",
            str(sshd.known_hosts),
            "--ssh-config",
            "/dev/null",
            "--remote-python",
            AARCH64_PYTHON,
            "--compare-dense",
            "--out",
            str(out),
            "--min-time",
            "0.5",
            "--min-runs",
            "3",
            "--warmup",
            "1",
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    ident = report["device_identity"]
    assert ident["machine"] == "aarch64" and "qemu-emulated" in ident["board"]
    assert report["runtime"] == "ort" and report["latency_ms_median"] > 0
    assert report["dense_latency_ms_median"] > 0 and report["speedup"] > 0
    assert report["predicted_latency_ms"] > 0  # from the rpi3 table
    # aarch64 kernels computed torch's outputs
    assert report["device_check_max_abs_diff"] <= 1e-4 * report["device_check_output_scale"]
    assert not [n for n in report["notes"] if "outputs on the device" in n]
    assert not [p for p in os.listdir(sshd.remote_tmp) if p.startswith("edgeprune-")]
