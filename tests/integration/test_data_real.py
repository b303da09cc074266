"""The real shared CIFAR-10 JPEG tarballs (../shared/data/cifar10-jpeg), extracted into the cache.

test-a (5,000 images) runs in CI (a few seconds, cached after the first run); the 50,000-image
train tarball is marked slow.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edgeprune.data import CIFAR10_CLASSES, DataOptions, build_dataset, build_loader, detect_form
from edgeprune.data.roots import RootForm

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg"
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"shared data not found at {ROOT}")


def test_real_test_a_tarball():
    assert detect_form(ROOT) is RootForm.TARBALLS
    ds = build_dataset(ROOT, "test")
    assert len(ds) == 5000 and ds.classes == CIFAR10_CLASSES
    assert np.bincount(ds.targets).tolist() == [500] * 10
    assert ds.split.images.shape == (5000, 32, 32, 3)
    t0 = time.perf_counter()
    again = build_loader(ROOT, "test", 500, workers=0)
    assert time.perf_counter() - t0 < 5  # cached: no second extraction or decoding
    x, y = next(iter(again))
    assert x.shape == (500, 3, 32, 32) and abs(float(x.mean())) < 1.0


@pytest.mark.slow
def test_real_train_tarball_and_val_split():
    train = build_dataset(ROOT, "train", options=DataOptions(holdout_val=True))
    val = build_dataset(ROOT, "val")
    assert len(train) == 45000 and len(val) == 5000
    assert np.bincount(val.targets).tolist() == [500] * 10
    assert not set(train.indices) & set(val.indices)
