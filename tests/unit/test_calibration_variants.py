"""The calibration's variant set spans slim, block-dropping structures, not only mild ones
(a fit on mild variants alone mispriced 0.3x-class models by 12-33% on the build VM)."""

from __future__ import annotations

from edgeprune.devices.endtoend import SLIM_KEEP_FRAC, calibration_variants


def test_calibration_variants_include_slim_and_block_dropping_ones():
    variants, size = calibration_variants("resnet20", 6)
    labels = [label for label, _, _ in variants]
    assert labels[0] == "dense" and size == (3, 32, 32)
    assert {"uniform0.15", "uniform0.3", "uniform0.55", "uniform0.8"} <= set(labels)
    mid = [v for v in variants if v[0].startswith("seed")]
    slim = [v for v in variants if v[0].startswith("slim-")]
    assert len(mid) == 3 and len(slim) == 3 and len(labels) == 1 + 4 + 6
    dense_model = variants[0][1]
    dense_w = {
        n: m.out_channels for n, m in dense_model.named_modules() if hasattr(m, "out_channels")
    }

    def kept(plan) -> list[float]:  # per group: kept share of its filters
        return [len(k) / dense_w[name] for name, k in plan.keep.items() if name in dense_w]

    # mid variants keep every block and >= 20% of each layer; slim ones go down to 10% and
    # drop residual blocks (an emptied group), which the budgets at 0.3x do
    assert all(min(kept(p)) >= 0.2 for _, _, p in mid)
    assert any(0 < min(x for x in kept(p) if x > 0) < 0.2 for _, _, p in slim)
    assert any(any(len(k) == 0 for k in p.keep.values()) for _, _, p in slim)
    assert all(min(x for x in kept(p) if x > 0) >= SLIM_KEEP_FRAC for _, _, p in slim)


def _point(label: str, aligned: float, unaligned: float, measured: float, dense_ms: float = 3.0):
    from edgeprune.devices.endtoend import Variant

    return Variant(label, aligned + unaligned, measured, dense_ms, table_aligned_ms=aligned)


def test_fit_calibration_recovers_a_known_calibration_and_weighs_relative_errors():
    from edgeprune.devices.endtoend import fit_calibration

    def true(a: float, u: float) -> float:  # 0.8 x aligned + 1.1 x unaligned + 0.2 ms
        return 0.8 * a + 1.1 * u + 0.2

    table = [(3.0, 0.5), (2.0, 1.0), (1.0, 0.2), (0.3, 0.1), (1.5, 1.5), (0.5, 0.0)]
    dense = _point("dense", 3.2, 0.0, true(3.2, 0.0), true(3.2, 0.0))
    pts = [_point(f"v{i}", a, u, true(a, u), true(3.2, 0.0)) for i, (a, u) in enumerate(table)]
    cal = fit_calibration(pts, dense, "sig")
    assert (round(cal.scale, 6), round(cal.scale_unaligned, 6)) == (0.8, 1.1)
    assert round(cal.offset_ms, 6) == 0.2 and cal.fit_err_pct == 0.0 and cal.n == 7
    # the large models measured 10% slow: a relative fit keeps the slim model's price (the
    # error a ratio budget sees) within 1%, where an absolute fit priced it 4% low
    noisy = [
        _point(
            p.label,
            p.table_aligned_ms,
            p.table_ms - p.table_aligned_ms,
            p.measured_ms * k,
            p.dense_measured_ms,
        )
        for p, k in zip(pts, (1.1, 1.1, 1.0, 1.0, 1.0, 1.0), strict=True)
    ]
    cal = fit_calibration(noisy, dense, "sig")
    slim = cal.apply(0.3, 0.1) / true(0.3, 0.1)
    assert abs(slim - 1) < 0.02, slim
