"""The files behind the datasets: where they are looked for, where they come from, how they are fetched.

Files are looked up in `$HELPERS_DATA_DIR` (if set), then in the download cache `DATA_DIR`. A file
found in neither is downloaded into the cache from its public URL: it is written into a staging
folder, its content is verified (sha256 of the file, or of the parsed arrays for binarized MNIST,
whose public copies differ in bytes but not in content), and only then moved into place, so nothing
partial or corrupt is ever left in the cache. Downloads of one file are serialized between processes
(a lock per file), and each has an overall deadline.
"""

import errno
import os
import shutil
import stat
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests
import urllib3
from tqdm import tqdm

try:
    import fcntl
except (
    ImportError
):  # Windows: no flock, so two processes downloading the same file at once are not serialized
    fcntl = None


def default_data_dir(package_dir=None):
    """The download cache: the checkout's `data/` when the package sits in a source checkout, else a user cache.

    A checkout is recognized by the pyproject.toml next to `helpers/`. Installed as a regular package
    (as in Colab, where the notebooks pip-install the project), `helpers/` sits in site-packages,
    which is no place for data: often read-only, and emptied by every reinstall. There the cache is
    the user's cache folder (`pooch.os_cache`: ~/.cache/made-notebooks on Linux). `package_dir`: the folder of
    `helpers/` (default: this package's own).
    """
    package_dir = Path(__file__).resolve().parent if package_dir is None else package_dir
    if (package_dir.parent / "pyproject.toml").is_file():
        return package_dir.parent / "data"
    return Path(pooch.os_cache("made-notebooks"))


DATA_DIR = default_data_dir()
"""The download cache (git-ignored in a checkout)."""

DOWNLOAD_DEADLINE_SECONDS = 600
"""A download still running after this long is abandoned: a server that trickles bytes never trips a read timeout."""

_READ_TIMEOUT_SECONDS = 30  # a server that sends nothing at all fails this much after its last byte

_DEEPUL = "https://raw.githubusercontent.com/rll/deepul/945423cb3c440f80f0870187e9de491a79d184b7/homeworks/hw1/data/"
_LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str = None  # of the file's bytes; None where the parsed content is verified instead


REMOTE_FILES = {
    "smiley.jpg": RemoteFile(
        _DEEPUL + "smiley.jpg", "11b04bacd9d31cbc688d4ac3cf436ea18fa2538f2934a0aeb46e58b6fce13167"
    ),
    "geoffrey-hinton.jpg": RemoteFile(
        _DEEPUL + "geoffrey-hinton.jpg", "6ba4df1dd6384ff813316cdf96517e8aa0b4a6868e69dded67b18c88ee1e25d8"
    ),
    "binarized_mnist.npz": RemoteFile(
        "https://github.com/mgermain/MADE/releases/download/ICML2015/binarized_mnist.npz"
    ),
    **{
        f"binarized_mnist_{split}.amat": RemoteFile(f"{_LAROCHELLE}binarized_mnist_{split}.amat")
        for split in ("train", "valid", "test")
    },
}


class DataNotFoundError(FileNotFoundError):
    """A data file is in none of the data folders and could not be downloaded."""


class CorruptDataError(ValueError):
    """A data file does not have the content it should (checksum, format)."""


def data_dirs():
    """Folders searched for data files, in order: $HELPERS_DATA_DIR (if set), then the cache.

    Raises NotADirectoryError if $HELPERS_DATA_DIR names a file: it would be searched in vain, and
    the error of the download that followed would name it as a folder.
    """
    env = os.environ.get("HELPERS_DATA_DIR")
    if not env:
        return [DATA_DIR]
    folder = Path(env).expanduser()
    if os.path.exists(folder) and not os.path.isdir(folder):  # False, not an error, where it cannot be read
        raise NotADirectoryError(
            f"The environment variable HELPERS_DATA_DIR is {env}, which is a file, not a folder: "
            f"set it to the folder that holds the data files (such as {folder.parent}), or unset "
            f"it to use the cache {DATA_DIR}."
        )
    return [folder, DATA_DIR]


_FILE_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket"}


def find_local(filename):
    """The readable copies of `filename` in the data folders, in search order.

    What cannot be read (no permission, a symlink loop, a name too long) or is not a regular file (a
    folder; a named pipe, whose opening would wait forever for a writer) is skipped with a warning,
    not an error, so that a bad $HELPERS_DATA_DIR does not hide a good copy in the cache.
    """
    found = []
    for folder in data_dirs():
        path = folder / filename
        try:
            mode = path.stat().st_mode
            if not stat.S_ISREG(mode):
                kind = _FILE_KINDS.get(stat.S_IFMT(mode), "a device")
                warnings.warn(
                    f"Skipping {path}: it is {kind}, not a regular file. Replace it with the file "
                    f"{filename}, or remove it.",
                    stacklevel=2,
                )
                continue
            path.open("rb").close()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as err:
            warnings.warn(
                f"Skipping {folder}: cannot read {path} ({err.strerror or err}). Make it a readable file, "
                f"or set HELPERS_DATA_DIR to a folder you can read.",
                stacklevel=2,
            )
            continue
        found.append(path)
    return found


