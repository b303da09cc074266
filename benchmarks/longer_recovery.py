"""Longer recovery for the rows of a bench run: does the gap to dense close with more epochs?

Every finished row of the chosen budgets (and the dense row) continues from its model after
the standard 1-epoch recovery with a second standard recovery of ``--epochs`` epochs (SGD
Nesterov 0.9, wd 5e-4, batch 128, one-cycle LR peaking at 0.02, crop + flip, all 50k
training images), then top-1 on the test split. Every row gets the same extra training, so
the rows stay comparable. Writes ``longer_recovery_plus<N>.csv`` into the run dir, row by row;
an interrupted run resumes (per-epoch checkpoints under ``<row>/recovery-plus<N>/``)::

    python benchmarks/longer_recovery.py --run runs/r56-table --budgets 0.5x --epochs 4
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from dataclasses import replace

import torch

from edgeprune.errors import UserError
from edgeprune.fileio import atomic_write_text
from edgeprune.surgery import load_model
from edgeprune.train.checkpoint import load_checkpoint
from edgeprune.workflows.bench import standard_recovery
from edgeprune.workflows.recovery import DataSpec, build_loaders, recover_and_evaluate

FIELDS = [
    "method",
    "budget",
    "latency_ratio",
    "top1_1ep",
    "extra_epochs",
    "top1_longer",
    "gain",
    "train_s",
]


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="an `edgeprune bench` run dir (results.csv)")
    p.add_argument("--budgets", default="0.5x", help="which budget columns to extend")
    p.add_argument("--epochs", type=int, default=4, help="extra recovery epochs")
    p.add_argument("--data-root", help="default: the bench run's")
    p.add_argument("--limit-batches", type=int, help="smoke runs only")
    p.add_argument("--seed", type=int, default=1, help="a seed other than the first recovery's")
    return p


def read_csv(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: str, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def selected(results: list[dict], budgets: list[str]) -> list[dict]:
    """The dense row and every ok row whose budget label is one of ``budgets``."""
    return [
        r
        for r in results
        if r["method"] == "dense" or (r["status"] == "ok" and r["budget"].split()[0] in budgets)
    ]


def start_model(run: str, row: dict, bench: dict) -> tuple[torch.nn.Module, str]:
    """The row's model after the first recovery, and its run dir."""
    d = os.path.join(run, row.get("run_dir") or "runs/dense")
    if row["method"] != "dense":
        return load_model(d).model, d
    trust = bool(bench.get("trust_pickle", False))
    model = load_model(bench["model"], bench.get("weights"), trust_pickle=trust).model
    first = os.path.join(d, "recovery", "last.pt")
    if os.path.isfile(first):  # none when the bench ran with --recovery 0
        model.load_state_dict(load_checkpoint(first)["model"])  # weights_only: never code
    return model, d


def extend(args: argparse.Namespace, bench: dict, loaders, row: dict) -> dict:
    """Train one row's model ``args.epochs`` more epochs; its CSV row."""
    model, d = start_model(args.run, row, bench)
    tcfg = replace(standard_recovery(), epochs=args.epochs)
    ckpt = os.path.join(d, f"recovery-plus{args.epochs}")
    res = recover_and_evaluate(model, loaders, tcfg, ckpt, resume=True)
    before = float(row["top1"])
    return {
        "method": row["method"],
        "budget": row["budget"],
        "latency_ratio": row["latency_ratio"],
        "top1_1ep": before,
        "extra_epochs": args.epochs,
        "top1_longer": res.top1,
        "gain": res.top1 - before,
        "train_s": round(res.train_s, 1),
    }


def main(args: argparse.Namespace) -> list[dict]:
    results = read_csv(os.path.join(args.run, "results.csv"))
    try:
        with open(os.path.join(args.run, "bench.json")) as fh:
            bench = json.load(fh)["config"]
    except (OSError, ValueError, KeyError):
        results = []
    if not results:
        raise UserError(f"{args.run} holds no results.csv and bench.json from `edgeprune bench`")
    data_root = args.data_root or bench.get("data_root")
    if not data_root:
        raise UserError("--data-root is needed (the bench run had none)")
    # the bench's test subset (with --limit-batches): the same images as the first recovery
    loaders = build_loaders(DataSpec(data_root, 128, args.limit_batches, args.seed))
    out = os.path.join(args.run, f"longer_recovery_plus{args.epochs}.csv")
    done = read_csv(out)
    have = {(r["method"], r["budget"]) for r in done}
    for row in selected(results, args.budgets.split(",")):
        if (row["method"], row["budget"]) in have:
            continue
        print(f"[longer] {row['method']} {row['budget']}: +{args.epochs} epochs", file=sys.stderr)
        done.append(extend(args, bench, loaders, row))
        write_rows(out, done)
    print(out)
    return done


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except UserError as e:
        sys.exit(f"error: {e}")
