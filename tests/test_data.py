import hashlib
import os
import pickle

import numpy as np
import pytest

# The fixtures and helpers of the download tests: an empty cache and data folder, a local HTTP server.
from test_download import dead_url, files_under, folders, register, server  # noqa: F401

from helpers import data, download
from helpers.data import VALID_FRACTION, CorruptDataError, DataNotFoundError, load_dataset, pair_frequencies
from helpers.shapes import generate_shapes

SPLIT_SIZES = {  # train, valid, test
    "1d-1": (640, 160, 200),
    "1d-2": (6400, 1600, 2000),
    "smiley": (6400, 1600, 2000),
    "hinton": (64000, 16000, 20000),
    "shapes": (8383, 2096, 4491),
}

# sha256 of each split of the 1D sets as little-endian int64 bytes, computed once from the code.
ONE_D_SHA256 = {
    "1d-1": {
        "train": "20c34a63f85d73987450db39e9c431517386d1bd11d7f4ef274257cab7493201",
        "valid": "f19c5c03b66e0e9437cb7eae5c809a7772b0e1daba792b4e4ccb1bb774f3935b",
        "test": "3e67a19a18d5e1e1b665c5ad6d1c73a8ae1677eba50ccc91aa683bd67f04e7c9",
    },
    "1d-2": {
        "train": "301129f8cdfab1fdbef610dea9ad72f563b1ad5beadd70a754f37e0f7d8861e2",
        "valid": "536c8a2da25e19e36079afa9644948342c2a6a15757cc56f90d772d11e3b32ef",
        "test": "3cb0b0e12f9e5340ee6ecab113038b5fbfbee5427ed221d18eb9942136eb52cc",
    },
}

# sha256 of generate_shapes(10479 + 4491, size=20, seed=0), the Shapes set, as uint8 bytes.
SHAPES_SHA256 = "40f9fa345a3cf083c7a1e1caa8ebeda94464b741b0b5b521679faccba4e0aea7"


# --------------------------------------------------------------------------------------------------
# the datasets and their splits


@pytest.mark.parametrize("name", sorted(SPLIT_SIZES))
def test_splits_are_deterministic_and_sized(name):
    ds, again = load_dataset(name), load_dataset(name)
    train, valid, test = SPLIT_SIZES[name]
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (train, valid, test)
    assert valid == round(VALID_FRACTION * (train + valid))
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(ds, split), getattr(again, split))
    assert (
        repr(ds)
        == f"Dataset({name!r}: train={train}, valid={valid}, test={test}, d={ds.d}, shape={ds.shape})"
    )


def test_dataset_splits_are_keyword_only():
    pairs = np.zeros((4, 2), dtype=int)
    with pytest.raises(
        TypeError, match="positional"
    ):  # (train, valid, test) or (train, test)? Neither is taken.
        data.Dataset("toy", pairs, pairs[:1], pairs[:2], d=2, shape=(2,))
    ds = data.Dataset("toy", test=pairs[:1], valid=pairs[:2], train=pairs, d=2, shape=(2,))
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (4, 2, 1)


def _course_sample_data_1():
    # The course's own code (deepul, homework 1), verbatim but for names.
    count = 1000
    rand = np.random.RandomState(0)
    samples = 0.4 + 0.1 * rand.randn(count)
    data_ = np.digitize(samples, np.linspace(0.0, 1.0, 20))
    split = int(0.8 * len(data_))
    return data_[:split], data_[split:]


def _course_sample_data_2():
    count = 10000
    rand = np.random.RandomState(0)
    a = 0.3 + 0.1 * rand.randn(count)
    b = 0.8 + 0.05 * rand.randn(count)
    mask = rand.rand(count) < 0.5
    samples = np.clip(a * mask + b * (1 - mask), 0.0, 1.0)
    data_ = np.digitize(samples, np.linspace(0.0, 1.0, 100))
    split = int(0.8 * len(data_))
    return data_[:split], data_[split:]


