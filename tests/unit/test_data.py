"""Unit tests of edgeprune.data on tiny fake CIFAR-10 roots in all three forms."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgeprune.data import (
    CIFAR10_CLASSES,
    MEAN,
    STD,
    DataOptions,
    RootForm,
    build_dataset,
    build_loader,
    detect_form,
    load_source_split,
    val_indices,
)
from edgeprune.data import extract as extract_mod
from edgeprune.data import roots as roots_mod
from edgeprune.errors import UserError

PER_CLASS = {"train": 6, "test": 2}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path / "cache"))
    # the official checksums, per test: make_torchvision_root adds its fake files' md5s
    monkeypatch.setattr(roots_mod, "TV_MD5", dict(roots_mod.TV_MD5))


def fake_images(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic random 32x32 images, PER_CLASS per class, in class order."""
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = PER_CLASS[split] * len(CIFAR10_CLASSES)
    labels = np.repeat(np.arange(len(CIFAR10_CLASSES)), PER_CLASS[split])
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), labels


def write_image_folder(root: Path, split: str) -> None:
    images, labels = fake_images(split)
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        d = root / split / CIFAR10_CLASSES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:04d}.png")  # lossless: pixels round-trip exactly


def make_folder_root(tmp_path: Path) -> Path:
    root = tmp_path / "folders"
    for split in PER_CLASS:
        write_image_folder(root, split)
    return root


def make_tarball_root(tmp_path: Path, names=("train.tar.gz", "test-a.tar.gz")) -> Path:
    src = make_folder_root(tmp_path / "src")
    root = tmp_path / "tarballs"
    root.mkdir()
    for name in names:
        split = "train" if name.startswith("train") else "test"
        with tarfile.open(root / name, "w:gz") as tf:
            tf.add(src / split, arcname=split)
    return root


def make_torchvision_root(tmp_path: Path) -> Path:
    root = tmp_path / "tv"
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    tr, trl = fake_images("train")
    parts = np.array_split(np.arange(len(trl)), 5)
    for i, idx in enumerate(parts, 1):
        batch = {
            "data": tr[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1),
            "labels": list(trl[idx]),
        }
        (d / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    te, tel = fake_images("test")
    test = {"data": te.transpose(0, 3, 1, 2).reshape(len(tel), -1), "labels": list(tel)}
    (d / "test_batch").write_bytes(pickle.dumps(test))
    (d / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR10_CLASSES)}))
    for name in roots_mod.TV_MD5:  # these fakes stand in for the official files
        roots_mod.TV_MD5[name] = hashlib.md5((d / name).read_bytes()).hexdigest()
    return root


MAKERS = {
    RootForm.IMAGEFOLDER: make_folder_root,
    RootForm.TARBALLS: make_tarball_root,
    RootForm.TORCHVISION: make_torchvision_root,
}


@pytest.mark.parametrize("form", list(MAKERS))
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_form_loads_the_same_pixels(tmp_path, form, split):
    root = MAKERS[form](tmp_path)
    assert detect_form(root) is form
    arrays = load_source_split(root, split)
    images, labels = fake_images(split)
    assert arrays.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(arrays.labels, labels)
    np.testing.assert_array_equal(np.asarray(arrays.images), images)


def test_torchvision_folder_itself_is_accepted(tmp_path):
    root = make_torchvision_root(tmp_path) / "cifar-10-batches-py"
    assert detect_form(root) is RootForm.TORCHVISION
    assert len(load_source_split(root, "test")) == 20


