"""Files from users are loaded without running their code (issue #14, parts 1 and 3).

A crafted checkpoint carries a ``__reduce__`` payload that would create a marker file when
unpickled; every entry point must refuse it in one sentence and leave no marker. Downloads
are cached per full URL, checked against ``#sha256=``, and never kept when they fail.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.cli.main import main
from edgeprune.errors import UserError
from edgeprune.models import create_model, load_weights_
from edgeprune.models.weights import fetch_weights
from edgeprune.report.rundirs import training_history
from edgeprune.train import TrainConfig, load_checkpoint, save_atomic, train
from edgeprune.train.checkpoint import rng_state

CIFAR_WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "cifar10"


class Payload:
    """Unpickling this creates ``marker``: what a crafted checkpoint could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload-ran"


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))


def linear(seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(3, 2)


def crafted(path: Path, marker: Path, state: dict | None = None) -> Path:
    """A checkpoint whose state_dict is fine but which also carries the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state or linear(0).state_dict(), "extra": Payload(marker)}, path)
    return path


def cached_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "cache" / "weights"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_sentence_error(capsys) -> str:
    """The error line (progress lines may come before it): one line, no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("edgeprune: error: ")]
    assert errors == err[-1:] and "Traceback" not in "\n".join(err), err
    return err[-1]


# -- the payload is real ---------------------------------------------------------------


def test_the_payload_runs_under_a_full_unpickle(tmp_path, marker):
    path = crafted(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()  # so the tests below prove something when it stays absent


# -- --weights: load_weights_ and the CLI ----------------------------------------------


def test_crafted_weights_are_refused_and_run_nothing(tmp_path, marker):
    path = crafted(tmp_path / "evil.pt", marker)
    with pytest.raises(UserError, match="--trust-pickle") as err:
        load_weights_(linear(1), str(path))
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="--trust-pickle"):
        load_weights_(linear(1), path.as_uri())
    assert not marker.exists()
    assert cached_files(tmp_path) == []  # the refused download is not kept


