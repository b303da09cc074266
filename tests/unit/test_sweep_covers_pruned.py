"""The profiling sweep measures every shape a pruned variant of the model can need (issue 16):
a pruned classifier input, a depthwise conv at any width up to the dense one, a concat at
unaligned widths. Hand-made tables (latency a known function of the channels) stand in for
measurements; the look-up of every op of random pruned variants must succeed and agree."""

import copy

import pandas as pd
import pytest
import torch
from torch import nn

from edgeprune.cost.latency_table import LatencyTable
from edgeprune.cost.ops import extract_ops
from edgeprune.devices.sweep import TABLE_COLUMNS, channel_grid, plan_jobs
from edgeprune.surgery import apply_plan_, example_input_for, random_plan

SIZE = (3, 16, 16)
ALIGN = 16


def _lat(op, ci, co, h, w):
    """The 'measured' latency: bilinear in the channels (linear for a one-width op), so
    interpolation and extrapolation are exact."""
    if op not in ("conv", "linear", "pad_shortcut"):
        return 1e-6 * h * w * (3 * ci + 7)
    return 1e-6 * h * w * (ci * co + 3 * ci + 5 * co + 7)


def _row(op, ci, co, k, s, h, w, g):
    lat = _lat(op, ci, co, h, w)
    return dict(
        op=op, c_in=ci, c_out=co, kernel=k, stride=s, groups=g, h_in=h, w_in=w, batch=1,
        runtime="ort", threads=1, dtype="float32", latency_ms_median=lat, latency_ms_p90=lat,
        n_runs=1, method="hand", chain=1,
    )  # fmt: skip


def _table(models) -> LatencyTable:
    rows = []
    for model in models:
        for job in plan_jobs(extract_ops(model.eval(), SIZE), ALIGN):
            for op, ci, co, k, s, h, w in job.keys():
                rows.append(_row(op, ci, co, k, s, h, w, ci if op == "dwconv" else job.groups))
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).drop_duplicates(
        subset=["op", "c_in", "c_out", "kernel", "stride", "h_in", "w_in", "groups"]
    )
    return LatencyTable(df, alignment=ALIGN)


