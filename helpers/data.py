"""The datasets of the notebooks, behind one entry point: `load_dataset(name)`.

Files are looked up in `$HELPERS_DATA_DIR` (if set), then in the project's `data/` folder. A file
found in neither is downloaded into `data/` from its public URL: pooch fetches it into a temporary
folder, the content is verified (sha256 of the file, or of the parsed arrays for binarized MNIST,
whose public copies differ in bytes but not in content), and only then is it moved into place, so
nothing partial or corrupt is ever left in the cache.
"""
import hashlib
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
import requests
from PIL import Image, UnidentifiedImageError

from .shapes import generate_shapes

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The download cache (git-ignored)."""

_DEEPUL = "https://raw.githubusercontent.com/rll/deepul/945423cb3c440f80f0870187e9de491a79d184b7/homeworks/hw1/data/"
_LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str = None  # of the file's bytes; None where the parsed content is verified instead


REMOTE_FILES = {
    "smiley.jpg": RemoteFile(_DEEPUL + "smiley.jpg",
                             "11b04bacd9d31cbc688d4ac3cf436ea18fa2538f2934a0aeb46e58b6fce13167"),
    "geoffrey-hinton.jpg": RemoteFile(_DEEPUL + "geoffrey-hinton.jpg",
                                      "6ba4df1dd6384ff813316cdf96517e8aa0b4a6868e69dded67b18c88ee1e25d8"),
    "binarized_mnist.npz": RemoteFile("https://github.com/mgermain/MADE/releases/download/ICML2015/binarized_mnist.npz"),
    **{f"binarized_mnist_{split}.amat": RemoteFile(f"{_LAROCHELLE}binarized_mnist_{split}.amat")
       for split in ("train", "valid", "test")},
}

# sha256 of each split's uint8 array bytes (row-major, shape (N, 784)), the content every copy shares.
MNIST_SHA256 = {
    "train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
    "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
    "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
}


class DataNotFoundError(FileNotFoundError):
    """A data file is in none of the data folders and could not be downloaded."""


class CorruptDataError(ValueError):
    """A data file does not have the content it should (checksum, format)."""


@dataclass
class Dataset:
    """A dataset as the notebooks use it.

    `train`, `test` (and `valid` where the dataset has one) are integer numpy arrays of shape
    (N, *shape) with values in [0, d - 1]. For the 2D sets, `true_distribution[i, j]` is
    p(x0 = i, x1 = j), the table the samples were drawn from.
    """
    name: str
    train: np.ndarray
    test: np.ndarray
    d: int
    shape: tuple
    valid: np.ndarray = None
    true_distribution: np.ndarray = None
    description: str = ""

    def __repr__(self):
        sizes = ", ".join(f"{k}={len(v)}" for k, v in
                          (("train", self.train), ("valid", self.valid), ("test", self.test)) if v is not None)
        return f"Dataset({self.name!r}: {sizes}, d={self.d}, shape={self.shape})"


def data_dirs():
    """Folders searched for data files, in order: $HELPERS_DATA_DIR (if set), then the cache."""
    env = os.environ.get("HELPERS_DATA_DIR")
    return ([Path(env).expanduser()] if env else []) + [DATA_DIR]


def fetch(filename, parse):
    """Find `filename` in the data folders (or download it) and return `parse(path)`.

    `parse` reads the file and raises CorruptDataError if the content is wrong. A corrupt file in
    the cache is removed and downloaded again; one in $HELPERS_DATA_DIR is the user's, so the error
    names it and the fix instead.
    """
    remote = REMOTE_FILES[filename]
    for folder in data_dirs():
        path = folder / filename
        if not path.is_file():
            continue
        try:
            return _verified(path, remote, parse)
        except CorruptDataError as err:
            if folder != DATA_DIR:
                raise CorruptDataError(f"{err}\nReplace it with the file from {remote.url} "
                                       f"(or remove it to have it downloaded into {DATA_DIR}).") from None
            print(f"{err}\nRemoved it from the cache; downloading it again.")
            path.unlink()
    return _download(filename, parse)


def _verified(path, remote, parse):
    if remote.sha256 is not None:
        actual = pooch.file_hash(str(path), alg="sha256")
        if actual != remote.sha256:
            raise CorruptDataError(f"{path} has sha256 {actual}, expected {remote.sha256}: "
                                   f"the file is truncated, corrupt or a different file.")
    return parse(path)


def _download(filename, parse):
    remote = REMOTE_FILES[filename]
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{filename}-", dir=DATA_DIR))
    try:
        try:
            path = pooch.retrieve(remote.url, known_hash=remote.sha256 and f"sha256:{remote.sha256}",
                                  fname=filename, path=staging, progressbar=True)
        except (requests.RequestException, OSError) as err:
            places = " or ".join(str(p) for p in data_dirs())
            raise DataNotFoundError(
                f"{filename} is not in {places}, and downloading it from {remote.url} failed ({err}).\n"
                f"Download it by hand from that address and put it in {DATA_DIR} "
                f"(or in a folder named by the environment variable HELPERS_DATA_DIR).") from None
        except ValueError as err:  # pooch: hash mismatch
            raise CorruptDataError(f"{filename} downloaded from {remote.url} failed its checksum: {err}") from None
        content = parse(Path(path))
        os.replace(path, DATA_DIR / filename)
        return content
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# The datasets

def _split(data, fraction=0.8):
    split = int(fraction * len(data))
    return data[:split], data[split:]


def _load_1d_1():
    """The course's sampler: 1000 draws of 0.4 + 0.1 N(0, 1), digitized into 20 bins."""
    rand = np.random.RandomState(0)
    samples = 0.4 + 0.1 * rand.randn(1000)
    train, test = _split(np.digitize(samples, np.linspace(0.0, 1.0, 20)))
    return Dataset("1d-1", train, test, d=20, shape=(),
                   description="1000 draws of 0.4 + 0.1 N(0,1) digitized into 20 bins")


