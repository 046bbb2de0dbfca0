"""Atomic file replacement, shared by model saving and store writing."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Read once at import: os.umask can only be read by setting it, which is not thread-safe later on.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[Path], None], *, make_parents: bool = True) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it over ``path``.

    Readers see the old file or the new one, never half of one; on any failure the old file stays. A file
    replaced keeps its permissions and, where the writer may give it, its group; a new one gets the umask's.
    ``make_parents=False``: a missing directory is an error (``FileNotFoundError``), not created.
    """
    tmp = temporary_beside(path, make_parents=make_parents)
    try:
        write(tmp)
        keep_access(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temporary_beside(path: Path, *, make_parents: bool = True) -> Path:
    """A new empty temporary file beside ``path``, to be renamed over it once written; leftovers of
    killed writers beside ``path`` are removed first. Missing directories are created unless
    ``make_parents`` is false."""
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path)
    # The writer's PID in the name tells a later writer whether the file is a killed job's leftover.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes a private 0600 file; give the result the mode a plainly created file would get,
        # so a CMS or web server running as another user can read models and stores.
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return Path(tmp_name)


def keep_access(old: Path, new: Path) -> None:
    """Give ``new`` the permission bits and group of ``old`` (if ``old`` exists), before it replaces it: a
    store made readable by the web server's group only (0640) must stay so when a job rewrites it. The group
    is kept where the writer may give it (a group it is in); set after writing, so a read-only mode works."""
    try:
        old_stat = os.stat(old)
    except FileNotFoundError:
        return
    if old_stat.st_gid != os.stat(new).st_gid:
        with contextlib.suppress(PermissionError):
            os.chown(new, -1, old_stat.st_gid)
    os.chmod(new, stat.S_IMODE(old_stat.st_mode) & 0o777)


def sweep_leftovers(path: Path) -> None:
    """Remove temporary files that killed writers (SIGKILL, power loss) left beside ``path``."""
    prefix = f".{path.name}."
    for leftover in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = leftover.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk, so a rename that publishes it cannot outlive it in a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Flush ``path``'s entries (the renames made in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def locked_directory(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the directory ``path`` (writers of files in it take turns).

    A lock on the directory itself needs no lock file; the kernel drops it when its holder dies.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
