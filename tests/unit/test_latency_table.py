"""Latency tables: validation, bilinear interpolation inside alignment classes, ranges."""

import math

import pandas as pd
import pytest

from edgeprune.cost.latency_table import LatencyTable, load_table_csv, validate_table_frame
from edgeprune.errors import UserError


def row(op="conv", ci=16, co=16, k=3, s=1, h=8, w=8, lat=1.0, **kw):
    r = {
        "op": op,
        "c_in": ci,
        "c_out": co,
        "kernel": k,
        "stride": s,
        "groups": 1,
        "h_in": h,
        "w_in": w,
        "batch": 1,
        "runtime": "ort",
        "threads": 2,
        "dtype": "float32",
        "latency_ms_median": lat,
        "latency_ms_p90": lat * 1.1,
        "n_runs": 50,
    }
    r.update(kw)
    return r


def grid_table(alignment=16):
    """conv at 8x8 over c in {1, 8, 15, 16, 32}: latency = ci * co / 100 (+1 when unaligned)."""
    rows = []
    vals = [1, 8, 15, 16, 32]
    for ci in vals:
        for co in vals:
            pen = 0.0 if (ci % 16 == 0 and co % 16 == 0) else 1.0
            rows.append(row(ci=ci, co=co, lat=ci * co / 100 + pen))
    for c in vals:
        rows.append(row(op="add", ci=c, co=c, k=1, lat=c / 10))
    return LatencyTable(pd.DataFrame(rows), alignment=alignment)


def test_exact_grid_points():
    t = grid_table()
    assert t.lookup("conv", 16, 32, 3, 1, 8, 8) == pytest.approx(16 * 32 / 100)
    assert t.lookup("conv", 15, 8, 3, 1, 8, 8) == pytest.approx(15 * 8 / 100 + 1)


def test_bilinear_between_unaligned_points_is_exact_for_products():
    t = grid_table()
    # 4 and 12 lie between unaligned grid points 1, 8, 15: bilinear is exact for ci*co.
    assert t.lookup("conv", 4, 12, 3, 1, 8, 8) == pytest.approx(4 * 12 / 100 + 1)


def test_aligned_and_unaligned_classes_do_not_mix():
    t = grid_table()
    # 16 is aligned: exact aligned value, not pulled toward the unaligned penalty of 15.
    assert t.lookup("conv", 16, 16, 3, 1, 8, 8) == pytest.approx(2.56)
    # 24 is unaligned, above the largest unaligned grid point (15): extrapolated linearly
    # from the unaligned points 8 and 15 (exact here, the latency is linear in c_in)
    assert t.lookup("conv", 24, 16, 3, 1, 8, 8) == pytest.approx(24 * 16 / 100 + 1)


def test_out_of_range_extrapolates_and_unknown_family_is_an_error():
    t = grid_table()
    assert t.lookup("conv", 48, 16, 3, 1, 8, 8) == pytest.approx(48 * 16 / 100)
    with pytest.raises(UserError, match="no entry for conv k=3 s=1 at 16x16"):
        t.lookup("conv", 16, 16, 3, 1, 16, 16)


def test_one_dimensional_family():
    t = grid_table()
    assert t.lookup("add", 4, 4, 1, 1, 8, 8) == pytest.approx(0.4)
    assert t.lookup("add", 64, 64, 1, 1, 8, 8) == pytest.approx(6.4)  # extrapolated


def test_alignment_one_interpolates_across_everything():
    t = grid_table(alignment=1)
    # with alignment 1 every count is one class: 20 interpolates between 16 and 32
    assert t.lookup("conv", 20, 16, 3, 1, 8, 8) == pytest.approx(2.56 * 0.75 + 5.12 * 0.25)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"latency_ms_median": -1.0}, "negative"),
        ({"latency_ms_median": math.nan}, "NaN"),
        ({"runtime": "tflite"}, "unknown runtime"),
        ({"op": "conv3d"}, "unknown op"),
        ({"dtype": "bfloat64"}, "unknown dtype"),
        ({"c_in": 0}, "c_in must be >= 1"),
        ({"c_in": 2.5}, "non-negative integers"),
    ],
)
def test_validation_errors(change, match):
    with pytest.raises(UserError, match=match):
        validate_table_frame(pd.DataFrame([row(**{}), {**row(), **change}]))


def test_missing_columns():
    df = pd.DataFrame([row()]).drop(columns=["latency_ms_p90", "threads"])
    with pytest.raises(UserError, match="missing column.*latency_ms_p90"):
        LatencyTable(df)


def test_mixed_threads_rejected():
    with pytest.raises(UserError, match="mixes"):
        LatencyTable(pd.DataFrame([row(), row(ci=8, threads=4)]))


def test_incomplete_grid_fills_a_missing_point_by_the_stated_rule():
    # three points: too few for a bilinear surface, so p0 + p3 * ci * co (least squares)
    rows = [row(ci=16, co=16, lat=1.0), row(ci=32, co=32, lat=4.0), row(ci=16, co=32, lat=2.0)]
    t = LatencyTable(pd.DataFrame(rows), alignment=16)
    assert t.lookup("conv", 32, 16, 3, 1, 8, 8) == pytest.approx(2.0)


def test_csv_round_trip_and_bad_file(tmp_path):
    p = tmp_path / "t.csv"
    pd.DataFrame([row(), row(ci=32, co=32)]).to_csv(p, index=False)
    assert load_table_csv(str(p), 16).lookup("conv", 16, 16, 3, 1, 8, 8) == 1.0
    with pytest.raises(UserError, match="not found"):
        load_table_csv(str(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("op,c_in\nconv,3\n")
    with pytest.raises(UserError, match="missing column"):
        load_table_csv(str(bad))
