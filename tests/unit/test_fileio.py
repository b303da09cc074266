import os
import stat
from pathlib import Path

import pytest
import torch

from edgeprune.fileio import atomic_write, atomic_write_text
from edgeprune.surgery import Plan, save_pruned


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_text_lands_whole_with_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write_text(tmp_path / "sub" / "a.json", "{}\n")
    finally:
        os.umask(old)
    assert path.read_text() == "{}\n"
    assert _mode(path) == 0o640
    assert os.listdir(path.parent) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def boom(tmp: str) -> None:
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_the_temp_name_keeps_the_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "plot.png", lambda tmp: (seen.append(tmp), open(tmp, "wb").close()))
    assert seen[0].endswith(".png") and seen[0] != str(tmp_path / "plot.png")


def test_pruned_weights_are_readable_by_the_group(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    old = os.umask(0o022)
    try:
        out = save_pruned(tmp_path, "tiny", model, Plan(keep={}))
    finally:
        os.umask(old)
    assert _mode(out / "weights.pt") == 0o644


# --- output locations ---------------------------------------------------------------------


def test_writable_checks_name_the_problem(tmp_path):
    from edgeprune.errors import UserError
    from edgeprune.fileio import check_writable_dir, check_writable_file

    f = tmp_path / "f"
    f.write_text("x")
    assert check_writable_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert not (tmp_path / "new").exists()  # a check creates nothing
    assert check_writable_file(tmp_path / "new" / "r.json").name == "r.json"
    with pytest.raises(UserError, match="is a file, not a directory"):
        check_writable_dir(f)
    with pytest.raises(UserError, match="which is a file"):
        check_writable_dir(f / "sub" / "run")
    with pytest.raises(UserError, match="which is a file"):
        check_writable_file(f / "r.json", "--json")
    with pytest.raises(UserError, match="--json .* is a directory"):
        check_writable_file(tmp_path, "--json")
    assert sorted(os.listdir(tmp_path)) == ["f"]  # no probe file left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0500 directory")
def test_a_read_only_dir_is_refused(tmp_path):
    from edgeprune.errors import UserError
    from edgeprune.fileio import check_writable_dir

    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(UserError, match="cannot write in"):
        check_writable_dir(ro / "run")


def test_prepare_out_dir_refuses_a_used_dir_unless_resume_or_overwrite(tmp_path):
    from edgeprune.errors import UserError
    from edgeprune.fileio import prepare_out_dir

    out = prepare_out_dir(tmp_path / "run")
    assert out.is_dir()
    prepare_out_dir(out)  # empty: fine
    (out / "report.json").write_text("{}")
    with pytest.raises(UserError, match="--resume to continue it, --overwrite"):
        prepare_out_dir(out)
    with pytest.raises(UserError, match="pass --overwrite to replace it"):
        prepare_out_dir(out, can_resume=False)
    with pytest.raises(UserError, match="pick one"):
        prepare_out_dir(out, resume=True, overwrite=True)
    assert prepare_out_dir(out, resume=True) == prepare_out_dir(out, overwrite=True) == out
    assert (out / "report.json").read_text() == "{}"  # preparing clears nothing


def test_clear_run_dir_only_clears_a_run(tmp_path):
    from edgeprune.errors import UserError
    from edgeprune.fileio import clear_run_dir

    (tmp_path / "mine.txt").write_text("x")
    with pytest.raises(UserError, match="does not look like an edgeprune output"):
        clear_run_dir(tmp_path, ("report.json",))
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "recovery").mkdir()
    clear_run_dir(tmp_path, ("report.json",))
    assert os.listdir(tmp_path) == []


def test_staged_files_move_in_report_last_and_stale_ones_go(tmp_path, monkeypatch):
    from edgeprune.fileio import commit_staged, staging

    out = tmp_path / "run"
    out.mkdir()
    for name in ("report.json", "diagnostics.json", "recovery.pt"):
        (out / name).write_text("old")
    moved = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: (moved.append(Path(b).name), real_replace(a, b))
    )
    with staging(out) as stage:
        assert stage.parent == out and stage.name.startswith(".staging-")
        (stage / "report.json").write_text("new")
        (stage / "model.onnx").write_text("new")
        commit_staged(stage, out, stale=("diagnostics.json", "report.json"))
    assert moved == ["model.onnx", "report.json"]
    assert sorted(os.listdir(out)) == ["model.onnx", "recovery.pt", "report.json"]
    assert (out / "report.json").read_text() == "new"


def test_a_failure_while_staged_leaves_out_as_it_was(tmp_path):
    from edgeprune.fileio import commit_staged, staging

    (tmp_path / "report.json").write_text("old")
    with pytest.raises(RuntimeError), staging(tmp_path) as stage:
        (stage / "model.onnx").write_text("half")
        raise RuntimeError("failed before the commit")
    assert os.listdir(tmp_path) == ["report.json"]
    with staging(tmp_path) as stage:
        (stage / "model.onnx").write_text("new")
        commit_staged(stage, tmp_path, clear=True)  # --overwrite: replace it all
    assert os.listdir(tmp_path) == ["model.onnx"]