def test_official_checksums_are_torchvision_s():
    from torchvision.datasets import CIFAR10

    official = dict(CIFAR10.train_list + CIFAR10.test_list)
    official[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    assert dict(roots_mod.TV_MD5) == official  # the autouse fixture copied them unchanged


class _Payload:
    """Unpickling this creates ``marker``: what a crafted batch file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_batch_with_a_wrong_md5_is_refused_before_unpickling(tmp_path):
    root = make_torchvision_root(tmp_path)
    marker = tmp_path / "ran"
    crafted = {"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _Payload(marker)}
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(crafted))
    with pytest.raises(UserError, match="not the official CIFAR-10 file") as err:
        load_source_split(root, "test")
    assert "\n" not in str(err.value)
    assert not marker.exists()
    # the real official checksums refuse the fake files too
    again = make_torchvision_root(tmp_path / "again")
    roots_mod.TV_MD5["test_batch"] = "40351d587109b95175f43aff81a1287e"
    with pytest.raises(UserError, match="md5 mismatch"):
        load_source_split(again, "test")


def test_unrecognised_and_missing_roots_are_user_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a CIFAR-10 root"):
        detect_form(tmp_path / "empty")
    with pytest.raises(UserError, match="does not exist"):
        load_source_split(tmp_path / "nope", "test")
    root = make_folder_root(tmp_path)
    with pytest.raises(UserError, match="unknown split"):
        build_dataset(root, "validation")


def test_missing_split_folder_is_a_user_error(tmp_path):
    root = tmp_path / "only-test"
    write_image_folder(root, "test")
    with pytest.raises(UserError, match="no train/ folder"):
        load_source_split(root, "train")


def test_tarballs_extract_once_into_the_cache_not_the_root(tmp_path, monkeypatch):
    root = make_tarball_root(tmp_path)
    before = sorted(p.name for p in root.iterdir())
    first = load_source_split(root, "test")
    assert sorted(p.name for p in root.iterdir()) == before
    cached = list((tmp_path / "cache" / "datasets").glob("test-a-*/extracted/test/*/*.png"))
    assert len(cached) == 20
    assert not list((tmp_path / "cache" / "datasets").glob("*/.*"))  # no temp dirs left

    def boom(*a, **k):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(extract_mod, "safe_extract", boom)
    again = load_source_split(root, "test")
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(first.images))


def test_several_test_tarballs_are_concatenated(tmp_path):
    root = make_tarball_root(tmp_path, names=("test-a.tar.gz",))
    src = tmp_path / "src" / "folders" / "test"
    with tarfile.open(root / "test-b.tar.gz", "w:gz") as tf:
        tf.add(src, arcname="test")
    assert len(load_source_split(root, "test")) == 40


def test_path_traversal_tarball_is_refused(tmp_path):
    root = tmp_path / "evil"
    root.mkdir()
    payload = b"pwned"
    with tarfile.open(root / "test.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    with pytest.raises(UserError, match="unsafe|cannot extract"):
        load_source_split(root, "test")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not list((tmp_path / "cache" / "datasets").glob("*/extracted"))


def test_val_split_is_seeded_stratified_and_disjoint(tmp_path):
    labels = np.repeat(np.arange(10), 100)
    a, b = val_indices(labels, 50, seed=0), val_indices(labels, 50, seed=0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, val_indices(labels, 50, seed=1))
    assert np.bincount(labels[a]).tolist() == [5] * 10

    root = make_folder_root(tmp_path)
    opts = DataOptions(val_size=20, holdout_val=True)
    val = build_dataset(root, "val", options=opts)
    train = build_dataset(root, "train", options=opts)
    full = build_dataset(root, "train")
    assert len(val) == 20 and len(train) == 40 and len(full) == 60
    assert not set(val.indices) & set(train.indices)
    assert np.bincount(val.targets).tolist() == [2] * 10


def test_val_uses_test_transform_and_train_augments(tmp_path):
    root = make_folder_root(tmp_path)
    images, _ = fake_images("train")
    val = build_dataset(root, "val", options=DataOptions(val_size=10))
    x, _ = val[0]
    raw = torch.from_numpy(images[val.indices[0]]).permute(2, 0, 1).float() / 255
    expected = (raw - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    torch.testing.assert_close(x, expected)
    train = build_dataset(root, "train")
    torch.manual_seed(0)
    outs = [train[0][0] for _ in range(8)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    plain = build_dataset(root, "train", options=DataOptions(augment=False))
    assert torch.equal(plain[0][0], plain[0][0])


def test_build_loader_batches_limit_and_order(tmp_path):
    root = make_folder_root(tmp_path)
    loader = build_loader(root, "train", batch_size=16, workers=0)
    assert loader.drop_last and len(loader) == 3
    x, y = next(iter(loader))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    test = build_loader(root, "test", batch_size=8, workers=0)
    assert not test.drop_last and sum(len(b[1]) for b in test) == 20
    small = build_loader(root, "test", batch_size=8, workers=0, limit=7)
    assert len(small.dataset) == 7
    assert list(small.dataset.indices) == list(
        build_loader(root, "test", 8, limit=7).dataset.indices
    )
    assert small.dataset.classes == CIFAR10_CLASSES


def test_loader_with_workers(tmp_path):
    root = make_folder_root(tmp_path)
    loader = build_loader(root, "test", batch_size=10, workers=2)
    assert sum(len(b[1]) for b in loader) == 20


def test_mixed_image_sizes_are_refused(tmp_path):
    root = make_folder_root(tmp_path)
    Image.new("RGB", (40, 40)).save(root / "test" / "cat" / "9999.png")
    with pytest.raises(UserError, match="same size"):
        load_source_split(root, "test")


def test_resize_option(tmp_path):
    root = make_folder_root(tmp_path)
    ds = build_dataset(root, "test", options=DataOptions(resize=64))
    assert ds[0][0].shape == (3, 64, 64)


def test_data_options_round_trip():
    opts = DataOptions(val_size=100, holdout_val=True)
    assert DataOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(UserError, match="unknown data option"):
        DataOptions.from_dict({"bogus": 1})


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeCIFAR10:  # stands in for the network: writes what torchvision would
        def __init__(self, root, train, download):
            calls.append((train, download))
            made = make_torchvision_root(tmp_path / "made")
            dest = Path(root) / "cifar-10-batches-py"
            if not dest.exists():
                Path(root).mkdir(parents=True, exist_ok=True)
                (made / "cifar-10-batches-py").rename(dest)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    root = tmp_path / "fresh"
    with pytest.raises(UserError, match="does not exist"):
        load_source_split(root, "test")
    ds = build_dataset(root, "test", options=DataOptions(download=True))
    assert len(ds) == 20 and calls == [(True, True), (False, True)]
    assert detect_form(root) is RootForm.TORCHVISION