def _load_1d_2():
    """The course's sampler: 10000 draws of an equal mixture of two Gaussians, digitized into 100 bins."""
    count = 10000
    rand = np.random.RandomState(0)
    a = 0.3 + 0.1 * rand.randn(count)
    b = 0.8 + 0.05 * rand.randn(count)
    mask = rand.rand(count) < 0.5
    samples = np.clip(a * mask + b * (1 - mask), 0.0, 1.0)
    train, test = _split(np.digitize(samples, np.linspace(0.0, 1.0, 100)))
    return Dataset("1d-2", train, test, d=100, shape=(),
                   description="10000 draws of 0.5 N(0.3, 0.1^2) + 0.5 N(0.8, 0.05^2) digitized into 100 bins")


def _open_image(path):
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError) as err:
        raise CorruptDataError(f"{path} is not a readable image ({err}).") from None


def image_distribution(image, d):
    """The course's recipe: resize to d x d, grayscale, normalize into p(x0 = row, x1 = column).

    Nearest-neighbour resizing, as the course's `image.resize((d, d))` did with the Pillow of its day
    (the default filter became bicubic in Pillow 7.0, which smooths the table and raises its entropy
    above the course's reported test NLL).
    """
    gray = np.asarray(image.convert("RGB").resize((d, d), Image.NEAREST).convert("L"), dtype=np.float64)
    return gray / gray.sum()