@pytest.mark.parametrize(
    "name, recipe, d", [("1d-1", _course_sample_data_1, 20), ("1d-2", _course_sample_data_2, 100)]
)
def test_1d_datasets_equal_the_course_recipe(name, recipe, d):
    ds = load_dataset(name)
    train, test = recipe()
    # Valid is the end of the course's training split: train + valid is that split, the test split is the course's.
    np.testing.assert_array_equal(np.concatenate([ds.train, ds.valid]), train)
    np.testing.assert_array_equal(ds.test, test)
    assert ds.d == d and ds.shape == ()
    assert 0 <= ds.train.min() and max(ds.train.max(), ds.valid.max(), ds.test.max()) <= d - 1


@pytest.mark.parametrize("name", sorted(ONE_D_SHA256))
def test_1d_datasets_are_pinned_by_their_digests(name):
    ds = load_dataset(name)
    digests = {
        split: hashlib.sha256(np.ascontiguousarray(getattr(ds, split), dtype="<i8").tobytes()).hexdigest()
        for split in ("train", "valid", "test")
    }
    assert digests == ONE_D_SHA256[name]


def _chi2_upper(k, z=4.0):
    """Wilson-Hilferty approximation of the chi-square quantile with k degrees of freedom, z sigmas up."""
    return k * (1 - 2 / (9 * k) + z * np.sqrt(2 / (9 * k))) ** 3


@pytest.mark.parametrize("name, d, n", [("smiley", 25, 10000), ("hinton", 200, 100000)])
def test_2d_datasets_follow_their_table(name, d, n):
    ds = load_dataset(name)
    table = ds.true_distribution
    assert table.shape == (d, d) and np.isclose(table.sum(), 1.0) and (table >= 0).all()
    assert ds.d == d and ds.shape == (2,)
    pairs = np.concatenate([ds.train, ds.valid, ds.test])
    assert len(pairs) == n
    # Chi-square goodness of fit on a 25x25 grid of blocks (hinton's 40000 single cells are too sparse),
    # on the blocks expected to hold at least 5 draws, plus one cell for the rest.
    f = d // 25
    expected = table.reshape(25, f, 25, f).sum(axis=(1, 3)).reshape(-1) * n
    observed = pair_frequencies(pairs, d).reshape(25, f, 25, f).sum(axis=(1, 3)).reshape(-1) * n
    big = expected >= 5
    exp_cells = np.append(expected[big], expected[~big].sum()) if (~big).any() else expected
    obs_cells = np.append(observed[big], observed[~big].sum()) if (~big).any() else observed
    chi2 = ((obs_cells - exp_cells) ** 2 / exp_cells).sum()
    assert chi2 < _chi2_upper(len(exp_cells) - 1), f"chi-square {chi2:.0f} on {len(exp_cells) - 1} dof"


