#!/usr/bin/env python3
"""edgeprune device agent: time ONNX models with ONNX Runtime on this device.

Standalone: needs only Python 3.7+, numpy and onnxruntime (what a Raspberry Pi OS image
can have). It never imports edgeprune. Usage::

    python3 edgeprune_agent.py --threads 4 --batch 1 --min-time 2 dense.onnx pruned.onnx

prints one JSON line per model (latency mean/median/p90/p99 in ms, throughput in img/s,
n, runtime version, threads, device identity). ``--interleave`` alternates the models run
by run so that their ratio is measured under the same machine conditions; intra-op thread
spinning is then disabled, or the idle session's spinning threads steal the cores.

The timing routine here (``measure``) is the one routine edgeprune uses for every timing;
``edgeprune.bench`` re-exports it.
"""

import argparse
import json
import os
import platform
import sys
import time

__version__ = "1"


def summarize(times_s, batch=1):
    """Robust statistics of a list of per-run times in seconds."""
    import numpy as np

    ms = np.asarray(times_s, dtype=np.float64) * 1000.0
    median = float(np.median(ms))
    return {
        "latency_ms_mean": float(ms.mean()),
        "latency_ms_median": median,
        "latency_ms_p90": float(np.percentile(ms, 90)),
        "latency_ms_p99": float(np.percentile(ms, 99)),
        "latency_ms_min": float(ms.min()),
        "latency_ms_iqr": float(np.percentile(ms, 75) - np.percentile(ms, 25)),
        "throughput_ips": float(batch * 1000.0 / median) if median > 0 else float("inf"),
        "n_runs": int(ms.size),
    }


def measure(fns, warmup=10, min_time_s=1.0, min_runs=20, max_runs=100000, batch=1):
    """Time one or several callables; several are interleaved run by run.

    Each callable is warmed up ``warmup`` times, then all are run in turn until every one
    has at least ``min_runs`` runs and ``min_time_s`` seconds have passed in total (or
    ``max_runs`` is reached). Returns one ``summarize`` dict per callable.
    """
    single = callable(fns)
    fns = [fns] if single else list(fns)
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    clock = time.perf_counter
    start = clock()
    while True:
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            times[i].append(clock() - t0)
        n = len(times[0])
        if n >= max_runs or (n >= min_runs and clock() - start >= min_time_s):
            break
    stats = [summarize(t, batch) for t in times]
    return stats[0] if single else stats


def device_identity():
    """What this device is: host name, architecture, CPU model, cores."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key = line.split(":")[0].strip().lower()
                if key in ("model name", "hardware", "model"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def make_session(path, threads, provider="CPUExecutionProvider", opt_level="all",
                 spinning=True, optimized_path=None, profile_prefix=None):
    """An ONNX Runtime session configured the way edgeprune deploys."""
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[opt_level]
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    providers = [provider]
    if provider != "CPUExecutionProvider":
        providers.append("CPUExecutionProvider")
    return ort.InferenceSession(path, sess_options=so, providers=providers)


def _feed(session, batch):
    import numpy as np

    feeds = {}
    rng = np.random.default_rng(0)
    for inp in session.get_inputs():
        shape = [batch if not isinstance(d, int) or d <= 0 else d for d in inp.shape]
        if inp.shape and not isinstance(inp.shape[0], int):
            shape[0] = batch
        dtype = np.float16 if "float16" in inp.type else np.float32
        feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def run_models(paths, threads=1, batch=1, warmup=10, min_time_s=1.0, min_runs=20,
               interleave=False, provider="CPUExecutionProvider", opt_level="all"):
    """Benchmark ONNX models; returns one result dict per model, in order."""
    import onnxruntime as ort

    spinning = not (interleave and len(paths) > 1)
    sessions = [make_session(p, threads, provider, opt_level, spinning) for p in paths]
    calls = []
    for sess in sessions:
        feeds = _feed(sess, batch)
        calls.append(lambda s=sess, f=feeds: s.run(None, f))
    if interleave and len(calls) > 1:
        stats = measure(calls, warmup, min_time_s, min_runs, batch=batch)
    else:
        stats = [measure(c, warmup, min_time_s, min_runs, batch=batch) for c in calls]
    ident = device_identity()
    results = []
    for path, sess, st in zip(paths, sessions, stats):
        row = {"model": os.path.basename(path), "runtime": "ort",
               "runtime_version": ort.__version__, "provider": sess.get_providers()[0],
               "threads": int(threads), "batch": int(batch), "interleaved": bool(interleave),
               "agent_version": __version__, "device": ident}
        row.update(st)
        results.append(row)
    return results


def get_args_parser():
    p = argparse.ArgumentParser(description="Time ONNX models with ONNX Runtime on this device.")
    p.add_argument("models", nargs="+", help="ONNX model files")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs (total)")
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--interleave", action="store_true", help="alternate the models run by run")
    p.add_argument("--provider", default="CPUExecutionProvider")
    p.add_argument("--opt-level", default="all", choices=["disable", "basic", "extended", "all"])
    p.add_argument("--identity", action="store_true", help="print the device identity and exit")
    return p


def main(args):
    if args.identity:
        print(json.dumps(device_identity()))
        return 0
    for path in args.models:
        if not os.path.isfile(path):
            print(json.dumps({"error": "model file not found: %s" % path}))
            return 2
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        print(json.dumps({"error": "the agent needs numpy and onnxruntime: %s" % exc}))
        return 3
    for row in run_models(args.models, args.threads, args.batch, args.warmup, args.min_time,
                          args.min_runs, args.interleave, args.provider, args.opt_level):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