def _load_image_2d(name, filename, d, n, seed):
    table = image_distribution(fetch(filename, _open_image), d)
    index = np.random.RandomState(seed).choice(d * d, size=n, p=table.reshape(-1))
    pairs = np.stack([index // d, index % d], axis=1)
    train, test = _split(pairs)
    return Dataset(name, train, test, d=d, shape=(2,), true_distribution=table,
                   description=f"{n} pairs (x0, x1) drawn from the {d}x{d} grayscale image {filename}")


def pair_frequencies(pairs, d):
    """Empirical p(x0 = i, x1 = j) of an (N, 2) array of pairs, as a (d, d) table."""
    pairs = np.asarray(pairs)
    return np.bincount(pairs[:, 0] * d + pairs[:, 1], minlength=d * d).reshape(d, d) / len(pairs)


SHAPES_TRAIN, SHAPES_TEST = 10479, 4491


def _find_local(filename):
    return next((folder / filename for folder in data_dirs() if (folder / filename).is_file()), None)


def _load_shapes():
    course_file = _find_local("shapes.pkl")
    if course_file is not None:
        train, test = _read_course_shapes(course_file)
        description = f"the course's Shapes set, read from {course_file}"
    else:
        train, test = np.split(generate_shapes(SHAPES_TRAIN + SHAPES_TEST, size=20, seed=0), [SHAPES_TRAIN])
        description = "20x20 filled shapes generated by helpers.shapes (shape 0 on background 1)"
    return Dataset("shapes", train, test, d=2, shape=(20, 20), description=description)


def _read_course_shapes(path):
    """The course's shapes.pkl: a dict with 'train' and 'test' uint8 arrays of shape (N, 20, 20, 1)."""
    try:
        with open(path, "rb") as f:
            content = pickle.load(f)
        arrays = [np.asarray(content[key]) for key in ("train", "test")]
    except Exception as err:
        raise CorruptDataError(f"{path} is not the course's shapes.pkl (a pickled dict with 'train' and 'test' "
                               f"arrays): {err!r}. Remove it to use the generated Shapes set.") from None
    for key, a in zip(("train", "test"), arrays):
        if a.ndim != 4 or a.shape[1:] != (20, 20, 1) or not np.isin(a, (0, 1)).all():
            raise CorruptDataError(f"{path}: '{key}' should be an (N, 20, 20, 1) array of 0/1 values, got shape "
                                   f"{a.shape} with values {np.unique(a)[:5]}. Remove it to use the generated set.")
    return [a[..., 0].astype(np.uint8) for a in arrays]


def _check_mnist(path, split, array):
    digest = hashlib.sha256(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).hexdigest()
    if array.dtype != np.uint8 or digest != MNIST_SHA256[split]:
        raise CorruptDataError(f"{path}: the {split} array (shape {array.shape}, dtype {array.dtype}) does not "
                               f"match binarized MNIST (sha256 {digest}, expected {MNIST_SHA256[split]}).")
    return array


def _parse_mnist_npz(path):
    try:
        with np.load(path) as npz:
            arrays = {split: npz[f"{split}_data"] for split in MNIST_SHA256}
    except Exception as err:
        raise CorruptDataError(f"{path} is not a readable npz with train_data, valid_data and test_data "
                               f"arrays ({err!r}).") from None
    return {split: _check_mnist(path, split, a) for split, a in arrays.items()}


def _amat_parser(split):
    def parse(path):
        raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        bits = raw[(raw == ord("0")) | (raw == ord("1"))] - ord("0")
        rows = int(np.count_nonzero(raw == ord("\n")))
        if rows == 0 or bits.size != rows * 784:
            raise CorruptDataError(f"{path} is not a binarized MNIST .amat file: {bits.size} binary values "
                                   f"on {rows} lines, expected 784 per line.")
        return _check_mnist(path, split, bits.reshape(rows, 784))
    return parse


def _read_mnist_npz():
    return fetch("binarized_mnist.npz", _parse_mnist_npz)


def _read_mnist_amat():
    return {s: fetch(f"binarized_mnist_{s}.amat", _amat_parser(s)) for s in MNIST_SHA256}


def _load_mnist():
    # Whichever format is already on disk first; else download the npz, failing that the text files.
    amat_on_disk = all(_find_local(f"binarized_mnist_{s}.amat") for s in MNIST_SHA256)
    readers = [_read_mnist_npz, _read_mnist_amat]
    if amat_on_disk and _find_local("binarized_mnist.npz") is None:
        readers.reverse()
    errors = []
    for read in readers:
        try:
            arrays = read()
            break
        except DataNotFoundError as err:
            errors.append(str(err))
    else:
        raise DataNotFoundError("Binarized MNIST is not available:\n" + "\n".join(errors))
    images = {s: a.reshape(-1, 28, 28) for s, a in arrays.items()}
    return Dataset("mnist", images["train"], images["test"], d=2, shape=(28, 28), valid=images["valid"],
                   description="binarized MNIST of Larochelle and Murray (2011), 28x28, values in {0, 1}")


_LOADERS = {
    "1d-1": _load_1d_1,
    "1d-2": _load_1d_2,
    "smiley": lambda: _load_image_2d("smiley", "smiley.jpg", d=25, n=10000, seed=0),
    "hinton": lambda: _load_image_2d("hinton", "geoffrey-hinton.jpg", d=200, n=100000, seed=0),
    "shapes": _load_shapes,
    "mnist": _load_mnist,
}
DATASETS = tuple(_LOADERS)


def load_dataset(name):
    """Load one of DATASETS by name; see `Dataset` for what comes back."""
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; the datasets are: {', '.join(DATASETS)}")
    return _LOADERS[name]()
