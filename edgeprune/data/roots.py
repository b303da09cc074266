"""Recognise the three forms a CIFAR-10 ``--data-root`` can take and load a split as arrays.

(a) torchvision's CIFAR-10 folder (``<root>/cifar-10-batches-py`` or that folder itself),
    downloaded by torchvision when asked and online; its pickled batches are unpickled only
    when their md5 matches the official release;
(b) a folder with ``train/`` and ``test/`` ImageFolder sub-folders;
(c) a folder of JPEG tarballs (``train*.tar.gz``, ``test*.tar.gz``), extracted once into the cache.
"""

from __future__ import annotations

import hashlib
import pickle
from enum import Enum
from pathlib import Path

import numpy as np

from edgeprune.data.arrays import ArraySplit, cached_decode, concat_splits
from edgeprune.data.cache import datasets_dir, tree_fingerprint
from edgeprune.data.extract import extract_cached
from edgeprune.errors import UserError

TV_FOLDER = "cifar-10-batches-py"
# md5 of the official python-format files (torchvision's CIFAR10.train_list, test_list, meta):
# they are pickles, so each one is checked before it is unpickled.
TV_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
SOURCE_SPLITS = ("train", "test")


class RootForm(str, Enum):
    """The recognised layouts of a data root."""

    TORCHVISION = "torchvision"
    IMAGEFOLDER = "imagefolder"
    TARBALLS = "tarballs"


def _tv_dir(root: Path) -> Path | None:
    for cand in (root / TV_FOLDER, root):
        if (cand / "batches.meta").is_file():
            return cand
    return None


def split_tarballs(root: Path, split: str) -> list[Path]:
    """Tarballs of ``split`` in ``root``: ``train.tar.gz``, ``test-a.tar.gz``, ``test-b.tgz``..."""
    return sorted(
        p
        for p in root.iterdir()
        if p.is_file() and p.name.startswith(split) and p.name.endswith(TARBALL_SUFFIXES)
    )


def detect_form(root: Path) -> RootForm:
    """Which of the three forms ``root`` is; a clear UserError when it is none of them."""
    if not root.is_dir():
        raise UserError(f"data root {root} does not exist or is not a folder")
    if _tv_dir(root) is not None:
        return RootForm.TORCHVISION
    if any((root / s).is_dir() for s in SOURCE_SPLITS):
        return RootForm.IMAGEFOLDER
    if any(split_tarballs(root, s) for s in SOURCE_SPLITS):
        return RootForm.TARBALLS
    raise UserError(
        f"data root {root} is not a CIFAR-10 root: expected {TV_FOLDER}/ (torchvision), "
        "train/ and test/ image folders, or train*.tar.gz and test*.tar.gz tarballs"
    )


def download_cifar10(root: Path) -> None:
    """Download CIFAR-10 with torchvision into ``root`` (needs network access)."""
    from torchvision.datasets import CIFAR10

    try:
        for train in (True, False):
            CIFAR10(str(root), train=train, download=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise UserError(f"could not download CIFAR-10 into {root}: {exc}") from exc


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unpickle_official(tv: Path, name: str) -> dict:
    """Unpickle one file of the official CIFAR-10 python release, after checking its md5
    (unpickling any other file could run code)."""
    path = tv / name
    if not path.is_file():
        raise UserError(f"{path} is missing; the torchvision CIFAR-10 folder is incomplete")
    if _md5(path) != TV_MD5[name]:
        raise UserError(
            f"{path} is not the official CIFAR-10 file (md5 mismatch), and unpickling it could "
            "run code, so it was refused; download CIFAR-10 again"
        )
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _load_tv_split(tv: Path, split: str) -> ArraySplit:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        entry = _unpickle_official(tv, name)
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry.get("labels", entry.get("fine_labels", [])))
    classes = tuple(_unpickle_official(tv, "batches.meta")["label_names"])
    data = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))
    return ArraySplit(data, np.asarray(labels, dtype=np.int64), classes)


def _load_folder_split(root: Path, split: str) -> ArraySplit:
    folder = root / split
    if not folder.is_dir():
        raise UserError(f"data root {root} has no {split}/ folder")
    key = f"folder-{split}-{tree_fingerprint(folder)}"
    return cached_decode(folder, datasets_dir() / key / "arrays")


def _split_folder(extracted: Path, split: str) -> Path:
    """The ImageFolder root inside an extracted tarball: ``split/``, ``<top>/split/`` or itself."""
    tops = [p for p in extracted.iterdir() if p.is_dir()]
    for cand in (extracted / split, *(t / split for t in tops if len(tops) == 1)):
        if cand.is_dir():
            return cand
    return extracted


def _load_tarball_split(root: Path, split: str) -> ArraySplit:
    tarballs = split_tarballs(root, split)
    if not tarballs:
        raise UserError(f"data root {root} has no {split}*.tar.gz tarball")
    parts = []
    for tb in tarballs:
        extracted = extract_cached(tb)
        parts.append(cached_decode(_split_folder(extracted, split), extracted.parent / "arrays"))
    return concat_splits(parts)


def load_source_split(root: str | Path, split: str, download: bool = False) -> ArraySplit:
    """Load the ``train`` or ``test`` split of a CIFAR-10 root of any recognised form."""
    if split not in SOURCE_SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SOURCE_SPLITS)}")
    root = Path(root).expanduser()
    try:
        form = detect_form(root)
    except UserError:
        if not download:
            raise
        download_cifar10(root)
        form = detect_form(root)
    if form is RootForm.TORCHVISION:
        return _load_tv_split(_tv_dir(root), split)
    if form is RootForm.IMAGEFOLDER:
        return _load_folder_split(root, split)
    return _load_tarball_split(root, split)
