"""tools/check_private_names.py: the package passes, and each kind of crossing is caught in a small fake package."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "check_private_names.py"


def run(cwd: Path, *args: str) -> tuple[int, list[str], str]:
    """Run the checker in ``cwd``; return its exit code, its output lines and its stderr."""
    done = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout.splitlines(), done.stderr


def make_package(root: Path, files: dict[str, str]) -> None:
    """Write package ``pkg`` under ``root`` with ``files`` (relative path -> source) and an empty ``__init__.py``."""
    package = root / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def check(root: Path, files: dict[str, str]) -> tuple[int, list[str]]:
    make_package(root, files)
    code, lines, stderr = run(root, "pkg")
    assert stderr == ""
    return code, lines


MODEL = """\
    def _sha256(data):
        return data


    class Model:
        def _index(self):
            return 1
"""
ATOMIC = """\
    def fsync_file(path):
        return _helper(path)


    def _helper(path):
        return path
"""
NEIGHBORS = """\
    def _kernel():
        return 0
"""


def test_the_package_passes() -> None:
    """No private name crosses a module of the real package (may fail while a refactor is under way)."""
    code, lines, stderr = run(ROOT, "recommender")
    assert (code, stderr) == (0, ""), "\n".join(lines)
    assert len(lines) == 1
    assert lines[0].startswith("no private name crosses a module (")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from .model import _sha256\n", "pkg/user.py:1: private name '_sha256' imported from pkg.model"),
        ("from pkg.model import _sha256\n", "pkg/user.py:1: private name '_sha256' imported from pkg.model"),
        (
            "from ._atomic import fsync_file, _helper\n",
            "pkg/user.py:1: private name '_helper' imported from pkg._atomic",
        ),
        ("from . import _VERSION\n", "pkg/user.py:1: private name '_VERSION' imported from pkg"),
        ("from .model import _sha256 as sha256\n", "pkg/user.py:1: private name '_sha256' imported from pkg.model"),
    ],
)
def test_importing_a_private_name(tmp_path: Path, source: str, expected: str) -> None:
    files = {"__init__.py": "_VERSION = '1'\n", "model.py": MODEL, "_atomic.py": ATOMIC, "user.py": source}
    code, lines = check(tmp_path, files)
    assert (code, lines) == (1, [expected, "1 private name crosses a module (4 modules checked)"])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from . import neighbors\n\nneighbors._kernel()\n",
            "pkg/user.py:3: private name '_kernel' of module pkg.neighbors",
        ),
        (
            "from pkg import neighbors as nb\n\nnb._kernel()\n",
            "pkg/user.py:3: private name '_kernel' of module pkg.neighbors",
        ),
        (
            "import pkg.neighbors\n\npkg.neighbors._kernel()\n",
            "pkg/user.py:3: private name '_kernel' of module pkg.neighbors",
        ),
        (
            "import pkg._atomic as atomic\n\natomic._helper(1)\n",
            "pkg/user.py:3: private name '_helper' of module pkg._atomic",
        ),
        (  # defining the same name locally does not excuse reaching into a module
            "from . import neighbors\n\n\ndef _kernel():\n    return neighbors._kernel()\n",
            "pkg/user.py:5: private name '_kernel' of module pkg.neighbors",
        ),
    ],
)
def test_a_private_name_of_an_imported_module(tmp_path: Path, source: str, expected: str) -> None:
    code, lines = check(tmp_path, {"neighbors.py": NEIGHBORS, "_atomic.py": ATOMIC, "user.py": source})
    assert (code, lines) == (1, [expected, "1 private name crosses a module (4 modules checked)"])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "def lookup(model):\n    return model._index()\n",
            "pkg/user.py:2: private attribute '_index' of 'model', not defined in this module",
        ),
        (
            "def lock(state):\n    return state.memo._lock\n",
            "pkg/user.py:2: private attribute '_lock' of 'state.memo', not defined in this module",
        ),
        (
            "class Wrapper:\n    def lock(self):\n        return self.memo._lock\n",
            "pkg/user.py:3: private attribute '_lock' of 'self.memo', not defined in this module",
        ),
        (
            "def write(out, shape):\n    out._shape = shape\n",
            "pkg/user.py:2: private attribute '_shape' of 'out', not defined in this module",
        ),
        (
            "from .model import Model\n\nindex = Model()._index()\n",
            "pkg/user.py:3: private attribute '_index' of 'Model()', not defined in this module",
        ),
    ],
)
def test_a_private_attribute_of_another_modules_object(tmp_path: Path, source: str, expected: str) -> None:
    code, lines = check(tmp_path, {"model.py": MODEL, "user.py": source})
    assert (code, lines) == (1, [expected, "1 private name crosses a module (3 modules checked)"])


ALLOWED = """\
    from dataclasses import dataclass

    import pkg._atomic
    import pkg._atomic as atomic_module
    from pkg import _atomic as atomic_alias

    from . import _atomic, neighbors
    from ._atomic import fsync_file
    from .sub import _inner
    from .sub._inner import helper

    _CACHE = {}


    def _local():
        return _CACHE


    @dataclass
    class Field:
        _count: int = 0


    class Slotted:
        __slots__ = ("_slot",)


    class Node:
        _registry = {}

        def __init__(self, value):
            self._value = value

        @classmethod
        def make(cls):
            return cls._registry

        def same(self, other):
            return self._value == other._value and self.__class__ is other.__class__

        def _private(self):
            return self


    def use(node, field, slotted, nodes):
        node._private()
        field._count += 1
        Field(_count=1)
        slotted._slot = None
        for item in nodes:
            item._value = None
        return (
            _atomic.fsync_file, atomic_module.fsync_file, atomic_alias.fsync_file, pkg._atomic.fsync_file,
            neighbors.__name__, node.__dict__, fsync_file, _inner.helper, helper, _local,
        )
