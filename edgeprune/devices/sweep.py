"""Profiling sweep: which configurations to measure for a model, measuring them, resuming.

``plan_jobs(ops, alignment)`` turns a model's op list into measurement jobs over a channel
grid that is dense around multiples of the alignment (where the runtime's kernels step)
and coarse elsewhere. ``run_sweep`` builds a micro ONNX model per job, times batches of
them interleaved with a baseline with the profile's runtime (``make_runner``: in this
process, or ``edgeprune.runtimes.time_models`` over a target), and appends the resulting
rows to a partial CSV atomically after every batch, so an interrupted run resumes where it
stopped.

Precision: an ``int8`` job times the same micro model quantized the way edgeprune ships
int8 models (``edgeprune.quant.ptq.quantize_onnx``: ORT static QDQ, per-channel int8
weights, uint8 activations; calibrated on random inputs, which set the ranges but not the
graph ORT runs) and writes rows with ``precision`` int8, each net of a Quantize/Dequantize
boundary of its input shape timed in the same batch (``add_boundaries``). ``int8_twins``
puts each int8 job right after its fp32 twin, so both are timed in the same batch, under
the same load.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgeprune.cost.latency_table import ELEMENTWISE_OPS, REQUIRED_COLUMNS
from edgeprune.cost.ops import LayerOp
from edgeprune.errors import UserError
from edgeprune.fileio import atomic_write
from edgeprune.runtimes.settings import AgentSettings

COARSE_ABOVE = 128  # channel ranges wider than this get the coarse grid
RowKey = tuple  # (op, c_in, c_out, kernel, stride, h_in, w_in)
TABLE_COLUMNS = REQUIRED_COLUMNS + ("method", "chain", "ref_ms", "precision", "kernel_w")


@dataclass(frozen=True)
class Job:
    """One micro-model measurement and the table rows it yields."""

    method: str  # pair | dwchain | residual | single
    op: str
    c_a: int
    c_b: int
    kernel: int
    stride: int
    h: int
    w: int
    groups: int = 1  # a grouped conv's group count (its channels are multiples of it)
    precision: str = "fp32"  # fp32 | int8 (the micro model quantized to QDQ)
    kernel_w: int = 0  # a conv's kernel width where it differs from ``kernel`` (1x7: 7)

    def keys(self) -> list[RowKey]:
        k = (self.kernel, self.stride, self.h, self.w)
        if self.method == "pair":
            keys = {("conv", self.c_a, self.c_b, *k), ("conv", self.c_b, self.c_a, *k)}
            return sorted(keys)
        return [(self.op, self.c_a, self.c_b, *k)]

    @property
    def tag(self) -> str:
        g = f"g{self.groups}" if self.groups > 1 else ""
        g += "_int8" if self.precision == "int8" else ""
        k = f"{self.kernel}x{self.kernel_w}" if self.kernel_w else f"{self.kernel}"
        return (
            f"{self.method}_{self.op}{g}_{self.c_a}_{self.c_b}_k{k}s{self.stride}_{self.h}x{self.w}"
        )


# how each batch of micro models is timed unless a profile says otherwise (always interleaved)
SWEEP_TIMING = AgentSettings(min_time_s=0.6, min_runs=20, warmup=3, interleave=True)


@dataclass(frozen=True)
class SweepSettings:
    """Which runtime sweeps, how it times each batch of micro models, and the batch sizes."""

    run: AgentSettings = field(default=SWEEP_TIMING)
    runtime: str = "ort"
    models_per_batch: int = 24
    target_unit_macs: float = 4e6
    dtype: str = "float32"
    precisions: tuple[str, ...] = ("fp32",)  # what profile measures (int8: QDQ twins)

    @property
    def threads(self) -> int:
        return self.run.threads

    @property
    def batch(self) -> int:
        return self.run.batch


INT8_RUNTIMES = ("ort",)  # runtimes whose int8 (QDQ) twins profile measures


def sweep_settings(
    profile, min_time_s: float = SWEEP_TIMING.min_time_s, int8: bool = True
) -> SweepSettings:
    """Sweep settings for a device profile: its runtime, threads, batch, provider, opt level;
    int8 twins too where the runtime runs QDQ models on the CPU (``int8``)."""
    from edgeprune.runtimes import get_runtime

    ident = profile.identity
    runtime = get_runtime(ident.runtime)
    run = AgentSettings(
        threads=ident.threads,
        batch=ident.batch,
        min_time_s=min_time_s,
        min_runs=SWEEP_TIMING.min_runs,
        warmup=SWEEP_TIMING.warmup,
        interleave=True,
        provider=runtime.resolve_provider(ident.provider or None),
        opt_level=ident.opt_level or "all",
    )
    precisions = ("fp32", "int8") if int8 and runtime.name in INT8_RUNTIMES else ("fp32",)
    return SweepSettings(run=run, runtime=runtime.name, precisions=precisions)


def int8_twins(jobs: Sequence[Job], precisions: Sequence[str]) -> list[Job]:
    """``jobs`` with, where ``precisions`` holds int8, each job's int8 twin right after it."""
    if "int8" not in precisions:
        return list(jobs)
    out: list[Job] = []
    for j in jobs:
        out += [j, replace(j, precision="int8")]
    return out


