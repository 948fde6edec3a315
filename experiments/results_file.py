"""The results files of the experiment scripts: each write replaces a file whole or not at all, and every
change is a read-modify-write under a lock, so that runs in parallel (one per core) keep each other's results."""

import contextlib
import fcntl
import json
import os


def write_atomically(path, write):
    """`write(tmp)` into a temporary file beside `path`, then put it in place: a crash leaves the old file
    whole, and a failed write leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def refuse(path, problem):
    """Stop the script over a results file that is not what it writes, naming the file and the fault; the file is
    left as it is (nothing has been trained yet, when scripts read their file first)."""
    raise SystemExit(
        f"{path} {problem}; it is left untouched: mend it (git checkout it, or resolve the merge) or "
        f"move it away to start afresh"
    )


def read_json(path, holds="an object of entries"):
    """The dict held in `path`, or an empty one when the file does not exist yet. A file that is not a JSON
    object of objects (`holds` says what it should be) stops the script through `refuse`."""
    if not path.exists():
        return {}
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        refuse(path, f"is not valid JSON ({error})")
    if not isinstance(results, dict):
        refuse(path, f"holds a {type(results).__name__}, not {holds}")
    for key, value in results.items():
        if not isinstance(value, dict):
            refuse(path, f"has {key!r} = {value!r}, not an object")
    return results


@contextlib.contextmanager
def locked_update(path, read=None):
    """The dict `read()` returns, written back to `path` as JSON on exit. The read, the changes made inside
    the `with` and the write all happen under one lock (the file `.STEM.lock` beside `path`), so a change
    merged into what another process wrote meanwhile is never lost. Nothing is written if the block raises.
    `read` reads `path` (default `read_json`; a reader of its own may validate), and need not lock, since
    writes are atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.stem}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = read() if read is not None else read_json(path)
        yield results
        write_atomically(path, lambda tmp: tmp.write_text(json.dumps(results, indent=1)))
