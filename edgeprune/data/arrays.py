"""Decoded image arrays: a split as uint8 (N, H, W, 3) + int64 labels, cached as .npy files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.data.cache import build_dir_atomic
from edgeprune.errors import UserError

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


@dataclass(frozen=True)
class ArraySplit:
    """One split held as arrays: ``images`` uint8 (N, H, W, 3), ``labels`` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def order_classes(names: list[str]) -> tuple[str, ...]:
    """CIFAR-10's canonical class order when ``names`` are its classes, else sorted order."""
    if set(names) == set(CIFAR10_CLASSES):
        return CIFAR10_CLASSES
    return tuple(sorted(names))


def list_image_folder(folder: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Classes and (file, label) pairs of an ImageFolder tree ``folder/<class>/<image>``."""
    names = [d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if not names:
        raise UserError(f"{folder} has no class sub-folders (expected {folder}/<class>/<image>)")
    classes = order_classes(names)
    items = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        items.extend((p, label) for p in files)
    if not items:
        raise UserError(f"{folder} contains no images")
    return classes, items


def decode_image_folder(folder: Path) -> ArraySplit:
    """Decode every image of an ImageFolder tree into one uint8 array (all images same size)."""
    classes, items = list_image_folder(folder)
    first = None
    images = None
    for i, (path, _) in enumerate(items):
        arr = _decode(path)
        if first is None:
            first = arr.shape
            images = np.empty((len(items), *first), dtype=np.uint8)
        elif arr.shape != first:
            raise UserError(
                f"{path} is {arr.shape[1]}x{arr.shape[0]}, expected all images the same size"
            )
        images[i] = arr
    labels = np.array([label for _, label in items], dtype=np.int64)
    return ArraySplit(images, labels, classes)


def _decode(path: Path) -> np.ndarray:
    """One image as uint8 (H, W, 3); a file PIL cannot decode is one UserError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot decode image {path}: {why}") from None


def save_arrays(split: ArraySplit, folder: Path) -> None:
    """Write ``images.npy``, ``labels.npy`` and ``classes.json`` into ``folder``."""
    np.save(folder / "images.npy", split.images)
    np.save(folder / "labels.npy", split.labels)
    (folder / "classes.json").write_text(json.dumps(list(split.classes)))


def load_arrays(folder: Path) -> ArraySplit:
    """Load arrays written by :func:`save_arrays`, images memory-mapped."""
    images = np.load(folder / "images.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy")
    classes = tuple(json.loads((folder / "classes.json").read_text()))
    return ArraySplit(images, labels, classes)


def cached_decode(image_folder: Path, arrays_dir: Path) -> ArraySplit:
    """Decode ``image_folder`` once into ``arrays_dir`` (atomically), then memory-map it."""
    build_dir_atomic(arrays_dir, lambda tmp: save_arrays(decode_image_folder(image_folder), tmp))
    return load_arrays(arrays_dir)


def concat_splits(parts: list[ArraySplit]) -> ArraySplit:
    """Concatenate splits that share the same classes (e.g. test-a + test-b tarballs)."""
    if len(parts) == 1:
        return parts[0]
    if any(p.classes != parts[0].classes for p in parts):
        raise UserError("the tarballs of one split have different class folders")
    images = np.concatenate([np.asarray(p.images) for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    return ArraySplit(images, labels, parts[0].classes)
