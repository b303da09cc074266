"""Fit -> predict -> validate with the real ONNX Runtime on a tiny model: `edgeprune profile`
fits the device's correction on its calibration variants, the predictor applies it, and
`profile --validate` reports the ratio headline at the top level with the machine load."""

import json
import math

import pytest

pytest.importorskip("onnxruntime")

from edgeprune.cli.main import main  # noqa: E402
from edgeprune.cost.correction import features  # noqa: E402
from edgeprune.cost.latency import LatencyPredictor  # noqa: E402
from edgeprune.devices.profile import load_profile  # noqa: E402
from edgeprune.models import create_model  # noqa: E402


def test_fit_predict_validate_tiny_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    out = tmp_path / "prof"
    common = ["--device", "local", "--model", "resnet8", "--out", str(out), "--threads", "1"]
    rc = main(["profile", *common, "--min-time", "0.05", "--calibrate", "9", "--no-progress"])
    assert rc == 0
    cap = capsys.readouterr()
    text = cap.out + cap.err
    prof = load_profile(out / "local.yaml")
    corr = prof.correction
    if corr is None:
        # 12 variants for 6 features: the fit is refused unless it beats the table on the
        # variants it did not see, and the run says why (never a silent over-fit)
        assert "no latency correction fitted:" in text, text
    else:
        assert "correction: fitted on" in text
        assert corr.models == ("resnet8",) and corr.n >= 4
        assert corr.fit_ratio_err_after_pct < corr.fit_ratio_err_before_pct
        pred = LatencyPredictor.from_model(create_model("resnet8").eval(), (3, 32, 32), prof)
        widths = {"layer1.0.conv1": 5, "layer2.0.conv1": 11}
        factor = math.exp(corr.log_factor(features(pred, widths)))
        assert pred.total_ms(widths) == pytest.approx(pred.base_ms(widths) * factor)

    js = tmp_path / "fid.json"
    rc = main(
        ["profile", "--validate", *common, "--samples", "3", "--min-time", "0.05",
         "--json", str(js), "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    doc = json.loads(js.read_text())
    for key in ("median_abs_err_pct", "within_10pct", "ratio_median_abs_err_pct"):
        assert isinstance(doc[key], (int, float))
    assert 0 <= doc["ratio_within_10pct"] <= 1 and doc["samples"] == 3
    assert len(doc["load"]) == 2 and doc["timing_note"] is None  # this host is not emulated
    assert doc["models"]["resnet8"]["correction"] is (corr is not None)
