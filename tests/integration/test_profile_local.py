"""`edgeprune profile` on this host with the real ONNX Runtime: a tiny model end to end."""

import json

import pandas as pd
import pytest

pytest.importorskip("onnxruntime")

from edgeprune.cli.main import main  # noqa: E402
from edgeprune.cost.latency import predict_latency  # noqa: E402
from edgeprune.cost.latency_table import validate_table_frame  # noqa: E402
from edgeprune.devices.profile import load_profile  # noqa: E402
from edgeprune.models import create_model  # noqa: E402


def test_profile_then_validate_tiny_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    out = tmp_path / "prof"
    args = [
        "profile",
        "--device",
        "local",
        "--model",
        "resnet8",
        "--out",
        str(out),
        "--threads",
        "1",
        "--min-time",
        "0.05",
        "--calibrate",
        "2",
        "--no-progress",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "measured" in text and "latency table measured on" in text
    prof = load_profile(out / "local.yaml")
    assert not prof.estimated and prof.identity.threads == 1
    df = pd.read_csv(prof.table_paths()[0])
    validate_table_frame(df)
    assert {"conv", "add", "pad_shortcut", "pool", "linear"} <= set(df["op"])
    # microsecond ops (add, linear) may net to 0 after the baseline is subtracted on a
    # loaded machine; the convolutions, where the time goes, must be measured
    conv = df[df["op"] == "conv"]
    assert (conv["latency_ms_median"] > 0).mean() > 0.8
    assert (df["latency_ms_median"] > 0).mean() > 0.5
    assert "resnet8" in prof.calibration and prof.calibration["resnet8"].n >= 2
    n_calibration = prof.calibration["resnet8"].n
    pred = predict_latency(create_model("resnet8"), prof)
    assert 0.005 < pred.total_ms < 50

    # a second run resumes from the finished table: nothing is measured again
    again = [a if a != "2" else "0" for a in args]
    assert main(again) == 0
    assert "measured 0 configurations" in capsys.readouterr().out
    assert load_profile(out / "local.yaml").calibration["resnet8"].n == n_calibration  # kept

    js = tmp_path / "fid.json"
    val = [
        "profile",
        "--validate",
        "--device",
        "local",
        "--model",
        "resnet8",
        "--out",
        str(out),
        "--samples",
        "2",
        "--threads",
        "1",
        "--min-time",
        "0.05",
        "--json",
        str(js),
        "--no-progress",
    ]
    assert main(val) == 0
    text = capsys.readouterr().out
    assert "median |err|" in text and "within 10%" in text
    doc = json.loads(js.read_text())
    assert doc["samples"] == 2
    for key in ("median_abs_err_pct", "p95_abs_err_pct", "within_5pct", "within_10pct"):
        assert isinstance(doc[key], (int, float))


def test_estimated_profile_says_so(tmp_path, capsys):
    out = tmp_path / "x.json"
    rc = main(
        [
            "profile",
            "--validate",
            "--device",
            "gpu",
            "--model",
            "resnet8",
            "--samples",
            "1",
            "--json",
            str(out),
        ]
    )
    err = capsys.readouterr()
    assert rc == 2 and "no latency table" in err.err


def test_unknown_model_is_user_error(capsys):
    assert main(["profile", "--device", "local", "--model", "nonet"]) == 2
    assert "unknown model 'nonet'" in capsys.readouterr().err


@pytest.mark.ssh
def test_profile_through_loopback_sshd(sshd, tmp_path, capsys):
    """The remote path: agent + micro models uploaded over a real sshd, timed there."""
    import sys

    out = tmp_path / "remote"
    (tmp_path / "none").write_text("")
    rc = main(
        ["profile", "--device", "local", "--model", "resnet8", "--out", str(out),
         "--host", sshd.host, "--key", str(sshd.client_key),
         "--known-hosts", str(sshd.known_hosts), "--ssh-config", str(tmp_path / "none"),
         "--remote-python", sys.executable, "--threads", "1", "--min-time", "0.05",
         "--calibrate", "0", "--no-progress"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    prof = load_profile(out / "local.yaml")
    assert prof.connection.kind == "ssh" and prof.connection.port == sshd.port
    assert not prof.connection.key_path or "PRIVATE" not in (out / "local.yaml").read_text()
    validate_table_frame(pd.read_csv(prof.table_paths()[0]))