@pytest.mark.parametrize("name, d, n", [("smiley", 25, 10000), ("hinton", 200, 100000)])
def test_2d_splits_cut_the_draw_at_the_right_places(name, d, n):
    # Pairs repeat, so disjointness is a matter of index ranges: train, valid, test are consecutive
    # pieces of the one seeded draw, and train + valid is the course's 80%.
    ds = load_dataset(name)
    index = np.random.RandomState(0).choice(d * d, size=n, p=ds.true_distribution.reshape(-1))
    draw = np.stack([index // d, index % d], axis=1)
    np.testing.assert_array_equal(np.concatenate([ds.train, ds.valid]), draw[: int(0.8 * n)])
    np.testing.assert_array_equal(ds.test, draw[int(0.8 * n) :])


def test_2d_table_follows_the_image():
    table = load_dataset("smiley").true_distribution
    # The smiley's eyes are dark (improbable) and the background light (probable).
    assert table[8, 9] < 0.2 * table[0, 0]


def test_pair_frequencies_count_each_pair_in_its_cell():
    table = pair_frequencies([[0, 1], [0, 1], [2, 0], [1, 2]], 3)
    np.testing.assert_array_equal(table, [[0, 0.5, 0], [0, 0, 0.25], [0.25, 0, 0]])


@pytest.mark.parametrize(
    "pairs, d, match",
    [
        (
            [[0, 2], [1, 1]],
            2,
            r"pairs has values in \[0, 2\], outside the categories \[0, 1\]",
        ),  # (0, 2) is not (1, 0)
        ([[0, -1]], 2, r"values in \[-1, 0\], outside"),
        (np.zeros((0, 2), dtype=int), 2, r"non-empty \(N, 2\) array of pairs .* shape \(0, 2\)"),
        ([[0, 1, 1]], 2, r"trailing shape \(2,\)"),
        (np.zeros((2, 2, 2), dtype=int), 2, r"non-empty \(N, 2\) array of pairs .* shape \(2, 2, 2\)"),
        ([[0.0, 1.0]], 2, "integer categories"),
        ([[0, 1]], 0, r"d \(the number of categories\) must be an integer >= 1"),
    ],
)
def test_pair_frequencies_refuse_pairs_outside_the_table_and_empty_input(pairs, d, match):
    with pytest.raises(ValueError, match=match):
        pair_frequencies(pairs, d)


def test_shapes_are_deterministic_binary_and_counted():
    ds = load_dataset("shapes")
    assert ds.train.shape[1:] == ds.valid.shape[1:] == ds.test.shape[1:] == (20, 20) == ds.shape
    assert ds.d == 2 and ds.train.dtype == np.uint8
    for images in (ds.train, ds.valid, ds.test):
        assert set(np.unique(images)) == {0, 1}
        shape_pixels = (images == 0).sum(axis=(1, 2))
        assert (shape_pixels > 0).all() and (shape_pixels < 400).all()
        assert images.mean() > 0.5  # background of 1, shapes of 0
    np.testing.assert_array_equal(generate_shapes(50, seed=3), generate_shapes(50, seed=3))
    assert not np.array_equal(generate_shapes(50, seed=3), generate_shapes(50, seed=4))


def test_the_generated_shapes_are_pinned_by_their_digest():
    """The generator draws from numpy's frozen legacy RandomState: its images must never change, or every
    number reported on Shapes would silently refer to other data."""
    images = generate_shapes(10479 + 4491, size=20, seed=0)
    assert hashlib.sha256(images.tobytes()).hexdigest() == SHAPES_SHA256


def test_shapes_splits_cut_the_generated_set_at_the_right_places():
    # Disjoint as index ranges of the generated set. Not quite as images: small shapes repeat, and 6
    # valid images equal test images bit for bit, so no bitwise disjointness is asserted.
    ds = load_dataset("shapes")
    everything = generate_shapes(10479 + 4491, size=20, seed=0)
    np.testing.assert_array_equal(np.concatenate([ds.train, ds.valid]), everything[:10479])
    np.testing.assert_array_equal(ds.test, everything[10479:])


def _write_pickle(path, content, protocol=pickle.DEFAULT_PROTOCOL):
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("grayscale", [True, False], ids=["grayscale 0-255", "already 0-1"])
def test_course_shapes_file_is_read_as_the_course_reads_it(folders, protocol, grayscale):
    _, user = folders
    rng = np.random.RandomState(0)
    high = 256 if grayscale else 2
    content = {
        "train": rng.randint(0, high, (12, 20, 20, 1)).astype(np.uint8),
        "test": rng.randint(0, high, (3, 20, 20, 1)).astype(np.uint8),
    }
    if grayscale:
        content["train"][0, :2, 0, 0] = 127, 128  # either side of the course's threshold
    _write_pickle(user / "shapes.pkl", content, protocol)
    ds = load_dataset("shapes")
    # The course's loader: (data > 127.5).astype('uint8'); a file of 0/1 values is taken as it is.
    expected = {
        k: (a[..., 0] > 127.5).astype(np.uint8) if grayscale else a[..., 0] for k, a in content.items()
    }
    np.testing.assert_array_equal(np.concatenate([ds.train, ds.valid]), expected["train"])
    np.testing.assert_array_equal(ds.test, expected["test"])
    assert (len(ds.train), len(ds.valid)) == (10, 2)
    assert "shapes.pkl" in ds.description


@pytest.mark.parametrize(
    "content, match",
    [
        (
            {"train": np.zeros((3, 28, 28)), "test": np.zeros((3, 28, 28))},
            r"'train' should be an \(N, 20, 20, 1\) array",
        ),
        (
            {"train": np.full((3, 20, 20, 1), 300), "test": np.zeros((3, 20, 20, 1))},
            r"pixel values in \[0, 255\]",
        ),
        (
            {"train": np.full((3, 20, 20, 1), np.nan), "test": np.zeros((3, 20, 20, 1))},
            r"pixel values in \[0, 255\]",
        ),
        ({"train": np.full((3, 20, 20, 1), "a"), "test": np.zeros((3, 20, 20, 1))}, r"dtype <U1"),
        ({"train": np.zeros((3, 20, 20, 1))}, r"not the course's shapes.pkl, .*found keys \['train'\]"),
        ([np.zeros((3, 20, 20, 1))], r"not the course's shapes.pkl, .*found a list"),
        ({"train": np.zeros((3, 20, 20, 1)), "test": [[0, 1]]}, r"'test' should be .*got a list"),
    ],
    ids=["28x28", "above 255", "nan", "strings", "no test", "a list", "a list for an array"],
)
def test_malformed_course_shapes_file_is_rejected(folders, content, match):
    _, user = folders
    _write_pickle(user / "shapes.pkl", content)
    with pytest.raises(CorruptDataError, match=r"shapes\.pkl.*" + match):
        load_dataset("shapes")


def test_a_course_shapes_file_that_is_no_pickle_is_rejected(folders):
    _, user = folders
    (user / "shapes.pkl").write_bytes(b"not a pickle")
    with pytest.raises(CorruptDataError, match=r"shapes\.pkl is not a readable pickle of numpy arrays"):
        load_dataset("shapes")


class _RunsACommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_course_shapes_file_cannot_run_code(folders, tmp_path, protocol):
    _, user = folders
    marker = tmp_path / "ran"
    _write_pickle(
        user / "shapes.pkl", {"train": _RunsACommand(f"touch {marker}"), "test": np.zeros(1)}, protocol
    )
    with pytest.raises(
        CorruptDataError, match=r"shapes\.pkl is not a readable pickle .*refers to \w+\.system.*refused"
    ):
        load_dataset("shapes")
    assert not marker.exists()


def test_unknown_dataset_lists_the_names():
    with pytest.raises(
        ValueError, match="unknown dataset 'mnsit'.*1d-1, 1d-2, smiley, hinton, shapes, mnist"
    ):
        load_dataset("mnsit")


# --------------------------------------------------------------------------------------------------
# binarized MNIST: both formats, checksums, falling back from one to the other


@pytest.fixture
def small_mnist(monkeypatch):
    """Small random 'MNIST' splits, with the loader's checksums set to theirs, and no real address to download from."""
    rng = np.random.RandomState(0)
    arrays = {
        s: rng.randint(0, 2, (n, 784)).astype(np.uint8) for s, n in (("train", 5), ("valid", 2), ("test", 3))
    }
    monkeypatch.setattr(
        data, "MNIST_SHA256", {s: hashlib.sha256(a.tobytes()).hexdigest() for s, a in arrays.items()}
    )
    for name in ["binarized_mnist.npz"] + [f"binarized_mnist_{s}.amat" for s in arrays]:
        register(monkeypatch, name, dead_url(name))
    return arrays


def _amat_text(array):
    return "".join(" ".join(map(str, row)) + "\n" for row in array)


def _write_amat(path, array):
    path.write_text(_amat_text(array))


def _npz_bytes(path, arrays):
    np.savez(path, **{f"{s}_data": a for s, a in arrays.items()})
    return path.read_bytes()


def _check_mnist(ds, arrays):
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(ds, split), arrays[split].reshape(-1, 28, 28))
    assert ds.d == 2 and ds.shape == (28, 28) and ds.train.dtype == np.uint8


def test_mnist_reads_npz(folders, small_mnist):
    _, user = folders
    _npz_bytes(user / "binarized_mnist.npz", small_mnist)
    _check_mnist(load_dataset("mnist"), small_mnist)


def test_mnist_reads_amat(folders, small_mnist):
    _, user = folders
    for split, array in small_mnist.items():
        _write_amat(user / f"binarized_mnist_{split}.amat", array)
    _check_mnist(load_dataset("mnist"), small_mnist)


def test_mnist_rejects_a_corrupted_npz(folders, small_mnist):
    _, user = folders
    flipped = dict(small_mnist, test=small_mnist["test"].copy())
    flipped["test"][0, 0] ^= 1
    _npz_bytes(user / "binarized_mnist.npz", flipped)
    with pytest.raises(CorruptDataError, match=r"binarized_mnist\.npz: the test array .* does not match"):
        load_dataset("mnist")
    assert (user / "binarized_mnist.npz").exists()  # the user's file is named, not deleted


def test_mnist_rejects_a_truncated_amat(folders, small_mnist):
    _, user = folders
    for split, array in small_mnist.items():
        _write_amat(user / f"binarized_mnist_{split}.amat", array)
    text = (user / "binarized_mnist_train.amat").read_text()
    (user / "binarized_mnist_train.amat").write_text(text[: len(text) // 2])
    with pytest.raises(CorruptDataError, match=r"binarized_mnist_train\.amat: not a binarized MNIST"):
        load_dataset("mnist")


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.float32, np.float64, bool])
def test_mnist_accepts_its_values_in_another_dtype(folders, small_mnist, dtype):
    _, user = folders
    _npz_bytes(user / "binarized_mnist.npz", {s: a.astype(dtype) for s, a in small_mnist.items()})
    _check_mnist(load_dataset("mnist"), small_mnist)


def _npz_without_valid(path, arrays):
    return _npz_bytes(path, {s: a for s, a in arrays.items() if s != "valid"})


@pytest.mark.parametrize(
    "content, match",
    [
        (
            lambda path, arrays: b"<html>Not Found</html>",
            r"not an npz file \(a zip archive\); it begins with b'<html>Not",
        ),
        (lambda path, arrays: b"", r"not an npz file \(a zip archive\); it begins with b''"),
        (
            lambda path, arrays: _npz_bytes(path, arrays)[:300],
            r"not a readable npz with train_data, .* \(BadZipFile",
        ),
        (
            _npz_without_valid,
            r"not a readable npz with train_data, valid_data and test_data arrays \(KeyError",
        ),
    ],
    ids=["an error page", "empty", "truncated", "no valid_data"],
)
def test_mnist_names_what_is_wrong_with_an_npz_file(folders, small_mnist, tmp_path, content, match):
    _, user = folders
    (user / "binarized_mnist.npz").write_bytes(content(tmp_path / "made.npz", small_mnist))
    with pytest.raises(CorruptDataError, match=r"binarized_mnist\.npz: " + match):
        load_dataset("mnist")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a: a * 0.5, r"the train array \(float64\) holds values other than 0 and 1, such as \[0.5\]"),
        (
            lambda a: a.astype(np.int16) * 255,
            r"the train array \(int16\) holds values other than 0 and 1, such as \[255\]",
        ),
        (
            lambda a: a.astype(str),
            r"the train array has shape \(5, 784\) and dtype <U\d+, expected \(N, 784\) numbers",
        ),
        (lambda a: a[:, :783], r"the train array has shape \(5, 783\) and dtype uint8, expected \(N, 784\)"),
        (
            lambda a: a[::-1],
            r"the train array \(5 images\) does not match binarized MNIST \(sha256 \w+, expected \w+\)",
        ),
    ],
    ids=["halves", "0-255", "strings", "783 columns", "reordered"],
)
def test_mnist_names_what_is_wrong_with_an_npz_array(folders, small_mnist, change, match):
    _, user = folders
    _npz_bytes(user / "binarized_mnist.npz", dict(small_mnist, train=change(small_mnist["train"])))
    with pytest.raises(CorruptDataError, match=match):
        load_dataset("mnist")


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.rstrip("\n"),
        lambda text: text + "\n",
        lambda text: text + "\n\n  \n",
        lambda text: text.replace("\n", "\r\n"),
        lambda text: text.replace("\n", " \n", 1),
    ],
    ids=["no final newline", "a blank line at the end", "blank lines at the end", "CRLF", "a trailing space"],
)
def test_mnist_reads_amat_files_with_other_line_ends(folders, small_mnist, edit):
    _, user = folders
    for split, array in small_mnist.items():
        (user / f"binarized_mnist_{split}.amat").write_bytes(edit(_amat_text(array)).encode())
    _check_mnist(load_dataset("mnist"), small_mnist)


