"""The datasets of the notebooks, behind one entry point: `load_dataset(name)`.

Every dataset comes with train, valid and test splits. Where the source has no validation split,
the last VALID_FRACTION of the course's training split is kept for it, so the test split is the
course's own. The files behind the datasets are found or downloaded by `helpers.download`.
"""

import hashlib
import pickle
import warnings
from dataclasses import KW_ONLY, dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._checks import as_categories, check_integer
from .download import DATA_DIR, CorruptDataError, DataNotFoundError, data_dirs, fetch, find_local
from .shapes import generate_shapes

__all__ = [
    "load_dataset",
    "Dataset",
    "DATASETS",
    "VALID_FRACTION",
    "pair_frequencies",
    "image_distribution",
    "DataNotFoundError",
    "CorruptDataError",
    "DATA_DIR",
    "data_dirs",
    "fetch",
]

VALID_FRACTION = 0.2
"""Where the source has no validation split, the last 20% of the course's training split is `valid`.

Taken from the end of the training portion, so that the test split stays exactly the course's (the
notebooks' test numbers remain comparable with the course's) and train + valid is exactly its
training split.
"""

# sha256 of each split's uint8 array bytes (row-major, shape (N, 784)), the content every copy shares.
MNIST_SHA256 = {
    "train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
    "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
    "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
}


@dataclass
class Dataset:
    """A dataset as the notebooks use it.

    `train`, `valid` and `test` are integer numpy arrays of shape (N, *shape) with values in
    [0, d - 1]; every dataset has all three (see VALID_FRACTION for those whose source has no
    validation split). For the 2D sets, `true_distribution[i, j]` is p(x0 = i, x1 = j), the table the
    samples were drawn from. All fields but `name` are keyword-only: three splits of one kind are
    easily passed in the wrong order, and a valid split taken for the test split would go unnoticed.
    """

    name: str
    _: KW_ONLY
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    d: int
    shape: tuple
    true_distribution: np.ndarray = None
    description: str = ""

    def __repr__(self):
        return (
            f"Dataset({self.name!r}: train={len(self.train)}, valid={len(self.valid)}, test={len(self.test)}, "
            f"d={self.d}, shape={self.shape})"
        )


def _split(data, fraction=0.8):
    """The course's split: the first 80% for training, the rest for testing."""
    split = int(fraction * len(data))
    return data[:split], data[split:]


def _carve_valid(train):
    """(train, valid): the last VALID_FRACTION of the course's training split becomes `valid`."""
    split = len(train) - round(VALID_FRACTION * len(train))
    return train[:split], train[split:]


def _three_splits(name, data, **fields):
    train, test = _split(data)
    train, valid = _carve_valid(train)
    return Dataset(name, train=train, valid=valid, test=test, **fields)


def _load_1d_1():
    """The course's sampler: 1000 draws of 0.4 + 0.1 N(0, 1), digitized into 20 bins."""
    rand = np.random.RandomState(0)
    samples = 0.4 + 0.1 * rand.randn(1000)
    return _three_splits(
        "1d-1",
        np.digitize(samples, np.linspace(0.0, 1.0, 20)),
        d=20,
        shape=(),
        description="1000 draws of 0.4 + 0.1 N(0,1) digitized into 20 bins",
    )


def _load_1d_2():
    """The course's sampler: 10000 draws of an equal mixture of two Gaussians, digitized into 100 bins."""
    count = 10000
    rand = np.random.RandomState(0)
    a = 0.3 + 0.1 * rand.randn(count)
    b = 0.8 + 0.05 * rand.randn(count)
    mask = rand.rand(count) < 0.5
    samples = np.clip(a * mask + b * (1 - mask), 0.0, 1.0)
    return _three_splits(
        "1d-2",
        np.digitize(samples, np.linspace(0.0, 1.0, 100)),
        d=100,
        shape=(),
        description="10000 draws of 0.5 N(0.3, 0.1^2) + 0.5 N(0.8, 0.05^2) digitized into 100 bins",
    )


