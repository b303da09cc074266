"""Profiling sweep: channel grids, job planning, row arithmetic, interrupted-run resume.

The runner is a stand-in returning fixed timings (this tests bookkeeping, not timing);
tests/integration/test_profile_local.py runs the real ONNX Runtime.
"""

from dataclasses import replace

import pytest

from edgeprune.cost.ops import LayerOp
from edgeprune.devices.sweep import (
    SWEEP_TIMING,
    Job,
    SweepSettings,
    channel_grid,
    job_rows,
    plan_jobs,
    read_partial,
    run_sweep,
)


def test_channel_grid_steps_around_alignment():
    g = channel_grid(64, 16)
    assert {16, 32, 48, 64} <= set(g) and {15, 17, 31, 33, 63, 1} <= set(g)
    assert g == sorted(set(g)) and min(g) == 1 and max(g) == 64
    assert channel_grid(16, 16) == [1, 8, 15, 16]
    assert channel_grid(6, 16) == [1, 3, 6]
    assert len(channel_grid(2048, 16)) < 30
    assert channel_grid(8, 1) == sorted(set(channel_grid(8, 1)))


OPS = [
    LayerOp("c1", "conv", 3, 16, 3, 1, 32, 32, 1, None, "c1"),
    LayerOp("b.conv1", "conv", 16, 16, 3, 1, 32, 32, 1, "c1", "b.conv1"),
    LayerOp("b.conv2", "conv", 16, 16, 3, 1, 32, 32, 1, "b.conv1", "b.conv2"),
    LayerOp("add", "add", 16, 16, 1, 1, 32, 32, 1, "c1", "c1", "b.conv2"),
    LayerOp("d.conv1", "conv", 16, 32, 3, 2, 32, 32, 1, "c1", "d.conv1"),
]


def test_plan_jobs_methods():
    jobs = plan_jobs(OPS, 16)
    methods = {(j.method, j.op, j.stride) for j in jobs}
    assert methods == {("pair", "conv", 1), ("residual", "add", 1), ("single", "conv", 2)}
    pair_keys = {k[1:3] for j in jobs if j.method == "pair" for k in j.keys()}
    grid = [1, 8, 15, 16]
    first = {(3, b) for b in grid} | {(b, 3) for b in grid}  # the first conv's fixed c_in
    assert {(a, b) for a in grid for b in grid} | first == pair_keys


def test_job_rows_arithmetic():
    s = SweepSettings(run=replace(SWEEP_TIMING, threads=2))
    base = {"latency_ms_median": 0.01, "latency_ms_p90": 0.012, "n_runs": 100}
    st = {"latency_ms_median": 0.41, "latency_ms_p90": 0.5, "n_runs": 100}
    rows = job_rows(Job("pair", "conv", 8, 16, 3, 1, 8, 8), [st], [4], base, s)
    assert len(rows) == 2 and rows[0]["latency_ms_median"] == pytest.approx(0.1)
    plain = {"latency_ms_median": 0.3, "latency_ms_p90": 0.33, "n_runs": 90}
    alone = {"latency_ms_median": 0.5, "latency_ms_p90": 0.6, "n_runs": 90}
    job = Job("residual", "add", 8, 8, 1, 1, 8, 8)
    rows = job_rows(job, [st, plain, alone], [2, 2, 1], base, s)
    assert rows[0]["latency_ms_median"] == pytest.approx(0.055) and rows[0]["n_runs"] == 90
    cheap = {"latency_ms_median": 0.03, "latency_ms_p90": 0.04, "n_runs": 90}
    rows = job_rows(job, [st, plain, cheap], [2, 2, 1], base, s)
    assert rows[0]["latency_ms_median"] == pytest.approx(0.02)  # capped by the lone add


class FakeRunner:
    """Returns latency = 0.01 ms x (index + 1); can fail on a given call."""

    def __init__(self, fail_on=None):
        self.calls, self.models, self.fail_on = 0, 0, fail_on

    def __call__(self, paths):
        self.calls += 1
        if self.fail_on == self.calls:
            raise KeyboardInterrupt
        self.models += len(paths) - 1
        return [
            {"latency_ms_median": 0.01 * (i + 1), "latency_ms_p90": 0.02 * (i + 1), "n_runs": 20}
            for i in range(len(paths))
        ]


def test_interrupted_run_resumes(tmp_path):
    jobs = plan_jobs(OPS, 16)
    s = SweepSettings(models_per_batch=5)
    partial = tmp_path / "t.csv.partial"
    first = FakeRunner(fail_on=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(jobs, partial, first, s, progress=False)
    done = read_partial(partial)
    assert len(done) > 0 and first.calls == 3
    second = FakeRunner()
    measured, skipped = run_sweep(jobs, partial, second, s, progress=False)
    assert skipped == 10 and measured == len(jobs) - 10
    keys = {k for j in jobs for k in j.keys()}
    assert len(read_partial(partial)) == len(keys)
    again = FakeRunner()
    assert run_sweep(jobs, partial, again, s, progress=False) == (0, len(jobs))
    assert again.calls == 0