def channel_grid(c_max: int, alignment: int, coarse: bool = False) -> list[int]:
    """Grid of channel counts in [1, c_max]: aligned steps plus the counts around them."""
    a = max(1, alignment)
    step = a * max(1, math.ceil(c_max / (a * (4 if coarse else 6))))
    aligned = list(range(step, c_max + 1, step)) if c_max >= a else []
    if c_max % a == 0 and c_max not in aligned:
        aligned.append(c_max)
    pts = set(aligned) | {1, c_max}
    if a > 1 and c_max >= a:  # each alignment class spans the whole range a pruned layer can take
        pts |= {a, c_max // a * a, c_max - 1 if c_max % a == 0 else c_max}
    if a > 1:
        for m in aligned:
            pts.add(m - 1)
            if not coarse:
                pts.add(m + 1)
                pts.add(m - max(1, step // 2))
        if not aligned:
            pts.add(max(1, c_max // 2))
    return sorted(p for p in pts if 1 <= p <= c_max)


def _dim_values(ops: Iterable[LayerOp], alignment: int, coarse: bool) -> tuple[list, list]:
    cin: set[int] = set()
    cout: set[int] = set()
    for o in ops:
        ci_coarse, co_coarse = coarse or o.c_in > COARSE_ABOVE, coarse or o.c_out > COARSE_ABOVE
        cin.update(channel_grid(o.c_in, alignment, ci_coarse) if o.c_in_from else [o.c_in])
        cout.update(channel_grid(o.c_out, alignment, co_coarse) if o.c_out_from else [o.c_out])
    return sorted(cin), sorted(cout)


def plan_jobs(ops: Sequence[LayerOp], alignment: int = 1, coarse: bool = False) -> list[Job]:
    """Measurement jobs covering every op family of ``ops`` over its channel range."""
    fams: dict[tuple, list[LayerOp]] = {}
    for o in ops:
        if o.op == "unknown":  # nothing to build for a layer extraction does not know
            continue
        g = o.groups if o.op == "conv" else 1
        kw = o.kernel_w if o.op in ("conv", "dwconv") and o.kernel_w != o.kernel else 0
        fams.setdefault((o.op, o.kernel, o.stride, o.h_in, o.w_in, g, kw), []).append(o)
    jobs: list[Job] = []
    for (op, k, s, h, w, g, kw), members in fams.items():
        n0 = len(jobs)
        if op == "conv" and g > 1:  # grouped: channels in multiples of the group count
            pairs = set()
            for m in members:
                cin = (
                    [g * v for v in channel_grid(m.c_in // g, 1, True)] if m.c_in_from else [m.c_in]
                )
                cout = [g * v for v in channel_grid(m.c_out // g, 1, True)]
                pairs.update((a, b) for a in cin for b in cout)
            jobs += [Job("single", "conv", a, b, k, s, h, w, g) for a, b in sorted(pairs)]
        elif op in ELEMENTWISE_OPS:
            cmax = max(m.c_in for m in members)
            if op == "shuffle":  # its channels split evenly into k groups
                grid = [k * v for v in channel_grid(cmax // k, 1, True)]
            else:  # a pruned model's concat/activation can take any width up to the dense one
                grid = channel_grid(cmax, alignment, True)
            jobs += [Job("single", op, c, c, k, s, h, w) for c in grid]
        elif op == "conv" and s == 1:
            pairs: set[tuple[int, int]] = set()
            for m in members:  # each layer's own grid product; overlaps are shared
                cin, cout = _dim_values([m], alignment, coarse)
                pairs.update(tuple(sorted((a, b))) for a in cin for b in cout)
            jobs += [Job("pair", "conv", a, b, k, 1, h, w) for a, b in sorted(pairs)]
        elif op in ("dwconv", "add", "pool", "maxpool"):
            cmax = max(m.c_in for m in members)
            grid = channel_grid(cmax, alignment, coarse or op in ("pool", "maxpool"))
            method = {"dwconv": "dwchain" if s == 1 else "single", "add": "residual"}.get(
                op, "single"
            )
            jobs += [Job(method, op, c, c, k, s, h, w) for c in grid]
        else:
            singles: set[tuple[int, int]] = set()
            for m in members:
                cin, cout = _dim_values([m], alignment, coarse=True)
                singles.update((a, b) for a in cin for b in cout)
            jobs += [Job("single", op, a, b, k, s, h, w) for a, b in sorted(singles)]
        if kw:  # a non-square kernel (1x7) is measured with its real shape
            jobs[n0:] = [replace(j, kernel_w=kw) for j in jobs[n0:]]
    return jobs


def _units(job: Job, target_macs: float) -> int:
    if job.method == "single":
        return 1
    k2 = job.kernel * (job.kernel_w or job.kernel)
    per_unit = job.c_a * job.c_b * k2 * job.h * job.w * (2 if job.c_a != job.c_b else 1)
    if job.method in ("dwchain", "residual"):
        per_unit = (
            job.c_a * max(k2, 1) * job.h * job.w * (2 * job.c_a if job.method == "residual" else 1)
        )
    return int(min(8, max(2, round(target_macs / max(per_unit, 1)))))


def build_job_models(job: Job, folder: str, settings: SweepSettings) -> list[tuple[str, int]]:
    """Write the micro model(s) of a job; returns (path, units) per model."""
    from edgeprune.devices import micro

    n = _units(job, settings.target_unit_macs)
    b = settings.batch
    if job.method == "pair":
        built = [micro.conv_chain(job.c_a, job.c_b, job.kernel, job.h, job.w, n, b, job.kernel_w)]
    elif job.method == "dwchain":
        built = [micro.dw_chain(job.c_a, job.kernel, job.h, job.w, n, b, job.kernel_w)]
    elif job.method == "residual":
        built = [
            micro.residual_chain(job.c_a, job.kernel, job.h, job.w, n, True, b),
            micro.residual_chain(job.c_a, job.kernel, job.h, job.w, n, False, b),
            micro.single("add", job.c_a, job.c_a, 1, 1, job.h, job.w, b),
        ]
    else:
        built = [
            micro.single(
                job.op,
                job.c_a,
                job.c_b,
                job.kernel,
                job.stride,
                job.h,
                job.w,
                b,
                job.groups,
                job.kernel_w,
            )
        ]
    out = []
    for i, (model, units) in enumerate(built):
        path = os.path.join(folder, f"{job.tag}_{i}.onnx")
        if job.precision == "int8":
            quantize_micro(model, path)
        else:
            micro.save(model, path)
        out.append((path, units))
    return out


def quantize_micro(model, path: str, seed: int = 0) -> str:
    """Write the int8 QDQ twin of a micro ModelProto to ``path`` (random calibration inputs
    of the model's input shape: they set ranges, not the graph ORT runs)."""
    import numpy as np

    from edgeprune.devices import micro
    from edgeprune.quant.ptq import quantize_onnx

    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal(dims).astype(np.float32) for _ in range(2)]
    fp32 = path + ".fp32.onnx"
    micro.save(model, fp32)
    try:
        quantize_onnx(fp32, path, batches)
    finally:
        os.unlink(fp32)
    return path


def job_rows(job: Job, stats: list[dict], units: list[int], base: dict, s: SweepSettings):
    """Table rows of a job from its models' timings and the batch's baseline."""
    if job.method == "residual":
        # marginal cost in context (0 where fused), capped by the unfused Add+Relu alone:
        # for large convs the chain difference is noise on top of big numbers
        res, plain, alone = stats
        cap = max(0.0, alone["latency_ms_median"] - base["latency_ms_median"])
        diff = (res["latency_ms_median"] - plain["latency_ms_median"]) / units[0]
        med = min(max(0.0, diff), cap)
        p90 = max(med, min(cap, (res["latency_ms_p90"] - plain["latency_ms_median"]) / units[0]))
        n_runs = min(res["n_runs"], plain["n_runs"])
    else:
        st = stats[0]
        med = max(0.0, (st["latency_ms_median"] - base["latency_ms_median"]) / units[0])
        p90 = max(med, (st["latency_ms_p90"] - base["latency_ms_median"]) / units[0])
        n_runs = st["n_runs"]
    rows = []
    for op, ci, co, k, stride, h, w in job.keys():
        groups = ci if op == "dwconv" else job.groups
        rows.append(
            {
                "op": op,
                "c_in": ci,
                "c_out": co,
                "kernel": k,
                "stride": stride,
                "groups": groups,
                "h_in": h,
                "w_in": w,
                "batch": s.batch,
                "runtime": s.runtime,
                "threads": s.threads,
                "dtype": s.dtype,
                "latency_ms_median": round(med, 6),
                "latency_ms_p90": round(p90, 6),
                "n_runs": int(n_runs),
                "method": job.method,
                "chain": units[0],
                "precision": job.precision,
                "kernel_w": job.kernel_w,
            }
        )
    return rows


def read_partial(path: Path):
    """Rows already measured (a DataFrame, possibly empty)."""
    import pandas as pd

    if path.is_file():
        try:
            return pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            pass
    return pd.DataFrame(columns=list(TABLE_COLUMNS))


def write_csv_atomic(df, path: Path) -> None:
    """Write a DataFrame as CSV via a temp file and ``os.replace``."""
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def done_keys(df) -> set[tuple]:
    """(precision, *RowKey, groups, kernel_w) of every row measured (rows without a
    precision are fp32; a grouped conv and a dense one of the same channels are different
    rows, and so are a 1x7 conv and a 1x1 one)."""
    from edgeprune.cost.latency_table import kernel_w_column

    cols = ["op", "c_in", "c_out", "kernel", "stride", "h_in", "w_in", "groups"]
    prec = precision_of(df)
    rows = df[cols].itertuples(index=False, name=None)
    kws = kernel_w_column(df)
    return {(p, *r, kw) for p, r, kw in zip(prec, rows, kws, strict=True)}


def precision_of(df) -> list[str]:
    """Each row's precision (``fp32`` where the column is missing or empty)."""
    if "precision" not in df.columns:
        return ["fp32"] * len(df)
    return [p if isinstance(p, str) and p else "fp32" for p in df["precision"].tolist()]


def _job_done(job: Job, have: set[tuple]) -> bool:
    return {
        (job.precision, *k, k[1] if k[0] == "dwconv" else job.groups, job.kernel_w)
        for k in job.keys()
    } <= have


Runner = Callable[[list[str]], list[dict]]


def add_boundaries(spans: list, paths: list[str], folder: str) -> dict[int, int]:
    """Append to ``paths`` one Q/DQ boundary model (``micro.qdq_boundary``) per input shape of
    the int8 jobs in ``spans``; returns each int8 job's first model index -> its boundary's.

    An int8 twin's time minus the fp32 baseline would charge every table row the Quantize/
    Dequantize a whole int8 model pays once (ResNet-56's int8 table summed to 0.61x of fp32,
    measured 0.48-0.52x): int8 rows subtract the boundary of their own input shape instead.
    """
    from edgeprune.devices import micro

    where: dict[tuple, int] = {}
    out = {}
    for job, i0, _units in spans:
        if job.precision != "int8":
            continue
        shape = micro.input_shape(paths[i0])
        if shape not in where:
            where[shape] = len(paths)
            name = "qdq_" + "x".join(map(str, shape)) + ".onnx"
            paths.append(micro.save(micro.qdq_boundary(shape)[0], os.path.join(folder, name)))
        out[i0] = where[shape]
    return out


# A fixed micro model timed in every batch: how busy the device was during that batch.
REFERENCE = (16, 16, 3, 16, 16, 4)  # conv_chain(c_a, c_b, k, h, w, units)


def normalize_load(df):
    """Rescale each row by its batch's reference time to the median reference time.

    Batches measured while other work loaded the device are slowed alike; dividing by the
    reference model timed in the same batch makes rows of different batches comparable.
    """
    if "ref_ms" not in df.columns or df["ref_ms"].isna().all():
        return df
    df = df.copy()
    ref = df["ref_ms"].astype(float)
    level = float(ref.median())
    factor = (level / ref).where(ref > 0, 1.0).fillna(1.0)
    for col in ("latency_ms_median", "latency_ms_p90"):
        df[col] = (df[col].astype(float) * factor).round(6)
    df["ref_ms"] = level
    return df


def make_runner(settings: SweepSettings, target=None, python: str = "python3") -> Runner:
    """A function timing a batch of models interleaved with ``settings.runtime``.

    Without a ``target`` the models are timed in this process where the runtime can (ONNX
    Runtime), else on the local machine; with one, by ``time_models`` over that target. A
    runtime that cannot time interleaved fails here, in one sentence, before any work.
    """
    from edgeprune.runtimes import check_capabilities, time_models

    timing = replace(settings.run, interleave=True)
    rt = check_capabilities(settings.runtime, timing, n_models=2)
    in_process = getattr(rt, "run_in_process", None)
    if target is None and in_process is not None:
        return lambda paths: in_process(list(paths), timing)
    if target is None:
        from edgeprune.targets import LocalTarget

        target = LocalTarget()
    return lambda paths: time_models(target, paths, rt, timing, python)


def run_sweep(
    jobs: Sequence[Job],
    partial_path: Path,
    runner: Runner,
    settings: SweepSettings,
    progress: bool = True,
) -> tuple[int, int]:
    """Measure the jobs not yet in ``partial_path``; returns (jobs measured, jobs skipped)."""
    import pandas as pd

    from edgeprune.devices import micro
    from edgeprune.log import progress as show_progress

    df = read_partial(partial_path)
    have = done_keys(df)
    todo = [j for j in jobs if not _job_done(j, have)]
    skipped = len(jobs) - len(todo)
    bar = show_progress(
        len(jobs), "profiling", initial=skipped, unit="cfg", enabled=progress, area="profile"
    )
    per_batch = max(1, settings.models_per_batch)
    with tempfile.TemporaryDirectory(prefix="edgeprune-profile-") as tmp:
        base_path = micro.save(
            micro.baseline(settings.batch)[0], os.path.join(tmp, "baseline.onnx")
        )
        ref_path = micro.save(micro.conv_chain(*REFERENCE)[0], os.path.join(tmp, "ref.onnx"))
        for start in range(0, len(todo), per_batch):
            batch = todo[start : start + per_batch]
            paths, spans = [base_path, ref_path], []
            for job in batch:
                built = build_job_models(job, tmp, settings)
                spans.append((job, len(paths), [u for _, u in built]))
                paths += [p for p, _ in built]
            bases = add_boundaries(spans, paths, tmp)
            stats = runner(paths)
            if len(stats) != len(paths):
                raise UserError(f"the device agent returned {len(stats)} results for {len(paths)}")
            rows = []
            for job, i0, units in spans:
                base = stats[bases.get(i0, 0)]
                rows += job_rows(job, stats[i0 : i0 + len(units)], units, base, settings)
            for r in rows:
                r["ref_ms"] = round(stats[1]["latency_ms_median"], 6)
            new = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
            df = new if df.empty else pd.concat([df, new], ignore_index=True)
            write_csv_atomic(df, partial_path)
            for p in paths[2:]:
                os.unlink(p)
            bar.update(len(batch))
    bar.close()
    return len(todo), skipped
