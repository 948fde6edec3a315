import hashlib
import http.server
import pickle
import socket
import threading

import numpy as np
import pytest

from helpers import data
from helpers.data import CorruptDataError, DataNotFoundError, load_dataset, pair_frequencies
from helpers.shapes import KINDS, generate_shapes


# --------------------------------------------------------------------------------------------------
# fixtures: an empty cache and data folder, and a local HTTP server


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """An empty cache (data/) and an empty $HELPERS_DATA_DIR, instead of the real ones."""
    cache, user = tmp_path / "cache", tmp_path / "user"
    user.mkdir()
    monkeypatch.setattr(data, "DATA_DIR", cache)
    monkeypatch.setenv("HELPERS_DATA_DIR", str(user))
    return cache, user


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> bytes
    truncated = {}  # path -> (announced length, bytes actually sent)

    def do_GET(self):
        if self.path in self.truncated:
            length, body = self.truncated[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.files, _Handler.truncated = {}, {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _register(monkeypatch, name, url, content=None):
    sha = hashlib.sha256(content).hexdigest() if content is not None else None
    monkeypatch.setitem(data.REMOTE_FILES, name, data.RemoteFile(url, sha))


def _read_bytes(path):
    return path.read_bytes()


def _files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------------------------------
# the datasets


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


@pytest.mark.parametrize("name, recipe, d", [("1d-1", _course_sample_data_1, 20), ("1d-2", _course_sample_data_2, 100)])
def test_1d_datasets_equal_the_course_recipe(name, recipe, d):
    ds = load_dataset(name)
    train, test = recipe()
    np.testing.assert_array_equal(ds.train, train)
    np.testing.assert_array_equal(ds.test, test)
    assert ds.d == d and ds.shape == ()
    assert 0 <= ds.train.min() and max(ds.train.max(), ds.test.max()) <= d - 1


def _chi2_upper(k, z=4.0):
    """Wilson-Hilferty approximation of the chi-square quantile with k degrees of freedom, z sigmas up."""
    return k * (1 - 2 / (9 * k) + z * np.sqrt(2 / (9 * k))) ** 3


@pytest.mark.parametrize("name, d, n", [("smiley", 25, 10000), ("hinton", 200, 100000)])
def test_2d_datasets_follow_their_table(name, d, n):
    ds = load_dataset(name)
    table = ds.true_distribution
    assert table.shape == (d, d) and np.isclose(table.sum(), 1.0) and (table >= 0).all()
    assert ds.d == d and ds.shape == (2,) and len(ds.train) == 0.8 * n and len(ds.test) == 0.2 * n
    pairs = np.concatenate([ds.train, ds.test])
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
    # And the draw is reproducible.
    np.testing.assert_array_equal(load_dataset(name).train, ds.train)


def test_2d_table_follows_the_image():
    table = load_dataset("smiley").true_distribution
    # The smiley's eyes are dark (improbable) and the background light (probable).
    assert table[8, 9] < 0.2 * table[0, 0]


def test_shapes_are_deterministic_binary_and_counted():
    ds = load_dataset("shapes")
    assert (len(ds.train), len(ds.test)) == (10479, 4491)
    assert ds.train.shape[1:] == ds.test.shape[1:] == (20, 20) == ds.shape
    assert ds.d == 2 and ds.train.dtype == np.uint8
    for images in (ds.train, ds.test):
        assert set(np.unique(images)) == {0, 1}
        shape_pixels = (images == 0).sum(axis=(1, 2))
        assert (shape_pixels > 0).all() and (shape_pixels < 400).all()
        assert (images.mean() > 0.5)  # background of 1, shapes of 0
    np.testing.assert_array_equal(generate_shapes(50, seed=3), generate_shapes(50, seed=3))
    assert not np.array_equal(generate_shapes(50, seed=3), generate_shapes(50, seed=4))
    assert len(KINDS) == 6


def test_course_shapes_file_is_used_when_present(folders):
    _, user = folders
    rng = np.random.RandomState(0)
    content = {"train": rng.randint(0, 2, (7, 20, 20, 1)).astype(np.uint8),
               "test": rng.randint(0, 2, (3, 20, 20, 1)).astype(np.uint8)}
    with open(user / "shapes.pkl", "wb") as f:
        pickle.dump(content, f)
    ds = load_dataset("shapes")
    np.testing.assert_array_equal(ds.train, content["train"][..., 0])
    np.testing.assert_array_equal(ds.test, content["test"][..., 0])
    assert "shapes.pkl" in ds.description


def test_malformed_course_shapes_file_is_rejected(folders):
    _, user = folders
    with open(user / "shapes.pkl", "wb") as f:
        pickle.dump({"train": np.zeros((3, 28, 28)), "test": np.zeros((3, 28, 28))}, f)
    with pytest.raises(CorruptDataError, match=r"shapes\.pkl.*\(N, 20, 20, 1\)"):
        load_dataset("shapes")
    (user / "shapes.pkl").write_bytes(b"not a pickle")
    with pytest.raises(CorruptDataError, match="not the course's shapes.pkl"):
        load_dataset("shapes")


def test_unknown_dataset_lists_the_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnsit'.*1d-1, 1d-2, smiley, hinton, shapes, mnist"):
        load_dataset("mnsit")


# --------------------------------------------------------------------------------------------------
# binarized MNIST: both formats, checksums


@pytest.fixture
def small_mnist(monkeypatch):
    """Small random 'MNIST' splits, with the loader's checksums set to theirs."""
    rng = np.random.RandomState(0)
    arrays = {s: rng.randint(0, 2, (n, 784)).astype(np.uint8) for s, n in (("train", 5), ("valid", 2), ("test", 3))}
    monkeypatch.setattr(data, "MNIST_SHA256", {s: hashlib.sha256(a.tobytes()).hexdigest() for s, a in arrays.items()})
    return arrays


def _write_amat(path, array):
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in array))