"""


def test_allowed_uses(tmp_path: Path) -> None:
    """Private modules, a module's own private members (on any instance), self/cls and dunders pass."""
    files = {
        "_atomic.py": ATOMIC,
        "neighbors.py": NEIGHBORS,
        "sub/__init__.py": "",
        "sub/_inner.py": "def helper():\n    return 1\n",
        "user.py": ALLOWED,
    }
    code, lines = check(tmp_path, files)
    assert (code, lines) == (0, ["no private name crosses a module (6 modules checked)"])


def test_a_subpackage_and_a_private_module_are_checked_like_the_rest(tmp_path: Path) -> None:
    """Relative imports resolve from a subpackage, and a private module's own crossings are reported."""
    files = {
        "model.py": MODEL,
        "sub/__init__.py": "from ..model import _sha256\n",
        "sub/_cache.py": "from .. import model\n\nmodel._sha256(b'')\n",
    }
    code, lines = check(tmp_path, files)
    assert code == 1
    assert lines == [
        "pkg/sub/__init__.py:1: private name '_sha256' imported from pkg.model",
        "pkg/sub/_cache.py:3: private name '_sha256' of module pkg.model",
        "2 private names cross a module (4 modules checked)",
    ]


def test_violations_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    files = {
        "model.py": MODEL,
        "b.py": "def f(m):\n    return m._index()\n",
        "a.py": "from .model import _sha256\n\n\ndef f(m):\n    return m._index(), m._index()\n",
    }
    code, lines = check(tmp_path, files)
    assert (code, lines) == (
        1,
        [
            "pkg/a.py:1: private name '_sha256' imported from pkg.model",
            "pkg/a.py:5: private attribute '_index' of 'm', not defined in this module",
            "pkg/b.py:2: private attribute '_index' of 'm', not defined in this module",
            "3 private names cross a module (4 modules checked)",
        ],
    )


def test_the_default_directory_is_recommender(tmp_path: Path) -> None:
    (tmp_path / "recommender").mkdir()
    (tmp_path / "recommender" / "__init__.py").write_text("")
    assert run(tmp_path) == (0, ["no private name crosses a module (1 module checked)"], "")


def test_usage_errors(tmp_path: Path) -> None:
    code, lines, stderr = run(tmp_path, "missing")
    assert (code, lines) == (2, [])
    assert stderr == "error: missing is not a package directory (no __init__.py)\n"
    code, lines, stderr = run(tmp_path, "a", "b")
    assert (code, lines) == (2, [])
    assert stderr.startswith("usage:")


def test_a_file_that_does_not_parse(tmp_path: Path) -> None:
    make_package(tmp_path, {"broken.py": "def f(:\n"})
    code, lines, stderr = run(tmp_path, "pkg")
    assert (code, lines) == (2, [])
    assert stderr.startswith("pkg/broken.py:1: cannot parse:")
