"""`edgeprune prune --resume` never runs code from a crafted method_state.pt (issue #14)."""

from __future__ import annotations

from pathlib import Path

import torch

from edgeprune.cli.main import main

# AAP on the FLOPs target without data: a quick real run that checkpoints its state
ARGS = ["prune", "--model", "resnet8", "--method", "aap", "--flops-budget", "0.6x"]
ARGS += ["--opt", "max_rounds=1"]


class Payload:
    """Unpickling this creates ``marker``: what a crafted state file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_resume_refuses_a_crafted_method_state(tmp_path, capsys):
    out, marker = tmp_path / "run", tmp_path / "payload-ran"
    main([*ARGS, "--out", str(out)])
    state = torch.load(out / "method_state.pt", weights_only=True)  # ours is plain
    torch.save({**state, "config": Payload(marker)}, out / "method_state.pt")
    capsys.readouterr()
    assert main([*ARGS, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edgeprune: error: ") and "without --resume" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not marker.exists()
