"""fp32 vs int8 post-training quantization (issue 18): top-1 on the test split through ONNX
Runtime and the int8/fp32 latency ratio timed interleaved (spinning off).

    python benchmarks/int8_ptq.py --model resnet56 \
        --weights ../shared/weights/cifar10/resnet56-4bfd9763.th \
        --data-root ../shared/data/cifar10-jpeg --threads 2 --out runs/int8-r56
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--weights")
    p.add_argument("--data-root")
    p.add_argument("--test-images", type=int, help="a seeded subset of the test split")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-time", type=float, default=10.0)
    p.add_argument("--halfwidth", type=float, default=0.015)
    p.add_argument("--max-time", type=float, default=60.0)
    p.add_argument("--calibration", default="minmax")
    p.add_argument("--calibration-images", type=int, default=256)
    p.add_argument("--out", required=True)
    return p


def main(args: argparse.Namespace) -> int:
    from edgeprune.fileio import atomic_write_text
    from edgeprune.workflows.int8_compare import CompareConfig, compare_int8

    cfg = CompareConfig(
        model=args.model,
        out=args.out,
        weights=args.weights,
        data_root=args.data_root,
        test_images=args.test_images,
        threads=args.threads,
        min_time_s=args.min_time,
        halfwidth=args.halfwidth,
        max_time_s=args.max_time,
        method=args.calibration,
        calibration_images=args.calibration_images,
    )
    res = compare_int8(cfg)
    res["command"] = " ".join(sys.argv)
    atomic_write_text(os.path.join(args.out, "int8_ptq.json"), json.dumps(res, indent=2) + "\n")
    iv = res.get("ratio_interval") or {}
    print(
        f"int8/fp32 latency {iv.get('median')} [{iv.get('lo')}, {iv.get('hi')}] "
        f"({iv.get('n_rounds')} rounds, {iv.get('stop')}); fp32 {res['fp32_ms_median']:.3f} ms, int8 "
        f"{res['int8_ms_median']:.3f} ms; load {res['load_before']} -> {res['load_after']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
