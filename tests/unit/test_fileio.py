import os
import stat

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
