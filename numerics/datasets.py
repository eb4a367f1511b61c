"""Real image datasets, offline: Fashion-MNIST (IDX files or the shipped subset) and scikit-learn's 8x8 digits.

Images come back as ``(n, h, w)`` float64 arrays in ``[-1, 1]`` with integer labels; ``size``
downsamples by block averaging (28 -> 14 -> 7). Fashion-MNIST is read from the Debian package
``dataset-fashion-mnist`` when it is installed (60 000 + 10 000 images), else from
``data/fashion_mnist_subset.npz`` (2 000 + 500 images, MIT licence, see ``data/FASHION_MNIST_LICENSE``).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from numerics.validation import choice, positive_int

IDX_ROOT = Path("/usr/share/datasets/fashion-mnist")
SUBSET = Path(__file__).resolve().parent.parent / "data" / "fashion_mnist_subset.npz"
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SPLITS = {"train": "train", "test": "t10k"}
DATASETS = ("fashion", "digits")


def read_idx(path) -> np.ndarray:
    """An IDX file (gzipped or not): magic ``0 0 type ndim``, ``ndim`` big-endian uint32 sizes, then the data."""
    path = Path(path)
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, file holds {data.size} values")
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def fashion_mnist_raw(split: str, root=IDX_ROOT) -> tuple[np.ndarray, np.ndarray, str]:
    """uint8 ``(n, 28, 28)`` images, labels and where they came from (the IDX files, else the subset)."""
    stem = SPLITS[choice(split, "split", SPLITS)]
    images, labels = Path(root) / f"{stem}-images-idx3-ubyte.gz", Path(root) / f"{stem}-labels-idx1-ubyte.gz"
    if images.exists() and labels.exists():
        return read_idx(images), read_idx(labels), str(root)
    with np.load(SUBSET) as subset:
        return subset[f"{split}_images"], subset[f"{split}_labels"], str(SUBSET)


def digits_raw(split: str, n_test: int = 297) -> tuple[np.ndarray, np.ndarray, str]:
    """scikit-learn's 1797 8x8 digits (values 0..16) as uint8, the last ``n_test`` held out as the test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
    part = slice(None, -n_test) if choice(split, "split", SPLITS) == "train" else slice(-n_test, None)
    return images[part], labels[part], "sklearn.datasets.load_digits"


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """Block means: ``(n, h, w) -> (n, size, size)``; ``h`` must be a multiple of ``size``."""
    n, h, w = images.shape
    size = positive_int(size, "size")
    if h != w or h % size:
        raise ValueError(f"size must divide the image side {h} (allowed: "
                         f"{', '.join(str(s) for s in range(1, h + 1) if h % s == 0)}), got {size}")
    k = h // size
    return images.reshape(n, size, k, size, k).mean(axis=(2, 4))


def load(name: str, split: str, *, size: int | None = None, n: int | None = None, seed: int = 0):
    """``(images in [-1, 1] as (n, size, size) float64, labels, source)``; ``n`` draws a seeded subset."""
    raw = {"fashion": fashion_mnist_raw, "digits": digits_raw}[choice(name, "dataset", DATASETS)]
    images, labels, source = raw(split)
    top = 16.0 if name == "digits" else 255.0
    if n is not None:
        n = positive_int(n, "n")
        if n > len(images):
            raise ValueError(f"n must be <= {len(images)} ({name} {split} images in {source}), got {n}")
        keep = np.sort(np.random.default_rng([seed, len(images)]).choice(len(images), n, replace=False))
        images, labels = images[keep], labels[keep]
    x = images.astype(np.float64) / top * 2.0 - 1.0
    if size is not None:
        x = downsample(x, size)
    return x, labels.astype(np.int64), source


def write_subset(path=SUBSET, n_train: int = 2000, n_test: int = 500, seed: int = 0) -> None:
    """Write the shipped subset from the IDX files (run once where the Debian package is installed)."""
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels, source = fashion_mnist_raw(split)
        if source == str(SUBSET):
            raise ValueError("the Debian package dataset-fashion-mnist is not installed: nothing to subset")
        keep = np.sort(np.random.default_rng([seed, len(images)]).choice(len(images), n, replace=False))
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[keep], labels[keep].astype(np.uint8)
    np.savez_compressed(path, **arrays)
