"""A run directory never silently mixes runs (issue #14): `prune`/`deploy` refuse a used
--out without --resume/--overwrite, --resume must match the saved config.json, final
outputs are staged and moved in at the end, and bad output paths fail before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgeprune.cli.main import main
from edgeprune.errors import UserError

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATA = SHARED / "data" / "cifar10-jpeg"
PRUNE = ["prune", "--model", "resnet20", "--flops-budget", "0.5x"]
# recovery training, as small as it gets
RECOVER = ["--data-root", str(DATA), "--epochs", "1", "--limit-batches", "2"]


def snapshot(d: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``d`` with its mtime and bytes: equal snapshots = untouched."""
    return {
        str(p.relative_to(d)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def one_sentence(err: str, *words: str) -> None:
    """``err`` holds one error line (no traceback) naming each of ``words``."""
    lines = [line for line in err.splitlines() if line.startswith("edgeprune: error: ")]
    assert "Traceback" not in err and len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, err)


@pytest.fixture
def done_run(tmp_path: Path) -> Path:
    """A finished structure-only prune run dir."""
    out = tmp_path / "run"
    assert main([*PRUNE, "--out", str(out)]) == 0
    return out


def test_rerun_without_resume_is_refused_before_any_work(done_run, capsys):
    before = snapshot(done_run)
    capsys.readouterr()
    # another budget (here an infeasible one) into the used --out: refused, nothing touched
    rc = main(["prune", "--model", "resnet20", "--params-budget", "10", "--out", str(done_run)])
    err = capsys.readouterr().err
    assert rc == 2
    one_sentence(err, "already holds files", "--resume", "--overwrite")
    assert snapshot(done_run) == before


def test_overwrite_clears_the_dir_and_runs(done_run):
    (done_run / "recovery").mkdir()
    (done_run / "recovery" / "last.pt").write_bytes(b"an earlier run's checkpoint")
    assert main([*PRUNE[:-1], "0.6x", "--out", str(done_run), "--overwrite"]) == 0
    report = json.loads((done_run / "report.json").read_text())
    assert report["budget"]["flops_ratio"] == 0.6
    assert not (done_run / "recovery").exists()  # cleared, not reused
    config = json.loads((done_run / "config.json").read_text())
    assert config["budget"] == {"flops_ratio": 0.6}
    assert not [p for p in os.listdir(done_run) if p.startswith(".staging")]


def test_overwrite_refuses_a_folder_that_is_no_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    rc = main([*PRUNE, "--out", str(tmp_path), "--overwrite"])
    assert rc == 2 and (tmp_path / "notes.txt").read_text() == "mine"
    one_sentence(capsys.readouterr().err, "does not look like an edgeprune output")


def test_resume_and_overwrite_together_are_refused(tmp_path, capsys):
    assert main([*PRUNE, "--out", str(tmp_path / "r"), "--resume", "--overwrite"]) == 2
    one_sentence(capsys.readouterr().err, "--resume", "--overwrite")


def test_resume_must_match_the_saved_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*PRUNE, *RECOVER, "--out", str(out)]) in (0, 1)
    first = json.loads((out / "report.json").read_text())
    assert (out / "recovery" / "last.pt").is_file() and (out / "config.json").is_file()
    before = snapshot(out)
    capsys.readouterr()
    # another lr: the old recovery checkpoint must not stand in for this run's training
    assert main([*PRUNE, *RECOVER, "--lr", "100", "--out", str(out), "--resume"]) == 2
    one_sentence(capsys.readouterr().err, "lr=0.01", "lr=100", "--overwrite")
    assert snapshot(out) == before
    # the same config continues (the finished recovery is resumed, not redone)
    assert main([*PRUNE, *RECOVER, "--out", str(out), "--resume"]) in (0, 1)
    again = json.loads((out / "report.json").read_text())
    assert again["pruned"]["top1"] == first["pruned"]["top1"]
    assert again["layers"] == first["layers"]


def test_resume_of_a_dir_without_config_is_refused(done_run, capsys):
    (done_run / "config.json").unlink()  # as an older edgeprune left it
    before = snapshot(done_run)
    capsys.readouterr()
    assert main([*PRUNE, "--out", str(done_run), "--resume"]) == 2
    one_sentence(capsys.readouterr().err, "no config.json")
    assert snapshot(done_run) == before


def test_recovery_resumes_only_on_resume(tmp_path, monkeypatch):
    import edgeprune.train

    calls = []
    monkeypatch.setattr(edgeprune.train, "train", lambda *a, **kw: calls.append(kw["resume"]))
    out = tmp_path / "run"
    assert main([*PRUNE, *RECOVER, "--out", str(out)]) in (0, 1)
    assert main([*PRUNE, *RECOVER, "--out", str(out), "--resume"]) in (0, 1)
    assert calls == [False, True]


def test_a_late_failure_leaves_the_previous_results_whole(done_run, monkeypatch, capsys):
    import edgeprune.export.onnx_export as onnx_export

    def broken_export(model, input_size, path, cfg):
        Path(path).write_bytes(b"half an ONNX file")
        raise UserError("export failed")

    before = snapshot(done_run)
    monkeypatch.setattr(onnx_export, "export_onnx", broken_export)
    assert main([*PRUNE, "--out", str(done_run), "--resume"]) == 2
    one_sentence(capsys.readouterr().err, "export failed")
    after = snapshot(done_run)
    assert {k: v for k, v in after.items() if k != "config.json"} == {
        k: v for k, v in before.items() if k != "config.json"
    }
    assert not [p for p in os.listdir(done_run) if p.startswith(".staging")]


@pytest.mark.parametrize("where", ["file", "under_file", "read_only"])
def test_a_bad_out_fails_before_any_work(tmp_path, capsys, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {"file": blocker, "under_file": blocker / "run", "read_only": tmp_path / "ro" / "run"}
    if where == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes into a 0500 directory")
        (tmp_path / "ro").mkdir(mode=0o500)
    rc = main([*PRUNE, "--out", str(out[where])])
    err = capsys.readouterr().err
    assert rc == 2
    one_sentence(err, "--out")
    assert "[prune] load" not in err  # refused before loading the model


def test_deploy_out_is_checked_first(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rc = main(["deploy", "resnet8", "--device", "local", "--out", str(blocker / "d")])
    err = capsys.readouterr().err
    assert rc == 2 and "[deploy] load" not in err
    one_sentence(err, "--out", "which is a file")


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--model", "resnet8", "--data-root", str(DATA), "--json", "{f}/r.json"],
        ["report", "{d}", "--out", "{f}/rep"],
        ["bench", "--model", "resnet8", "--flops-budgets", "0.5x", "--out", "{f}/b"],
        ["profile", "--device", "local", "--model", "resnet8", "--out", "{f}/p"],
    ],
    ids=["eval-json", "report-out", "bench-out", "profile-out"],
)
def test_other_outputs_are_checked_first(tmp_path, capsys, argv):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    argv = [a.format(f=blocker, d=tmp_path) for a in argv]
    assert main(argv) == 2
    one_sentence(capsys.readouterr().err, "which is a file")