def _check_mnist(ds, arrays):
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(ds, split), arrays[split].reshape(-1, 28, 28))
    assert ds.d == 2 and ds.shape == (28, 28)


def test_mnist_reads_npz(folders, small_mnist):
    _, user = folders
    np.savez(user / "binarized_mnist.npz", **{f"{s}_data": a for s, a in small_mnist.items()})
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
    np.savez(user / "binarized_mnist.npz", **{f"{s}_data": a for s, a in flipped.items()})
    with pytest.raises(CorruptDataError, match=r"binarized_mnist\.npz: the test array .* does not match"):
        load_dataset("mnist")
    assert (user / "binarized_mnist.npz").exists()  # the user's file is named, not deleted


def test_mnist_rejects_a_truncated_amat(folders, small_mnist):
    _, user = folders
    for split, array in small_mnist.items():
        _write_amat(user / f"binarized_mnist_{split}.amat", array)
    text = (user / "binarized_mnist_train.amat").read_text()
    (user / "binarized_mnist_train.amat").write_text(text[: len(text) // 2])
    with pytest.raises(CorruptDataError, match=r"binarized_mnist_train\.amat is not a binarized MNIST"):
        load_dataset("mnist")


def test_real_mnist_matches_its_checksums():
    if not any((folder / "binarized_mnist.npz").exists() for folder in data.data_dirs()):
        pytest.skip("binarized_mnist.npz is not on this machine (set HELPERS_DATA_DIR)")
    ds = load_dataset("mnist")
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (50000, 10000, 10000)
    assert abs(ds.train.mean() - 0.13056) < 1e-5


# --------------------------------------------------------------------------------------------------
# the download path, against a local HTTP server


def test_download_lands_in_the_cache_after_its_checksum(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    _register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    assert data.fetch("tiny.bin", _read_bytes) == b"tiny content"
    assert _files_under(cache) == ["tiny.bin"]
    handler.files.clear()  # now offline: the cached file serves
    assert data.fetch("tiny.bin", _read_bytes) == b"tiny content"


def test_download_with_a_wrong_checksum_leaves_nothing(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"other content"
    _register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    with pytest.raises(CorruptDataError, match=r"tiny\.bin downloaded from .* failed its checksum"):
        data.fetch("tiny.bin", _read_bytes)
    assert _files_under(cache) == []


def test_interrupted_download_leaves_nothing(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.truncated["/tiny.bin"] = (100000, b"only the start")
    _register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"x" * 100000)
    with pytest.raises(DataNotFoundError, match="tiny.bin"):
        data.fetch("tiny.bin", _read_bytes)
    assert _files_under(cache) == []


def test_offline_error_names_the_file_the_address_and_the_fix(folders, monkeypatch):
    cache, _ = folders
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/smiley.jpg"
    _register(monkeypatch, "smiley.jpg", url, b"whatever")
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("smiley")
    message = str(err.value)
    assert "smiley.jpg" in message and url in message and "by hand" in message and str(cache) in message
    assert _files_under(cache) == []


def test_non_image_download_is_rejected_and_not_cached(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/smiley.jpg"] = b"<html>not found</html>"
    _register(monkeypatch, "smiley.jpg", base + "/smiley.jpg")  # no file checksum: the image check must catch it
    with pytest.raises(CorruptDataError, match="not a readable image"):
        load_dataset("smiley")
    assert _files_under(cache) == []


def test_corrupt_file_in_the_cache_is_replaced(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    _register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"tiny cont")  # truncated by an earlier crash, say
    assert data.fetch("tiny.bin", _read_bytes) == b"tiny content"
    assert (cache / "tiny.bin").read_bytes() == b"tiny content"


def test_corrupt_file_in_the_users_folder_is_named_with_the_fix(folders, monkeypatch):
    _, user = folders
    _register(monkeypatch, "tiny.bin", "http://127.0.0.1:9/tiny.bin", b"tiny content")
    (user / "tiny.bin").write_bytes(b"tiny cont")
    with pytest.raises(CorruptDataError, match=r"tiny\.bin has sha256 .* expected .*\nReplace it with the file from"):
        data.fetch("tiny.bin", _read_bytes)
    assert (user / "tiny.bin").exists()