def fetch(filename, parse):
    """Find `filename` in the data folders (or download it) and return `parse(path)`.

    `parse` reads the file and raises CorruptDataError, saying what is wrong, if the content is. A
    corrupt copy in the cache is downloaded again; one in $HELPERS_DATA_DIR is the user's, so the
    error names it and the fix instead.
    """
    remote = REMOTE_FILES[filename]
    for path in find_local(filename):
        try:
            return _verified(path, remote, parse)
        except CorruptDataError as err:
            if path.parent != DATA_DIR:
                raise CorruptDataError(
                    f"{path}: {err}\nReplace it with the file from {remote.url} "
                    f"(or remove it to have it downloaded into {DATA_DIR})."
                ) from None
            print(f"{path}: {err}\nDownloading it again.")
    return _download(filename, parse)


def _verified(path, remote, parse):
    if remote.sha256 is not None:
        actual = pooch.file_hash(str(path), alg="sha256")
        if actual != remote.sha256:
            raise CorruptDataError(
                f"sha256 {actual}, expected {remote.sha256}: the file is truncated, "
                f"corrupt or a different file."
            )
    return parse(path)


def _download(filename, parse):
    """Download `filename` into the cache and return `parse` of it.

    Under the lock of `_staging`, the cache is looked at again first: another process may have
    downloaded the file, or replaced a corrupt copy, while this one waited.
    """
    remote = REMOTE_FILES[filename]
    cached = DATA_DIR / filename
    try:
        with _staging(filename) as staging:
            if cached.is_file():
                try:
                    return _verified(cached, remote, parse)
                except CorruptDataError:
                    cached.unlink(missing_ok=True)  # fetch has said what is wrong with it
            staged = staging / filename
            _get(remote.url, staged)
            try:
                content = _verified(staged, remote, parse)
            except CorruptDataError as err:
                raise CorruptDataError(
                    f"{filename} downloaded from {remote.url}: {err}\nThe address may have moved or served an error "
                    f"page; nothing was cached. Download the file by hand from a copy you trust and put it in "
                    f"{DATA_DIR} (or in a folder named by the environment variable HELPERS_DATA_DIR)."
                ) from None
            os.replace(staged, cached)
            return content
    except (requests.RequestException, urllib3.exceptions.HTTPError, TimeoutError) as err:
        places = " or ".join(str(p) for p in data_dirs())
        raise DataNotFoundError(
            f"{filename} is not in {places}, and downloading it from {remote.url} failed ({err}).\n"
            f"Download it by hand from that address and put it in {DATA_DIR} "
            f"(or in a folder named by the environment variable HELPERS_DATA_DIR)."
        ) from None
    except OSError as err:
        # Named by its strerror only: the path in it is a lock or staging file of the cache, not the user's.
        if isinstance(err, PermissionError) or err.errno == errno.EROFS:
            fix = f"Make {DATA_DIR} writable, or download {remote.url} by hand into a folder you can write"
        elif err.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = (
                f"Free some space on its disk, or download {remote.url} by hand into a folder on another disk"
            )
        else:
            raise
        raise DataNotFoundError(
            f"Cannot write into the cache {DATA_DIR} ({err.strerror}), so {filename} cannot be downloaded (or a "
            f"corrupt copy replaced) there; nothing partial is left. {fix} and set the environment variable "
            f"HELPERS_DATA_DIR to that folder."
        ) from None


@contextmanager
def _staging(filename):
    """The staging folder of `filename`, `DATA_DIR/.partial-<filename>/`, empty, held by this process alone.

    Its name is fixed, so whatever a killed download left there (SIGKILL, a kernel restart) is
    cleared by the next download of the same file, and nothing outlives it. Two processes (or
    threads) would share that folder, so they take turns: an exclusive flock on
    `.partial-<filename>.lock`. A lock rather than one staging folder per process, because the OS
    releases a flock when its holder dies, whereas a dead process's folder could only be told from a
    live one's by guesses (its pid, its age).
    """
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    staging = DATA_DIR / f".partial-{filename}"
    with _lock(DATA_DIR / f".partial-{filename}.lock"):
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _lock(path):
    """Hold an exclusive flock on the file `path`, and remove the file on release.

    Removing a lock file that others may be waiting on is safe with one check: a waiter that wakes
    up holding the lock of a file no longer at `path` lets it go and tries again.
    """
    if fcntl is None:
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _get(url, target):
    """Stream `url` into the file `target`, within DOWNLOAD_DEADLINE_SECONDS, with a progress bar.

    `read1` (urllib3 >= 2.2) returns whatever bytes have arrived, so the deadline is checked however
    slowly they come (a read of a fixed size would wait for all of its bytes). A silent server fails
    after the read timeout.
    """
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_SECONDS
    print(f"Downloading {url}")
    with requests.get(
        url, stream=True, timeout=min(_READ_TIMEOUT_SECONDS, DOWNLOAD_DEADLINE_SECONDS)
    ) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0)) or None
        with open(target, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
            while chunk := response.raw.read1(1 << 16, decode_content=True):
                out.write(chunk)
                bar.update(len(chunk))
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"still running at the deadline of {DOWNLOAD_DEADLINE_SECONDS} s, "
                        f"helpers.download.DOWNLOAD_DEADLINE_SECONDS"
                    )
