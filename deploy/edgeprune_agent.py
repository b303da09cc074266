#!/usr/bin/env python3
"""edgeprune device agent: time ONNX models with ONNX Runtime on this device.

Standalone: needs only Python 3.7+, numpy and onnxruntime (what a Raspberry Pi OS image
can have). It never imports edgeprune. Usage::

    python3 edgeprune_agent.py --threads 4 --batch 1 --min-time 2 dense.onnx pruned.onnx

prints one JSON line per model (latency mean/median/p90/p99 in ms, throughput in img/s,
n, runtime version, threads, device identity). ``--interleave`` alternates the models run
by run so that their ratio is measured under the same machine conditions; intra-op thread
spinning is then disabled, or the idle session's spinning threads steal the cores.
Where ``X.check.npz`` lies beside ``X.onnx`` (an ``input`` and the host's ``output``), the
line also holds ``check_max_abs_diff``: do the device's kernels compute what the host did?
An int8 model's check file also carries the int8 rule (``min_top1_agreement``,
``max_rel_l2``): its outputs are judged against fp32 by top-1 agreement and relative error.

The timing routine here (``measure``) is the one routine edgeprune uses for every timing;
``edgeprune.bench`` re-exports it.
"""

import argparse
import json
import math
import os
import platform
import sys
import time

__version__ = "4"


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


def median_ci_bounds(n, z=1.959963984540054):
    """0-based indices (lo, hi) into n sorted values bounding their median's 95% interval,
    or None when n is too small (a copy of edgeprune.runtimes.interval.median_ci_bounds; a
    test keeps the two equal)."""
    if n < 6:
        return None
    half = z * math.sqrt(n) / 2.0
    lo = int(math.floor(n / 2.0 - half))
    hi = int(math.ceil(1.0 + n / 2.0 + half))
    if lo < 1 or hi > n:
        return None
    return lo - 1, hi - 1