def _open_image(path):
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except UnidentifiedImageError:  # its message names the path, which may be a staging folder's
        raise CorruptDataError("not a readable image: Pillow recognizes no image format in it.") from None
    except OSError as err:  # a truncated or damaged image
        raise CorruptDataError(f"not a readable image ({err}).") from None


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
    return _three_splits(
        name,
        np.stack([index // d, index % d], axis=1),
        d=d,
        shape=(2,),
        true_distribution=table,
        description=f"{n} pairs (x0, x1) drawn from the {d}x{d} grayscale image {filename}",
    )


def pair_frequencies(pairs, d):
    """Empirical p(x0 = i, x1 = j) of an (N, 2) array of pairs with values in [0, d - 1], as a (d, d) table."""
    d = check_integer(d, "d", 1, "the number of categories")
    pairs = as_categories(np.asarray(pairs), d, (2,), "pairs").numpy()
    if pairs.ndim != 2 or len(pairs) == 0:
        raise ValueError(f"pairs must be a non-empty (N, 2) array of pairs (x0, x1), got shape {pairs.shape}")
    return np.bincount(pairs[:, 0] * d + pairs[:, 1], minlength=d * d).reshape(d, d) / len(pairs)


SHAPES_TRAIN, SHAPES_TEST = 10479, 4491


def _load_shapes():
    course_files = find_local("shapes.pkl")
    if course_files:
        train, test = _read_course_shapes(course_files[0])
        description = f"the course's Shapes set, read from {course_files[0]} (binarized as the course does)"
    else:
        train, test = np.split(generate_shapes(SHAPES_TRAIN + SHAPES_TEST, size=20, seed=0), [SHAPES_TRAIN])
        description = "20x20 filled shapes generated by helpers.shapes (shape 0 on background 1)"
    train, valid = _carve_valid(train)
    return Dataset(
        "shapes", train=train, valid=valid, test=test, d=2, shape=(20, 20), description=description
    )


# What unpickling a dict of numpy arrays needs, for numpy 1.x and 2.x and pickle protocols 0 to 5:
# ndarray and dtype, the array reconstructors, and for protocols below 3 `_codecs.encode`, through
# which they store the array bytes as latin-1 text (it only converts between text and bytes).
_ARRAY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers (dicts, lists) of numpy arrays, and refuses any other global.

    `pickle.load` calls whatever a file names, so a crafted shapes.pkl could run any code; refusing
    every global that a dict of arrays does not need closes that door.
    """

    def find_class(self, module, name):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which a dict of numpy arrays never needs; "
                f"refused, since unpickling it could run arbitrary code"
            )
        return super().find_class(module, name)


def _read_course_shapes(path):
    """The course's shapes.pkl, binarized as the course's loader does: pixel values > 127.5 become 1.

    The file is a dict with 'train' and 'test' arrays of shape (N, 20, 20, 1), grayscale 0-255. A
    file already in {0, 1} (binarized before) is kept as is.
    """
    fix = "Remove it to use the generated Shapes set."
    try:
        with open(path, "rb") as f:
            content = _ArrayUnpickler(f).load()
    except Exception as err:  # a damaged or crafted pickle can raise almost anything
        raise CorruptDataError(f"{path} is not a readable pickle of numpy arrays: {err}. {fix}") from None
    if not isinstance(content, dict) or not {"train", "test"} <= content.keys():
        found = (
            f"keys {sorted(map(str, content))}"
            if isinstance(content, dict)
            else f"a {type(content).__name__}"
        )
        raise CorruptDataError(
            f"{path} is not the course's shapes.pkl, a dict with 'train' and 'test' arrays: "
            f"found {found}. {fix}"
        )
    arrays = [content["train"], content["test"]]
    for key, a in zip(("train", "test"), arrays):
        if (
            not isinstance(a, np.ndarray)
            or a.ndim != 4
            or a.shape[1:] != (20, 20, 1)
            or a.dtype.kind not in "biuf"
            or not ((a >= 0) & (a <= 255)).all()
        ):
            got = (
                f"shape {a.shape}, dtype {a.dtype}" if isinstance(a, np.ndarray) else f"a {type(a).__name__}"
            )
            raise CorruptDataError(
                f"{path}: '{key}' should be an (N, 20, 20, 1) array of pixel values in [0, 255], "
                f"got {got}. {fix}"
            )
    if all(np.isin(a, (0, 1)).all() for a in arrays):
        return [a[..., 0].astype(np.uint8) for a in arrays]
    return [(a[..., 0] > 127.5).astype(np.uint8) for a in arrays]


def _check_mnist(split, array):
    """`array` as binarized MNIST's uint8 (N, 784) `split`, or CorruptDataError saying how it differs.

    Another numeric dtype is accepted when every value is exactly 0 or 1 (the same images, saved as
    float32 or int64 by some other tool) and converted to uint8; the checksum then decides.
    """
    if array.dtype.kind not in "biuf" or array.ndim < 2 or np.prod(array.shape[1:]) != 784:
        raise CorruptDataError(
            f"the {split} array has shape {array.shape} and dtype {array.dtype}, expected (N, 784) numbers."
        )
    binary = (array == 0) | (array == 1)
    if not binary.all():
        raise CorruptDataError(
            f"the {split} array ({array.dtype}) holds values other than 0 and 1, such as "
            f"{np.unique(array[~binary])[:3]}: it is not binarized MNIST."
        )
    images = array.reshape(len(array), 784).astype(np.uint8)
    digest = hashlib.sha256(images.tobytes()).hexdigest()
    if digest != MNIST_SHA256[split]:
        raise CorruptDataError(
            f"the {split} array ({len(images)} images) does not match binarized MNIST "
            f"(sha256 {digest}, expected {MNIST_SHA256[split]})."
        )
    return images


def _parse_mnist_npz(path):
    # Checked first: on anything but a zip archive (an error page, say) np.load's own message
    # suggests unpickling the file.
    with open(path, "rb") as f:
        start = f.read(40)
    if not start.startswith(b"PK"):
        raise CorruptDataError(f"not an npz file (a zip archive); it begins with {start!r}.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {split: npz[f"{split}_data"] for split in MNIST_SHA256}
    except Exception as err:
        raise CorruptDataError(
            f"not a readable npz with train_data, valid_data and test_data arrays ({err!r})."
        ) from None
    return {split: _check_mnist(split, a) for split, a in arrays.items()}


def _amat_parser(split):
    def parse(path):
        text = path.read_bytes()
        raw = np.frombuffer(text, dtype=np.uint8)
        bits = raw[(raw == ord("0")) | (raw == ord("1"))] - ord("0")
        rows = sum(
            1 for line in text.splitlines() if line.strip()
        )  # a final newline or blank lines do not count
        if rows == 0 or bits.size != rows * 784:
            raise CorruptDataError(
                f"not a binarized MNIST .amat file: {bits.size} binary values on {rows} "
                f"non-empty lines, expected 784 per line."
            )
        return _check_mnist(split, bits.reshape(rows, 784))

    return parse


def _read_mnist_npz():
    return fetch("binarized_mnist.npz", _parse_mnist_npz)


def _read_mnist_amat():
    return {s: fetch(f"binarized_mnist_{s}.amat", _amat_parser(s)) for s in MNIST_SHA256}


def _load_mnist():
    """Whichever format is already on disk first; else the npz, and the text files if it fails."""
    amat_on_disk = all(find_local(f"binarized_mnist_{s}.amat") for s in MNIST_SHA256)
    readers = [_read_mnist_npz, _read_mnist_amat]
    if amat_on_disk and not find_local("binarized_mnist.npz"):
        readers.reverse()
    errors = []
    for read in readers:
        try:
            arrays = read()
            break
        except (DataNotFoundError, CorruptDataError) as err:
            errors.append(err)
    else:
        kind = CorruptDataError if any(isinstance(e, CorruptDataError) for e in errors) else DataNotFoundError
        raise kind("Binarized MNIST is not available. Tried:\n" + "\n".join(f"- {e}" for e in errors))
    if errors:
        warnings.warn(f"{errors[0]}\nRead binarized MNIST from its other format instead.", stacklevel=3)
    images = {s: a.reshape(-1, 28, 28) for s, a in arrays.items()}
    return Dataset(
        "mnist",
        train=images["train"],
        valid=images["valid"],
        test=images["test"],
        d=2,
        shape=(28, 28),
        description="binarized MNIST of Larochelle and Murray (2011), 28x28, values in {0, 1}",
    )


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
