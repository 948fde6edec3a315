import errno
import hashlib
import http.server
import io
import os
import pathlib
import re
import socket
import threading
import time
from pathlib import Path

import pooch
import pytest

from helpers import download
from helpers.data import load_dataset
from helpers.download import CorruptDataError, DataNotFoundError

# --------------------------------------------------------------------------------------------------
# fixtures: an empty cache and data folder, a local HTTP server, simulated permission faults


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """An empty cache (data/) and an empty $HELPERS_DATA_DIR, instead of the real ones."""
    cache, user = tmp_path / "cache", tmp_path / "user"
    user.mkdir()
    monkeypatch.setattr(download, "DATA_DIR", cache)
    monkeypatch.setenv("HELPERS_DATA_DIR", str(user))
    return cache, user


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> bytes
    truncated = {}  # path -> (announced length, bytes actually sent)
    trickled = {}  # path -> announced length, of which 3 bytes are sent every 0.2 s (for at most 20 s)
    requests = []  # the paths asked for, in order

    def do_GET(self):
        self.requests.append(self.path)
        if self.path in self.truncated:
            length, body = self.truncated[self.path]
            self._send_head(length)
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
        elif self.path in self.trickled:
            self._send_head(self.trickled[self.path])
            self._trickle()
        elif self.path in self.files:
            self._send_head(len(self.files[self.path]))
            self.wfile.write(self.files[self.path])
        else:
            self.send_error(404)

    def _send_head(self, length):
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _trickle(self):
        self.close_connection = True
        try:
            for _ in range(100):
                self.wfile.write(b"abc")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.files, _Handler.truncated, _Handler.trickled, _Handler.requests = {}, {}, {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def dead_url(name):
    """An address on a local port nobody listens on: connecting fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def register(monkeypatch, name, url, content=None):
    sha = hashlib.sha256(content).hexdigest() if content is not None else None
    monkeypatch.setitem(download.REMOTE_FILES, name, download.RemoteFile(url, sha))


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def _read_bytes(path):
    return path.read_bytes()


def _refused(path, code=errno.EACCES):
    """The OSError that the OS raises for `code` on `path` (a PermissionError for EACCES)."""
    return OSError(code, os.strerror(code), str(path))


def _strictly_inside(path, folder):
    path = Path(os.fsdecode(path)).absolute()
    return path != folder and path.is_relative_to(folder)


def make_unreadable(monkeypatch, folder):
    """Make `folder` behave as a folder this user may not read or enter.

    The tests run as root, whom chmod does not stop, so the Path calls that reach into the folder
    raise the PermissionError that the OS would raise.
    """
    for name in ("stat", "open"):
        original = getattr(pathlib.Path, name)

        def guarded(self, *args, _original=original, **kwargs):
            if _strictly_inside(self, folder):
                raise _refused(self)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, name, guarded)


def make_read_only(monkeypatch, folder, code=errno.EACCES):
    """Make `folder` behave as a read-only folder: what would create, change or remove anything in it
    raises the OSError `code` that the OS would raise (the tests run as root, whom chmod does not stop):
    EACCES for a folder this user may not write, EROFS for one on a read-only file system."""

    def guard(original, writes=lambda *args, **kwargs: True):
        def guarded(path, *args, **kwargs):
            if _strictly_inside(path, folder) and writes(*args, **kwargs):
                raise _refused(path, code)
            return original(path, *args, **kwargs)

        return guarded

    for name in ("mkdir", "unlink", "remove", "rmdir", "rename", "replace"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    monkeypatch.setattr(
        os,
        "open",
        guard(os.open, lambda flags, *args, **kwargs: flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)),
    )


# --------------------------------------------------------------------------------------------------
# where the cache is


def test_the_cache_is_the_checkouts_data_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert download.default_data_dir(tmp_path / "helpers") == tmp_path / "data"
    # This checkout, where the package is installed in editable mode:
    assert download.DATA_DIR == Path(download.__file__).resolve().parent.parent / "data"


def test_the_cache_of_an_installed_package_is_the_users_cache_folder(tmp_path):
    site_packages = tmp_path / "lib" / "python3.11" / "site-packages"
    cache = download.default_data_dir(site_packages / "helpers")
    assert cache == Path(pooch.os_cache("made-notebooks"))
    assert not cache.is_relative_to(site_packages)


def test_the_data_module_re_exports_the_download_names():
    from helpers import data

    for name in ("DataNotFoundError", "CorruptDataError", "DATA_DIR", "data_dirs", "fetch"):
        assert getattr(data, name) is getattr(download, name)


# --------------------------------------------------------------------------------------------------
# the download path, against a local HTTP server


def test_download_lands_in_the_cache_after_its_checksum(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    assert download.fetch("tiny.bin", _read_bytes) == b"tiny content"
    assert files_under(cache) == ["tiny.bin"]
    handler.files.clear()  # now offline: the cached file serves
    assert download.fetch("tiny.bin", _read_bytes) == b"tiny content"


def test_download_with_a_wrong_checksum_leaves_nothing(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"other content"
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    with pytest.raises(
        CorruptDataError, match=r"tiny\.bin downloaded from http://127.*: sha256 \w+, expected \w+"
    ):
        download.fetch("tiny.bin", _read_bytes)
    assert files_under(cache) == []


def test_interrupted_download_leaves_nothing(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.truncated["/tiny.bin"] = (100000, b"only the start")
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"x" * 100000)
    with pytest.raises(DataNotFoundError, match="tiny.bin"):
        download.fetch("tiny.bin", _read_bytes)
    assert files_under(cache) == []


def test_offline_error_names_the_file_the_address_and_the_fix(folders, monkeypatch):
    cache, _ = folders
    url = dead_url("smiley.jpg")
    register(monkeypatch, "smiley.jpg", url, b"whatever")
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("smiley")
    message = str(err.value)
    assert "smiley.jpg" in message and url in message and "by hand" in message and str(cache) in message
    assert files_under(cache) == []


def test_non_image_download_is_rejected_and_not_cached(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/smiley.jpg"] = b"<html>not found</html>"
    register(
        monkeypatch, "smiley.jpg", base + "/smiley.jpg"
    )  # no file checksum: the image check must catch it
    with pytest.raises(CorruptDataError, match="smiley.jpg downloaded from .*: not a readable image") as err:
        load_dataset("smiley")
    assert ".partial" not in str(err.value)  # the staging folder is gone: naming it would not help
    assert files_under(cache) == []


def test_corrupt_file_in_the_cache_is_replaced(folders, server, monkeypatch, capsys):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"tiny cont")  # truncated by an earlier crash, say
    assert download.fetch("tiny.bin", _read_bytes) == b"tiny content"
    assert (cache / "tiny.bin").read_bytes() == b"tiny content"
    assert files_under(cache) == ["tiny.bin"]
    assert "tiny.bin: sha256" in capsys.readouterr().out


def test_corrupt_file_in_the_users_folder_is_named_with_the_fix(folders, monkeypatch):
    _, user = folders
    register(monkeypatch, "tiny.bin", dead_url("tiny.bin"), b"tiny content")
    (user / "tiny.bin").write_bytes(b"tiny cont")
    with pytest.raises(
        CorruptDataError, match=r"tiny\.bin: sha256 \w+, expected \w+.*\nReplace it with the file from"
    ):
        download.fetch("tiny.bin", _read_bytes)
    assert (user / "tiny.bin").exists()


# --------------------------------------------------------------------------------------------------
# a killed download, two downloads at once, a trickling server (issue 12, items 8, 9 and 13)


def test_what_a_killed_download_left_is_cleared_by_the_next(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    (cache / ".partial-tiny.bin").mkdir(parents=True)  # as a SIGKILL in the middle of a download leaves them
    (cache / ".partial-tiny.bin" / "tiny.bin").write_bytes(b"tiny")
    (cache / ".partial-tiny.bin.lock").touch()
    assert download.fetch("tiny.bin", _read_bytes) == b"tiny content"
    assert files_under(cache) == ["tiny.bin"]


def test_two_repairs_of_the_same_corrupt_file_at_once_both_succeed(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    register(
        monkeypatch, "tiny.bin", base + "/tiny.bin"
    )  # no file checksum: `parse` below checks the content
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"garbage")
    both_found_it_corrupt = threading.Barrier(2, timeout=10)
    waited = set()

    def parse(path):
        content = path.read_bytes()
        if content != b"tiny content":
            if (
                threading.get_ident() not in waited
            ):  # once per thread: both see the corrupt file before either repairs
                waited.add(threading.get_ident())
                both_found_it_corrupt.wait()
            raise CorruptDataError("not the tiny content")
        return content

    results, errors = [], []

    def repair():
        try:
            results.append(download.fetch("tiny.bin", parse))
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=repair) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and results == [b"tiny content"] * 2
    assert handler.requests == ["/tiny.bin"]  # the second found the first one's download, under the lock
    assert files_under(cache) == ["tiny.bin"]


def test_a_trickling_download_stops_at_the_deadline(folders, server, monkeypatch):
    cache, _ = folders
    handler, base = server
    handler.trickled["/tiny.bin"] = 100000
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"x" * 100000)
    monkeypatch.setattr(download, "DOWNLOAD_DEADLINE_SECONDS", 2)
    start = time.monotonic()
    with pytest.raises(DataNotFoundError) as err:
        download.fetch("tiny.bin", _read_bytes)
    assert time.monotonic() - start < 8
    message = str(err.value)
    assert "tiny.bin" in message and base + "/tiny.bin" in message and "deadline of 2 s" in message
    assert files_under(cache) == []


# --------------------------------------------------------------------------------------------------
# permission faults (issue 12, item 12), simulated: the tests run as root


def test_an_unreadable_users_folder_does_not_hide_the_cached_copy(folders, server, monkeypatch):
    cache, user = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    assert download.fetch("tiny.bin", _read_bytes) == b"tiny content"  # now in the cache
    (user / "tiny.bin").write_bytes(b"tiny content")
    handler.files.clear()
    make_unreadable(monkeypatch, user)
    with pytest.warns(
        UserWarning,
        match=re.escape(f"Skipping {user}: cannot read") + ".*Permission denied.*HELPERS_DATA_DIR",
    ):
        assert download.fetch("tiny.bin", _read_bytes) == b"tiny content"


def test_a_read_only_cache_names_the_folder_and_the_fix(folders, monkeypatch):
    cache, _ = folders
    url = dead_url("tiny.bin")
    register(monkeypatch, "tiny.bin", url, b"tiny content")
    cache.mkdir()
    make_read_only(monkeypatch, cache)
    with pytest.raises(DataNotFoundError) as err:
        download.fetch("tiny.bin", _read_bytes)
    message = str(err.value)
    assert f"Make {cache} writable" in message and url in message and "HELPERS_DATA_DIR" in message
    assert files_under(cache) == []


def test_a_cache_on_a_read_only_file_system_names_the_file_the_folder_and_the_fix(folders, monkeypatch):
    cache, _ = folders
    url = dead_url("tiny.bin")
    register(monkeypatch, "tiny.bin", url, b"tiny content")
    cache.mkdir()
    make_read_only(monkeypatch, cache, errno.EROFS)
    with pytest.raises(DataNotFoundError) as err:
        download.fetch("tiny.bin", _read_bytes)
    message = str(err.value)
    assert message.startswith(
        f"Cannot write into the cache {cache} (Read-only file system), so tiny.bin cannot"
    )
    assert f"Make {cache} writable" in message and url in message and "HELPERS_DATA_DIR" in message
    assert ".partial" not in message  # the lock file, which the OSError named
    assert files_under(cache) == []


class _FullDisk(io.FileIO):
    def write(self, data):
        raise _refused(self.name, errno.ENOSPC)


def test_a_full_disk_during_a_download_names_the_file_the_folder_and_the_fix_and_leaves_nothing(
    folders, server, monkeypatch
):
    cache, _ = folders
    handler, base = server
    handler.files["/tiny.bin"] = b"tiny content"
    register(monkeypatch, "tiny.bin", base + "/tiny.bin", b"tiny content")
    monkeypatch.setattr(
        download, "open", lambda path, mode: _FullDisk(path, mode), raising=False
    )  # _get's open
    with pytest.raises(DataNotFoundError) as err:
        download.fetch("tiny.bin", _read_bytes)
    message = str(err.value)
    assert message.startswith(
        f"Cannot write into the cache {cache} (No space left on device), so tiny.bin cannot"
    )
    assert "Free some space" in message and base + "/tiny.bin" in message and "HELPERS_DATA_DIR" in message
    assert ".partial" not in message  # the staged file, which the OSError named
    assert files_under(cache) == []


def test_a_corrupt_file_in_a_read_only_cache_is_not_said_to_be_removed(folders, monkeypatch, capsys):
    cache, _ = folders
    register(monkeypatch, "tiny.bin", dead_url("tiny.bin"), b"tiny content")
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"tiny cont")
    make_read_only(monkeypatch, cache)
    with pytest.raises(DataNotFoundError, match=re.escape(f"Make {cache} writable") + ".*HELPERS_DATA_DIR"):
        download.fetch("tiny.bin", _read_bytes)
    assert "Removed" not in capsys.readouterr().out
    assert files_under(cache) == ["tiny.bin"]


# --------------------------------------------------------------------------------------------------
# what is no readable file in $HELPERS_DATA_DIR (reliability issue, cases 9 and 17)


def _cache_holds_a_good_copy(cache):
    cache.mkdir()
    (cache / "tiny.bin").write_bytes(b"tiny content")


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda user: os.symlink(user / "tiny.bin", user / "tiny.bin"), "Too many levels of symbolic links"),
        (lambda user: (user / "tiny.bin").mkdir(), None),
    ],
)
def test_a_symlink_loop_or_a_folder_in_the_users_folder_does_not_hide_the_cached_copy(folders, make, reason):
    cache, user = folders
    _cache_holds_a_good_copy(cache)
    make(user)
    match = (
        re.escape(f"Skipping {user}: cannot read {user / 'tiny.bin'} ({reason})")
        if reason
        else re.escape(f"Skipping {user / 'tiny.bin'}: it is a folder, not a regular file")
    )
    with pytest.warns(UserWarning, match=match):
        assert download.find_local("tiny.bin") == [cache / "tiny.bin"]


def test_an_over_long_users_folder_does_not_hide_the_cached_copy(folders, monkeypatch):
    cache, _ = folders
    _cache_holds_a_good_copy(cache)
    monkeypatch.setenv("HELPERS_DATA_DIR", "/" + "x" * 300)
    with pytest.warns(UserWarning, match=r"cannot read .*\(File name too long\).*HELPERS_DATA_DIR"):
        assert download.find_local("tiny.bin") == [cache / "tiny.bin"]


def test_a_named_pipe_in_the_users_folder_is_skipped_not_waited_on(folders):
    cache, user = folders
    _cache_holds_a_good_copy(cache)
    fifo = user / "tiny.bin"
    os.mkfifo(fifo)
    found = []
    search = threading.Thread(target=lambda: found.append(download.find_local("tiny.bin")), daemon=True)
    with pytest.warns(
        UserWarning, match=re.escape(f"Skipping {fifo}: it is a named pipe (FIFO), not a regular file")
    ):
        search.start()
        search.join(30)  # a guard only: the search takes milliseconds, or waits for a writer forever
    if search.is_alive():  # it opened the pipe: a writer lets it go, so that no thread is left waiting
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        search.join(30)
    assert found == [[cache / "tiny.bin"]]


def test_a_users_folder_that_is_a_file_is_named_as_such(folders, monkeypatch):
    cache, user = folders
    register(monkeypatch, "tiny.bin", dead_url("tiny.bin"), b"tiny content")
    (user / "tiny.bin").write_bytes(b"tiny content")
    monkeypatch.setenv("HELPERS_DATA_DIR", str(user / "tiny.bin"))
    with pytest.raises(
        NotADirectoryError,
        match=re.escape(
            f"HELPERS_DATA_DIR is {user / 'tiny.bin'}, which is a file, not a folder: set it to the folder"
        )
        + ".*"
        + re.escape(f"(such as {user})"),
    ):
        download.fetch("tiny.bin", _read_bytes)
    assert files_under(cache) == []  # nothing downloaded
