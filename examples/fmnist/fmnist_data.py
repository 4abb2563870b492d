"""Fashion-MNIST from Debian's dataset-fashion-mnist package (IDX files, gzip)."""
import gzip
import os

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _cached(path):
    """The decompressed IDX array, kept as .npy under ~/.cache so that the many
    short trials of a sweep do not each spend a second gunzipping the same files."""
    cache_dir = os.environ.get("FMNIST_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "trainyard-fmnist"))
    st = os.stat(path)
    cached = os.path.join(cache_dir, f"{os.path.basename(path)}.{st.st_size}.{int(st.st_mtime)}.npy")
    try:
        return np.load(cached)
    except (OSError, ValueError):
        pass
    data = _read_idx(path)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{cached}.{os.getpid()}.tmp.npy"
        np.save(tmp, data)
        os.replace(tmp, cached)  # atomic: parallel trials never read a half-written file
    except OSError:
        pass  # a read-only home: just no cache
    return data


def load(split, data_dir=None, limit=0):
    """Returns (images float32 [N, 784] scaled to [0, 1] and standardised, labels int64 [N])."""
    data_dir = data_dir or os.environ.get("FMNIST_DIR", DEFAULT_DIR)
    prefix = "train" if split == "train" else "t10k"
    images = _cached(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = _cached(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    x = (x - 0.2860) / 0.3530  # Fashion-MNIST's mean and std
    return x, labels.astype(np.int64)