def test_mnist_falls_back_to_amat_when_the_downloaded_npz_is_an_error_page(
    folders, small_mnist, server, monkeypatch
):
    cache, _ = folders
    handler, base = server
    handler.files["/binarized_mnist.npz"] = b"<html>Rate limit exceeded</html>"
    register(monkeypatch, "binarized_mnist.npz", base + "/binarized_mnist.npz")
    for split, array in small_mnist.items():
        handler.files[f"/binarized_mnist_{split}.amat"] = _amat_text(array).encode()
        register(monkeypatch, f"binarized_mnist_{split}.amat", f"{base}/binarized_mnist_{split}.amat")
    with pytest.warns(
        UserWarning,
        match=rf"binarized_mnist\.npz downloaded from {base}/binarized_mnist\.npz: "
        r"not an npz file \(a zip archive\); it begins with b'<html>Rate.*\n.*nothing was cached",
    ):
        ds = load_dataset("mnist")
    _check_mnist(ds, small_mnist)
    assert files_under(cache) == [f"binarized_mnist_{s}.amat" for s in ("test", "train", "valid")]


def test_mnist_falls_back_to_amat_next_to_a_corrupt_npz(folders, small_mnist):
    _, user = folders
    (user / "binarized_mnist.npz").write_bytes(b"<html>")
    for split, array in small_mnist.items():
        _write_amat(user / f"binarized_mnist_{split}.amat", array)
    with pytest.warns(UserWarning, match=r"binarized_mnist\.npz: not an npz file"):
        ds = load_dataset("mnist")
    _check_mnist(ds, small_mnist)