class Classifier(nn.Module):
    """A pruned classifier input: linear in-features follow the last conv's width."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 40, 3, padding=1), nn.BatchNorm2d(40), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(40, 200, 1), nn.BatchNorm2d(200), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(200, 10)  # over 128 in-features: the coarse grid

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.conv2(self.conv(x))), 1))


class Depthwise(nn.Module):
    """A depthwise conv whose dense width (116, ShuffleNetV2's) is not a multiple of the
    alignment."""

    def __init__(self):
        super().__init__()
        self.pw = nn.Sequential(nn.Conv2d(3, 116, 1), nn.BatchNorm2d(116), nn.ReLU())
        self.dw = nn.Sequential(
            nn.Conv2d(116, 116, 3, stride=2, padding=1, groups=116), nn.BatchNorm2d(116), nn.ReLU()
        )
        self.out = nn.Conv2d(116, 24, 1)

    def forward(self, x):
        return self.out(self.dw(self.pw(x)))


class Concat(nn.Module):
    """Inception-style: two branches concatenated (SqueezeNet's expand), widths 20 + 20."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 20, 1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(3, 20, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(40, 8, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], 1))


@pytest.mark.parametrize("cls", [Classifier, Depthwise, Concat])
def test_every_op_of_random_pruned_variants_is_priced_exactly(cls):
    torch.manual_seed(0)
    model = cls().eval()
    table = _table([model])
    example = example_input_for(model, SIZE)
    seen = set()
    for seed in range(16):
        plan = random_plan(model, seed=seed, min_keep_frac=0.05, input_size=SIZE)
        variant = apply_plan_(copy.deepcopy(model), plan, example).eval()
        for o in extract_ops(variant, SIZE):
            got = table.lookup(o.op, o.c_in, o.c_out, o.kernel, o.stride, o.h_in, o.w_in, o.groups)
            assert got == pytest.approx(_lat(o.op, o.c_in, o.c_out, o.h_in, o.w_in), rel=1e-6)
            seen.add((o.op, o.c_in))
    ops = {op for op, _ in seen}
    want = {Classifier: "linear", Depthwise: "dwconv", Concat: "concat"}[cls]
    assert want in ops
    assert len({c for op, c in seen if op == want}) > 3  # many pruned widths were priced


def test_channel_grid_spans_both_alignment_classes():
    # the dense width 116 is unaligned: the largest aligned width a pruned layer can take
    # (112) and the smallest (16) are measured, as are 1 and the largest unaligned one
    for c_max, coarse in ((116, False), (1280, True), (40, True), (17, False)):
        grid = channel_grid(c_max, ALIGN, coarse)
        aligned = [c for c in grid if c % ALIGN == 0]
        other = [c for c in grid if c % ALIGN]
        assert aligned[0] == ALIGN and aligned[-1] == c_max // ALIGN * ALIGN
        assert other[0] == 1 and other[-1] == max(c for c in range(1, c_max + 1) if c % ALIGN)


def test_family_merged_from_two_models_prices_a_missing_corner():
    # mobilenet_v2's classifier (1280 -> 1000) and mobilenet_v3_small's (576 -> 1024) in one
    # table: the c_in grid of the union has points measured at only one c_out
    rows = [_row("linear", ci, 1000, 1, 1, 1, 1, 1) for ci in channel_grid(1280, ALIGN, True)]
    rows += [_row("linear", ci, 1024, 1, 1, 1, 1, 1) for ci in channel_grid(576, ALIGN, True)]
    table = LatencyTable(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), alignment=ALIGN)
    for ci, co in ((432, 1000), (255, 1024), (300, 1000)):
        got = table.lookup("linear", ci, co, 1, 1, 1, 1)
        assert got == pytest.approx(_lat("linear", ci, co, 1, 1), rel=1e-6)


def test_beyond_the_measured_range_extrapolates_linearly():
    rows = [_row("dwconv", c, c, 3, 2, 8, 8, c) for c in (16, 32, 48, 64, 80, 96)]
    table = LatencyTable(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), alignment=ALIGN)
    v80, v96 = (table.lookup("dwconv", c, c, 3, 2, 8, 8) for c in (80, 96))
    assert table.lookup("dwconv", 112, 112, 3, 2, 8, 8) == pytest.approx(2 * v96 - v80)
    # an unaligned width with no unaligned point measured uses the aligned points
    assert table.lookup("dwconv", 40, 40, 3, 2, 8, 8) == pytest.approx(
        (table.lookup("dwconv", 32, 32, 3, 2, 8, 8) + table.lookup("dwconv", 48, 48, 3, 2, 8, 8))
        / 2
    )


def test_grouped_and_dense_conv_of_the_same_channels_are_both_measured(tmp_path):
    # one table spanning two models: ResNeXt's grouped 3x3 and ResNet's dense 3x3, both
    # 64 -> 64 at 8x8; the grouped row must not count as done (nor be dropped) for the dense
    from edgeprune.devices.sweep import Job, SweepSettings, read_partial, run_sweep

    def runner(paths):
        return [{"latency_ms_median": 0.01, "latency_ms_p90": 0.02, "n_runs": 20}] * len(paths)

    partial = tmp_path / "t.csv.partial"
    s = SweepSettings(models_per_batch=4)
    grouped = Job("single", "conv", 64, 64, 3, 1, 8, 8, groups=4)
    assert run_sweep([grouped], partial, runner, s, progress=False) == (1, 0)
    dense = Job("pair", "conv", 64, 64, 3, 1, 8, 8)
    assert run_sweep([grouped, dense], partial, runner, s, progress=False) == (1, 1)
    assert sorted(read_partial(partial)["groups"]) == [1, 4]
