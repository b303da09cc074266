"""One-step pruning-recovery on CIFAR ResNet-56 at a latency budget, next to L1.

    python benchmarks/onestep_resnet56.py --data-root ../shared/data/cifar10-jpeg \
        --weights ../shared/weights/cifar10/resnet56-4bfd9763.th --device xeon \
        --latency 0.5 --epochs 10 --recover-epochs 15 --mimic-epochs 3 --out runs/onestep

Part 1: top-1 on the test split (test-a) after reconstruction alone and after ``--epochs``
of CE fine-tuning, next to L1 (no recovery, and the same fine-tune). Part 2 (the paper's
Figure 5a): the four mimic losses on a short reconstruction (``--mimic-epochs``), same
pruned structure (``--no-verify``: the plan comes from the latency table alone).
"""

from __future__ import annotations

import argparse
import json
import os


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--model", default="resnet56")
    p.add_argument("--device", default="xeon")
    p.add_argument("--latency", type=float, default=0.5, help="latency budget, ratio of dense")
    p.add_argument("--epochs", type=int, default=10, help="CE fine-tune epochs (both methods)")
    p.add_argument("--lr", type=float, default=0.01, help="CE fine-tune learning rate")
    p.add_argument("--recover-epochs", type=int, default=15, help="one-step reconstruction")
    p.add_argument("--mimic-epochs", type=int, default=3, help="reconstruction, Figure 5a")
    p.add_argument("--limit-batches", type=int, help="cap batches in every phase (smoke)")
    p.add_argument("--skip", choices=["main", "mimic"], action="append", default=[])
    p.add_argument("--out", default="runs/onestep_resnet56")
    return p


def _run(args, name: str, method: str, epochs: int, verify: bool, **opts) -> dict:
    from edgeprune.budget import Budget
    from edgeprune.workflows.prune import PruneConfig, run_prune

    cfg = PruneConfig(
        model=args.model,
        out=os.path.join(args.out, name),
        method=method,
        budget=Budget(latency_ratio=args.latency, device=args.device),
        weights=args.weights,
        device=args.device,
        data_root=args.data_root,
        epochs=epochs,
        lr=args.lr,
        limit_batches=args.limit_batches,
        verify=verify,
        method_options=opts,
        overwrite=True,  # a benchmark re-run replaces its run dir
    )
    return run_prune(cfg).to_dict()


def _row(name: str, rep: dict) -> dict:
    rec = rep.get("method_recovery") or {}
    return {
        "run": name,
        "top1_dense": rep["dense"]["top1"],
        "top1_before_finetune": rec.get("top1_before_finetune"),
        "top1_final": rep["pruned"]["top1"],
        "latency_ratio": rep.get("latency_ratio"),
        "flops_ratio": rep["pruned"]["flops"] / rep["dense"]["flops"],
        "budget_met": rep["budget_met"],
        "mimic_loss": (rec.get("mimic_loss_before"), rec.get("mimic_loss_after")),
    }


def main(args: argparse.Namespace) -> int:
    rows = []
    if "main" not in args.skip:
        rows.append(
            _row(
                "onestep",
                _run(
                    args,
                    "onestep",
                    "onestep",
                    args.epochs,
                    True,
                    recover_epochs=args.recover_epochs,
                ),
            )
        )
        rows.append(_row("l1_no_recovery", _run(args, "l1_0", "l1", 0, True)))
        rows.append(_row("l1_finetune", _run(args, "l1", "l1", args.epochs, True)))
    if "mimic" not in args.skip:
        for loss in ("mse", "lasso", "kl", "js"):
            rep = _run(
                args,
                f"mimic_{loss}",
                "onestep",
                0,
                False,
                mimic=loss,
                recover_epochs=args.mimic_epochs,
            )
            rows.append(_row(f"mimic_{loss}", rep))
    print(
        "| run | dense top-1 | after reconstruction | final top-1 | latency ratio | FLOPs ratio "
        "| budget met | mimic loss before -> after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["run"]] + [_fmt(r[k]) for k in list(r)[1:-1]]
        cells.append(f"{_fmt(r['mimic_loss'][0])} -> {_fmt(r['mimic_loss'][1])}")
        print("| " + " | ".join(cells) + " |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 0


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
