"""Where numba keeps compiled kernels, set before any kernel is defined.

numba caches beside the package's sources. A process that cannot write there (a CMS running as
``www-data`` that imports recommender to read the store) would fail at import ("cannot cache function:
no locator available") when it has no writable home either. Such a process caches in a private
directory of its own under the system's temporary directory instead; ``NUMBA_CACHE_DIR`` still wins.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import numba

__all__ = ["cache_dir"]


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def _private_dir() -> str:
    """``$TMPDIR/recommender-numba-UID``, ours alone (cached code is loaded and run, so a directory that
    anyone else could have written to is not used: a fresh one is made instead)."""
    path = Path(tempfile.gettempdir()) / f"recommender-numba-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022:
            return str(path)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="recommender-numba-")


def cache_dir() -> str | None:
    """The directory numba caches in when it is not beside the sources (``None``: beside them)."""
    return numba.config.CACHE_DIR or None  # type: ignore[attr-defined]


if not os.environ.get("NUMBA_CACHE_DIR"):
    package = Path(__file__).parent
    pycache = package / "__pycache__"
    if not (_writable(pycache) if pycache.is_dir() else _writable(package)):
        numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"] = _private_dir()  # type: ignore[attr-defined]
