"""DDP under a real torchrun with 2 CPU processes (gloo): both ranks end with identical weights.

The test launches this very file through ``python -m torch.distributed.run``; ``main`` is the
per-rank worker: fake CIFAR-10 image folder -> distributed loaders -> train() -> evaluate().
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def make_root(root: Path) -> None:
    """A tiny ImageFolder CIFAR-10 root: 8 train / 3 test 32x32 PNGs per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, per in (("train", 8), ("test", 3)):
        for c, name in enumerate(CLASSES):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per):
                img = rng.integers(0, 60, (32, 32, 3)) + 19 * c
                Image.fromarray(img.astype(np.uint8)).save(d / f"{i:04d}.png")


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def main(root: str, out: str) -> None:
    from edgeprune.data import build_loader
    from edgeprune.train import TrainConfig, cleanup, evaluate, init_distributed, train

    env = init_distributed("cpu")
    assert env.world_size == 2
    torch.set_num_threads(1)
    train_loader = build_loader(root, "train", 8, workers=0, distributed=True, seed=0)
    test_loader = build_loader(root, "test", 8, workers=0, distributed=True)
    cfg = TrainConfig(epochs=2, lr=0.05, progress=False)
    model = tiny_model()
    res = train(model, train_loader, cfg, val_loader=test_loader, ckpt_dir=out, env=env)
    final = evaluate(model, test_loader, env=env, progress=False)
    torch.save(model.state_dict(), Path(out) / f"rank{env.rank}.pt")
    info = {"steps": len(train_loader), "val_n": res.final.n, "n": final.n, "top1": final.top1}
    (Path(out) / f"rank{env.rank}.json").write_text(json.dumps(info))
    cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_end_identical(tmp_path):
    make_root(tmp_path / "data")
    out = tmp_path / "out"
    cmd = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"),
        *("--master_addr=127.0.0.1", f"--master_port={free_port()}"),
        *(__file__, str(tmp_path / "data"), str(out)),
    ]
    env = {
        **os.environ,
        "EDGEPRUNE_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",  # loopback only
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    start = tiny_model().state_dict()
    assert not torch.equal(a["0.weight"], start["0.weight"])  # it did train
    infos = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert infos[0]["steps"] == 5  # 80 train images / 2 ranks / batch 8, drop_last
    assert infos[0]["n"] == infos[1]["n"] == 30 == infos[0]["val_n"]  # exact shards, summed
    assert infos[0]["top1"] == infos[1]["top1"]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["world_size"] == 2
    torch.testing.assert_close(ckpt["model"]["0.weight"], a["0.weight"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