def test_mnist_error_names_every_file_tried_and_why(folders, small_mnist, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/binarized_mnist.npz"] = b"<html>Rate limit exceeded</html>"
    npz_url = base + "/binarized_mnist.npz"
    register(monkeypatch, "binarized_mnist.npz", npz_url)
    with pytest.raises(CorruptDataError) as err:
        load_dataset("mnist")
    message = str(err.value)
    assert f"binarized_mnist.npz downloaded from {npz_url}: not an npz file" in message
    amat_url = download.REMOTE_FILES["binarized_mnist_train.amat"].url
    assert "binarized_mnist_train.amat is not in" in message and amat_url in message
    assert ".partial" not in message and files_under(cache) == []


def test_mnist_not_found_anywhere_is_not_called_corrupt(folders, small_mnist):
    with pytest.raises(
        DataNotFoundError, match=r"(?s)binarized_mnist\.npz is not in.*binarized_mnist_train\.amat"
    ):
        load_dataset("mnist")


def test_real_mnist_matches_its_checksums():
    if not any((folder / "binarized_mnist.npz").exists() for folder in data.data_dirs()):
        pytest.skip("binarized_mnist.npz is not on this machine (set HELPERS_DATA_DIR)")
    ds = load_dataset("mnist")
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (50000, 10000, 10000)
    assert abs(ds.train.mean() - 0.13056) < 1e-5
    # The validation split is the source's own; no validation image equals a test image bit for bit.
    assert not {image.tobytes() for image in ds.valid} & {image.tobytes() for image in ds.test}