def test_trust_pickle_loads_a_legacy_checkpoint(tmp_path):
    import argparse

    path = tmp_path / "legacy.pt"
    torch.save({"state_dict": linear(0).state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(UserError, match="--trust-pickle"):
        load_weights_(linear(1), str(path))
    model = load_weights_(linear(1), str(path), trust_pickle=True)
    assert torch.equal(model.weight, linear(0).weight)


@pytest.mark.parametrize("cmd", ["eval", "prune"])
@pytest.mark.parametrize("as_url", [False, True])
def test_cli_refuses_crafted_weights(tmp_path, marker, capsys, cmd, as_url):
    model = create_model("resnet8")
    path = crafted(tmp_path / "evil.th", marker, model.state_dict())
    spec = path.as_uri() if as_url else str(path)
    argv = [cmd, "--model", "resnet8", "--weights", spec]
    if cmd == "eval":
        argv += ["--data-root", str(tmp_path)]
    else:
        argv += ["--flops-budget", "0.5x", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "--trust-pickle" in one_sentence_error(capsys)
    assert not marker.exists()


@pytest.mark.skipif(not CIFAR_WEIGHTS.is_dir(), reason=f"no weights at {CIFAR_WEIGHTS}")
def test_the_pretrained_cifar_checkpoints_are_plain():
    files = sorted(CIFAR_WEIGHTS.glob("*.th"))
    assert files
    for f in files:
        torch.load(f, map_location="cpu", weights_only=True)  # raises if not plain
    name = files[0].name.split("-")[0]
    load_weights_(create_model(name), f"{files[0]}#sha256={sha256(files[0])[:16]}")


# -- the download cache ----------------------------------------------------------------


def test_urls_with_the_same_file_name_get_their_own_cache_entries(tmp_path):
    a, b = tmp_path / "u1" / "w.th", tmp_path / "u2" / "w.th"
    for path, seed in ((a, 0), (b, 1)):
        path.parent.mkdir()
        torch.save(linear(seed).state_dict(), path)
    got_a, got_b = fetch_weights(a.as_uri()), fetch_weights(b.as_uri())
    assert got_a != got_b and got_a.name == got_b.name == "w.th"
    assert torch.equal(load_weights_(linear(5), b.as_uri()).weight, linear(1).weight)
    assert torch.equal(load_weights_(linear(5), a.as_uri()).weight, linear(0).weight)
    assert len(cached_files(tmp_path)) == 2


def test_sha256_is_checked_and_a_mismatch_is_not_cached(tmp_path):
    src = tmp_path / "w.th"
    torch.save(linear(0).state_dict(), src)
    wrong = "0" * 64
    with pytest.raises(UserError, match="not the expected") as err:
        load_weights_(linear(1), f"{src.as_uri()}#sha256={wrong}")
    assert "\n" not in str(err.value)
    assert cached_files(tmp_path) == []
    with pytest.raises(UserError, match="not the expected"):
        load_weights_(linear(1), f"{src}#sha256={wrong}")  # a local path too
    with pytest.raises(UserError, match="hex digits"):
        load_weights_(linear(1), f"{src}#sha256=xyz")
    digest = sha256(src)
    for spec in (f"{src.as_uri()}#sha256={digest}", f"{src}#sha256={digest[:8].upper()}"):
        assert torch.equal(load_weights_(linear(1), spec).weight, linear(0).weight)
    assert len(cached_files(tmp_path)) == 1


def test_a_cached_file_of_other_content_is_fetched_again_for_a_pinned_hash(tmp_path):
    src = tmp_path / "w.th"
    torch.save(linear(0).state_dict(), src)
    load_weights_(linear(1), src.as_uri())  # cached without a hash
    torch.save(linear(2).state_dict(), src)  # the URL now serves other content
    model = load_weights_(linear(1), f"{src.as_uri()}#sha256={sha256(src)}")
    assert torch.equal(model.weight, linear(2).weight)
    assert len(cached_files(tmp_path)) == 1


def test_a_corrupt_download_is_not_kept(tmp_path):
    src = tmp_path / "w.th"
    src.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot be read|could not read"):
        load_weights_(linear(1), src.as_uri())
    assert cached_files(tmp_path) == []
    torch.save(linear(0).state_dict(), src)  # fixed at the source: the next run fetches it
    assert torch.equal(load_weights_(linear(1), src.as_uri()).weight, linear(0).weight)


def test_a_failed_download_leaves_nothing(tmp_path):
    with pytest.raises(UserError, match="could not download"):
        load_weights_(linear(1), (tmp_path / "missing.th").as_uri())
    assert cached_files(tmp_path) == []


# -- edgeprune report: recovery/last.pt --------------------------------------------------


def _report_run_dir(path: Path) -> Path:
    (path / "recovery").mkdir(parents=True)
    report = {
        "model": "resnet8",
        "method": "l1",
        "device": None,
        "budget": {"flops_ratio": 0.5},
        "dense": {"params": 100, "flops": 400, "top1": 0.9},
        "pruned": {"params": 50, "flops": 200, "top1": 0.8},
        "layers": [{"layer": "conv1", "before": 8, "after": 4}],
    }
    (path / "report.json").write_text(json.dumps(report))
    return path


def test_report_refuses_a_crafted_recovery_checkpoint(tmp_path, marker, capsys):
    pytest.importorskip("matplotlib")
    run = _report_run_dir(tmp_path / "run")
    torch.save({"history": [{"epoch": 1}], "x": Payload(marker)}, run / "recovery" / "last.pt")
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 2
    assert "could run code" in one_sentence_error(capsys)
    assert not marker.exists()


def test_report_reads_the_history_of_a_plain_checkpoint(tmp_path):
    run = _report_run_dir(tmp_path / "run")
    save_atomic({"history": [{"epoch": 1, "top1": 0.5}]}, run / "recovery" / "last.pt")
    assert training_history(str(run)) == [{"epoch": 1, "top1": 0.5}]
    (run / "recovery" / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    assert training_history(str(run)) == []  # an unreadable file only loses its curve


# -- the train loop's checkpoints ----------------------------------------------------------


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 8, 8, generator=g), torch.arange(16) % 2
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=g)


def test_train_checkpoints_are_plain_and_a_crafted_one_is_refused(tmp_path, marker):
    cfg = TrainConfig(epochs=1, lr=0.01, progress=False)
    model = tiny()
    model(torch.zeros(1, 3, 8, 8))  # materialise the lazy layer
    train(model, _loader(), cfg, ckpt_dir=tmp_path / "ok")
    ckpt = torch.load(tmp_path / "ok" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    crafted(tmp_path / "bad" / "last.pt", marker)
    with pytest.raises(UserError, match="rerun without --resume") as err:
        train(model, _loader(), cfg, ckpt_dir=tmp_path / "bad", resume=True)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_rng_state_is_saved_as_plain_types(tmp_path):
    save_atomic({"rng": rng_state()}, tmp_path / "rng.pt")
    torch.load(tmp_path / "rng.pt", weights_only=True)  # numpy's state as a tuple + tensor
    assert load_checkpoint(tmp_path / "rng.pt")["rng"]["numpy"][0] == "MT19937"


# -- method state (prune --resume) -------------------------------------------------------


def test_paam_state_is_plain(tmp_path):
    from edgeprune.methods import Checkpointer, MethodContext, get_method
    from edgeprune.surgery import prunable_layers

    path = tmp_path / "method_state.pt"
    ckpt = Checkpointer(lambda s: save_atomic(s, path), lambda: load_checkpoint(path))
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(8, 3, 32, 32, generator=g), torch.arange(8) % 10)
    ctx = MethodContext(
        torch.zeros(1, 3, 32, 32),
        train_loader=DataLoader(data, batch_size=8),
        limit_batches=1,
        log=lambda _m: None,
        checkpoint=ckpt,
    )
    model = create_model("resnet8")
    opts = dict(cycles=1, an_epochs=1, cnn_epochs=1, device="cpu")
    get_method("paam", **opts).score(model, prunable_layers(model, (3, 32, 32)), ctx)
    state = torch.load(path, weights_only=True)
    assert state["paam"] == 1 and state["done_cycles"] == 1
