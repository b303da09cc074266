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