def ratio_halfwidth(a_times, b_times):
    """Half-width of the 95% interval of the median of per-round B/A, relative to it."""
    ratios = sorted(b / a for a, b in zip(a_times, b_times) if a > 0)  # noqa: B905 (3.7)
    idx = median_ci_bounds(len(ratios))
    if idx is None:
        return float("inf")
    n = len(ratios)
    med = (ratios[(n - 1) // 2] + ratios[n // 2]) / 2.0
    return (ratios[idx[1]] - ratios[idx[0]]) / 2.0 / med if med > 0 else float("inf")


def measure(
    fns,
    warmup=10,
    min_time_s=1.0,
    min_runs=20,
    max_runs=100000,
    batch=1,
    halfwidth=0.0,
    max_time_s=0.0,
    keep_times=False,
):
    """Time one or several callables; several are interleaved run by run.

    Each callable is warmed up ``warmup`` times, then all are run in turn until every one
    has at least ``min_runs`` runs and ``min_time_s`` seconds have passed in total (or
    ``max_runs`` is reached). With ``halfwidth`` > 0 and several callables, timing goes on
    past ``min_time_s`` until the 95% interval of the median per-round ratio of each one to
    the first is within +-``halfwidth`` (``stop``: "narrow") or ``max_time_s`` has passed
    ("time_cap"). Returns one ``summarize`` dict per callable, with ``stop`` and, with
    ``keep_times``, every run's time (``times_ms``, one per round when interleaved).
    """
    single = callable(fns)
    fns = [fns] if single else list(fns)
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    adaptive = halfwidth > 0 and len(fns) > 1
    cap = max(float(max_time_s), float(min_time_s))
    clock = time.perf_counter
    start = clock()
    next_check = 0
    stop = "fixed"
    while True:
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            times[i].append(clock() - t0)
        n = len(times[0])
        if n >= max_runs:
            stop = "max_runs"
            break
        elapsed = clock() - start
        if n < min_runs or elapsed < min_time_s:
            continue
        if not adaptive:
            break
        if n >= next_check:  # sorting every round would cost more than the timing
            next_check = n + max(10, n // 20)
            if all(ratio_halfwidth(times[0], t) <= halfwidth for t in times[1:]):
                stop = "narrow"
                break
        if elapsed >= cap:
            narrow = all(ratio_halfwidth(times[0], t) <= halfwidth for t in times[1:])
            stop = "narrow" if narrow else "time_cap"
            break
    stats = []
    for t in times:
        st = summarize(t, batch)
        st["stop"] = stop
        if keep_times:
            st["times_ms"] = [round(x * 1000.0, 4) for x in t]
        stats.append(st)
    return stats[0] if single else stats


# CPU features that decide which kernels a runtime can use (int8 and fp16 speed above all).
X86_FLAGS = "avx avx2 fma f16c avx512f avx512bw avx512_vnni avx512_bf16 avx_vnni amx_int8 amx_bf16"
ARM_FLAGS = "neon asimd asimdhp fphp asimddp i8mm bf16 sve sve2"
ISA_FLAGS = tuple((X86_FLAGS + " " + ARM_FLAGS).split())


def _cpuinfo():
    info = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() not in info:
                    info[key.strip().lower()] = value.strip()
    except OSError:
        pass
    return info


def _dist_version(name):
    """Installed version of a distribution without importing it ('' when unknown)."""
    try:
        from importlib import metadata  # Python >= 3.8
    except ImportError:
        return ""
    try:
        return metadata.version(name)
    except Exception:  # not installed under that name
        return ""


def _versions():
    """Versions of the runtime packages for this interpreter (missing ones are left out).

    Read from the installed metadata, so timing runs never import TensorRT or CUDA.
    """
    out = {}
    for dist in ("numpy", "onnxruntime", "onnxruntime-gpu", "tensorrt"):
        version = _dist_version(dist)
        if version:
            out[dist] = version
    try:
        import onnxruntime

        out["onnxruntime_providers"] = list(onnxruntime.get_available_providers())
    except Exception:  # no onnxruntime, or a broken one: the agent reports that elsewhere
        pass
    return out


def device_identity():
    """What this device is: host name, architecture, CPU model, ISA flags, board, cores,
    and the versions of the runtime packages installed for this interpreter."""
    info = _cpuinfo()
    board = info.get("model", "")
    board = "" if board.isdigit() else board  # x86 "model" is a number; a Pi names its board
    flags = set((info.get("flags") or info.get("features") or "").split())
    return {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": info.get("model name") or info.get("hardware") or platform.processor() or "",
        "board": board,
        "cores": os.cpu_count(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "versions": _versions(),
    }


def make_session(
    path,
    threads,
    provider="CPUExecutionProvider",
    opt_level="all",
    spinning=True,
    optimized_path=None,
    profile_prefix=None,
):
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
    session = ort.InferenceSession(path, sess_options=so, providers=providers)
    if provider not in session.get_providers():  # ORT falls back to CPU with a mere warning
        raise ProviderError(
            "ONNX Runtime could not start %s on this device (it fell back to %s)"
            % (provider, ", ".join(session.get_providers()))
        )
    return session


class ProviderError(RuntimeError):
    """The requested execution provider is missing or failed to start on this device."""


def check_provider(provider):
    """None when ``provider`` is available here, else the error sentence."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider in available:
        return None
    return "execution provider %s is not available on this device (available: %s)" % (
        provider,
        ", ".join(available),
    )


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


def node_profile(path, threads, batch, provider="CPUExecutionProvider", opt_level="all", runs=10):
    """Per-node mean time in ms from ONNX Runtime's profiler, in execution order.

    Each entry is {"node": name, "op": op type, "ms": mean time per run}. Node names of the
    legacy exporter follow module paths (``/layer1/layer1.0/conv1/Conv``).
    """
    prefix = os.path.splitext(path)[0] + ".prof"
    sess = make_session(path, threads, provider, opt_level, profile_prefix=prefix)
    feeds = _feed(sess, batch)
    for _ in range(int(runs)):
        sess.run(None, feeds)
    trace = sess.end_profiling()  # the median per node drops the slow first runs
    try:
        with open(trace) as fh:
            events = json.load(fh)
    finally:
        try:
            os.unlink(trace)
        except OSError:
            pass
    return parse_node_events(events, runs)


def parse_node_events(events, runs):
    """Aggregate ORT profiler events (list of dicts) into per-node median times per run."""
    order, times, ops = [], {}, {}
    suffix = "_kernel_time"
    for ev in events:
        name = ev.get("name", "")
        if ev.get("cat") != "Node" or not name.endswith(suffix):
            continue
        node = name[: -len(suffix)]
        if node not in times:
            order.append(node)
            times[node] = []
            ops[node] = ev.get("args", {}).get("op_name", "")
        times[node].append(float(ev.get("dur", 0)) / 1000.0)
    out = []
    for n in order:
        t = sorted(times[n])
        per_run = max(1, len(t) // max(1, int(runs)))  # a node may run several times per run
        mid = t[len(t) // 2]
        out.append({"node": n, "op": ops[n], "ms": mid * per_run})
    return out


def run_models(
    paths,
    threads=1,
    batch=1,
    warmup=10,
    min_time_s=1.0,
    min_runs=20,
    interleave=False,
    provider="CPUExecutionProvider",
    opt_level="all",
    profile_nodes=False,
    save_optimized=False,
    halfwidth=0.0,
    max_time_s=0.0,
):
    """Benchmark ONNX models; returns one result dict per model, in order.

    ``save_optimized`` writes each optimized graph next to its model (``X.opt.onnx``);
    ``profile_nodes`` adds a per-node breakdown (``nodes``), measured after the timing.
    Interleaved rows carry every round's time (``times_ms``) for the ratio's interval;
    ``halfwidth``/``max_time_s`` keep timing until it is narrow enough (see ``measure``).
    """
    import onnxruntime as ort

    spinning = not (interleave and len(paths) > 1)
    sessions = [
        make_session(
            p,
            threads,
            provider,
            opt_level,
            spinning,
            optimized_path=_opt_path(p) if save_optimized else None,
        )
        for p in paths
    ]
    checks = [output_check(sess, p) for sess, p in zip(sessions, paths)]  # noqa: B905 (3.7)
    calls = []
    for sess in sessions:
        feeds = _feed(sess, batch)
        calls.append(lambda s=sess, f=feeds: s.run(None, f))
    if interleave and len(calls) > 1:
        stats = measure(
            calls,
            warmup,
            min_time_s,
            min_runs,
            batch=batch,
            halfwidth=halfwidth,
            max_time_s=max_time_s,
            keep_times=True,
        )
    else:
        stats = [measure(c, warmup, min_time_s, min_runs, batch=batch) for c in calls]
    ident = device_identity()
    results = []
    for path, sess, st, check in zip(paths, sessions, stats, checks):  # noqa: B905 (Python 3.7)
        row = {
            "model": os.path.basename(path),
            "runtime": "ort",
            "runtime_version": ort.__version__,
            "provider": sess.get_providers()[0],
            "threads": int(threads),
            "batch": int(batch),
            "interleaved": bool(interleave),
            "agent_version": __version__,
            "device": ident,
        }
        row.update(st)
        row.update(check or {})
        if save_optimized:
            row["optimized_model"] = os.path.basename(_opt_path(path))
        results.append(row)
    if profile_nodes:
        del sessions, calls
        for path, row in zip(paths, results):  # noqa: B905 (Python 3.7)
            row["nodes"] = node_profile(path, threads, batch, provider, opt_level)
    return results


def _opt_path(path):
    return os.path.splitext(path)[0] + ".opt.onnx"


def check_path(path):
    """``X.check.npz`` beside ``X.onnx``: an ``input`` and the host framework's ``output``."""
    return os.path.splitext(path)[0] + ".check.npz"


def output_check(session, path):
    """{max |device output - host output|, max |host output|} on the host's input, or None.

    When the check file carries ``max_rel_l2`` and ``min_top1_agreement`` (an int8 model
    checked against the fp32 outputs), the int8 rule's numbers and verdict are added.
    """
    import numpy as np

    ref_path = check_path(path)
    if not os.path.isfile(ref_path):
        return None
    with np.load(ref_path) as ref:
        x, expected = ref["input"], ref["output"]
        rule = {k: float(ref[k]) for k in ("min_top1_agreement", "max_rel_l2") if k in ref}
    inp = session.get_inputs()[0]
    step = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else len(x)
    parts = [session.run(None, {inp.name: x[i : i + step]})[0] for i in range(0, len(x), step)]
    out = np.concatenate(parts).astype(np.float64)  # a fixed batch: the inputs in chunks
    expected = expected.astype(np.float64)
    diff = np.max(np.abs(out - expected)) if out.shape == expected.shape else np.inf
    row = {
        "check_max_abs_diff": float(diff),
        "check_output_scale": float(np.max(np.abs(expected))),
    }
    if len(rule) == 2:
        agree, rel, ok = int8_agreement(
            expected, out, rule["min_top1_agreement"], rule["max_rel_l2"]
        )
        row.update(
            check_rule="int8",
            check_top1_agreement=agree,
            check_rel_l2=rel,
            check_ok=ok,
            check_min_top1_agreement=rule["min_top1_agreement"],
            check_max_rel_l2=rule["max_rel_l2"],
        )
    return row


def int8_agreement(reference, output, min_top1_agreement, max_rel_l2):
    """(top-1 agreement, relative L2 error, ok) of int8 ``output`` vs fp32 ``reference``.

    A copy of ``edgeprune.quant.agreement.judge`` (this script never imports edgeprune);
    a unit test checks both give the same verdicts.
    """
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    n = int(ref.shape[0]) if ref.ndim else 1
    if out.shape != ref.shape or ref.size == 0 or not np.all(np.isfinite(out)):
        return 0.0, float("inf"), False
    r2, o2 = ref.reshape(n, -1), out.reshape(n, -1)
    agree = float(np.mean(np.argmax(r2, axis=1) == np.argmax(o2, axis=1)))
    norm = float(np.linalg.norm(r2))
    rel = float(np.linalg.norm(o2 - r2) / norm) if norm > 0 else float(np.linalg.norm(o2))
    return agree, rel, bool(agree >= min_top1_agreement and rel <= max_rel_l2)


def get_args_parser():
    p = argparse.ArgumentParser(description="Time ONNX models with ONNX Runtime on this device.")
    p.add_argument("models", nargs="*", help="ONNX model files")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs (total)")
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--interleave", action="store_true", help="alternate the models run by run")
    p.add_argument(
        "--halfwidth",
        type=float,
        default=0.0,
        help="interleaved: time until the 95%% interval of each ratio to the first model is "
        "within +- this fraction (0: just --min-time)",
    )
    p.add_argument("--max-time", type=float, default=0.0, help="cap in seconds for --halfwidth")
    p.add_argument("--provider", default="CPUExecutionProvider")
    p.add_argument("--opt-level", default="all", choices=["disable", "basic", "extended", "all"])
    p.add_argument(
        "--profile-nodes",
        action="store_true",
        help="add a per-node time breakdown (ORT profiler) to each line",
    )
    p.add_argument(
        "--save-optimized",
        action="store_true",
        help="write each optimized graph next to its model as X.opt.onnx",
    )
    p.add_argument("--identity", action="store_true", help="print the device identity and exit")
    return p


def main(args):
    if args.identity:
        print(json.dumps(device_identity()))
        return 0
    if not args.models:
        print(json.dumps({"error": "no model files given"}))
        return 2
    for path in args.models:
        if not os.path.isfile(path):
            print(json.dumps({"error": f"model file not found: {path}"}))
            return 2
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        print(json.dumps({"error": f"the agent needs numpy and onnxruntime: {exc}"}))
        return 3
    problem = check_provider(args.provider)
    if problem:
        print(json.dumps({"error": problem}))
        return 3
    try:
        for row in _rows(args):
            print(json.dumps(row), flush=True)
    except ProviderError as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    return 0


def _rows(args):
    return run_models(
        args.models,
        args.threads,
        args.batch,
        args.warmup,
        args.min_time,
        args.min_runs,
        args.interleave,
        args.provider,
        args.opt_level,
        args.profile_nodes,
        args.save_optimized,
        args.halfwidth,
        args.max_time,
    )


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
