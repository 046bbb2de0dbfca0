"""Numba's cache after a source edit: the first lookup after a docstring edit, beside a warm cache.

    python benchmarks/bench_kernel_cache.py                                # this checkout's recommender/
    python benchmarks/bench_kernel_cache.py --before /tmp/before_kernels   # ... beside an older copy of it
    python benchmarks/bench_kernel_cache.py --source DIR --source DIR2     # any trees holding recommender/

numba keys each kernel's on-disk cache (``cache=True``) on its source file's stamp, so an edit anywhere in a
file recompiles every kernel in it on the next run that calls them. Each tree (a directory holding a
``recommender`` package) is copied into a temporary directory (the originals are never touched), with a
numba cache of its own (``NUMBA_CACHE_DIR``, which ``recommender/_numba_cache.py`` leaves alone when set).
A small model is trained on ``tests/data/sample.jsonl`` and saved (with a throwaway cache); then each
measurement is a fresh child process that loads the model and times its first ``Recommender.related(id, 5)``:
- cold: the cache empty, every kernel the lookup calls compiled;
- warm: the cache filled and the sources unchanged (the baseline of the edits below);
- after an edit: a space added to the module docstring of the copy's ``neighbors.py`` (or ``ranking.py``),
  so the file's stamp changes and nothing else does.

Beside each figure, the number of kernels the child compiled (cache index files it wrote). The runs are
interleaved, in rounds of a warm run and then each edit, tree by tree, so that the machine's drift falls on
all alike; each figure is the median over ``--repeats`` rounds (each round edits again).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "sample.jsonl"

TRAIN = """
import sys
from recommender import Recommender, read_articles
Recommender.train(read_articles(sys.argv[1]).articles, n_jobs=1).save(sys.argv[2])
"""

LOOKUP = """
import sys, time
started = time.perf_counter()
import recommender
from recommender import Recommender
if not recommender.__file__.startswith(sys.argv[3]):
    raise SystemExit(f"imported {recommender.__file__}, not the copy in {sys.argv[3]}")
imported = time.perf_counter()
model = Recommender.load(sys.argv[1])
loaded = time.perf_counter()
first = model.related(sys.argv[2], 5)
done = time.perf_counter()
model.related(sys.argv[2], 5)
again = time.perf_counter()
assert len(first) > 0
print(imported - started, loaded - imported, done - loaded, again - done, [r.id for r in first])
"""


@dataclass
class Tree:
    """One copy of a package tree under test, its numba cache and its model."""

    label: str
    copy: Path
    cache: Path
    model: Path
    times: dict[str, list[float]] = field(default_factory=dict)
    compiled: dict[str, list[int]] = field(default_factory=dict)
    lists: set[str] = field(default_factory=set)

    def env(self, cache: Path) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.copy), "NUMBA_CACHE_DIR": str(cache)}

    def run(self, code: str, *args: str, cache: Path | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=self.copy,
            env=self.env(cache or self.cache),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"{self.label}: child failed\n{result.stdout}{result.stderr}")
        return result.stdout

    def lookup(self, name: str, article_id: str) -> None:
        """One child: load the model, time its first lookup; record the time and the kernels compiled."""
        before = index_files(self.cache)
        out = self.run(LOOKUP, str(self.model), article_id, str(self.copy))
        _, _, first, _, ids = out.split(" ", 4)
        after = index_files(self.cache)
        self.times.setdefault(name, []).append(float(first))
        self.compiled.setdefault(name, []).append(sum(1 for p, s in after.items() if before.get(p) != s))
        self.lists.add(ids.strip())


def index_files(cache: Path) -> dict[Path, int]:
    """numba's cache index files (one per kernel) and their modification times."""
    return {p: p.stat().st_mtime_ns for p in cache.rglob("*.nbi")}


def touch_docstring(path: Path) -> None:
    """Add a space at the end of the module docstring of ``path``: its stamp changes, its code does not."""
    text = path.read_text(encoding="utf-8")
    node = ast.parse(text).body[0]
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
        raise SystemExit(f"{path} has no module docstring")
    assert node.end_lineno is not None and node.end_col_offset is not None
    lines = text.splitlines(keepends=True)
    line = lines[node.end_lineno - 1].encode("utf-8")
    at = node.end_col_offset - 3  # before the closing quotes (a byte offset)
    lines[node.end_lineno - 1] = (line[:at] + b" " + line[at:]).decode("utf-8")
    path.write_text("".join(lines), encoding="utf-8")


def prepare(label: str, source: Path, base: Path) -> Tree:
    """A copy of ``source``'s package in ``base``, an empty numba cache, and a model trained with the copy."""
    package = source / "recommender"
    if not (package / "__init__.py").is_file():
        raise SystemExit(f"{source} holds no recommender package")
    copy = base / "src"
    shutil.copytree(package, copy / "recommender", ignore=shutil.ignore_patterns("__pycache__"))
    tree = Tree(label, copy, base / "numba-cache", base / "model.joblib")
    tree.cache.mkdir()
    scratch = base / "train-cache"
    tree.run(TRAIN, str(SAMPLE), str(tree.model), cache=scratch)
    shutil.rmtree(scratch)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, action="append", help="a directory holding recommender/ (repeatable)")
    parser.add_argument("--before", type=Path, help="an older tree, measured first as 'before'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--edit", action="append", help="files of the package to edit (default neighbors.py, ranking.py)"
    )
    args = parser.parse_args()
    sources = [(f"tree {i + 1}" if len(args.source) > 1 else "this tree", s) for i, s in enumerate(args.source or [])]
    if not sources:
        sources = [("after" if args.before else "this tree", ROOT)]
    if args.before is not None:
        sources.insert(0, ("before", args.before))
    edits = args.edit or ["neighbors.py", "ranking.py"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for label, source in sources:
        print(f"{label}: {source.resolve()}/recommender")
    with tempfile.TemporaryDirectory(prefix="bench-kernel-cache-") as tmp:
        trees = [prepare(label, source, Path(tmp) / f"tree-{i}") for i, (label, source) in enumerate(sources)]
        article = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[100])["id"]
        cold, warm = "cold cache (every kernel compiled)", "warm cache, sources unchanged"
        steps = [(f"after a docstring edit in {name}", name) for name in edits]
        for tree in trees:
            tree.lookup(cold, article)
        for _ in range(args.repeats):  # interleaved: the machine's drift falls on every tree and step alike
            for name, edit in [(warm, None), *steps]:
                for tree in trees:
                    if edit is not None:
                        touch_docstring(tree.copy / "recommender" / edit)
                    tree.lookup(name, article)
        steps = [(cold, None), (warm, None), *steps]
        print(f"\nfirst related(id, 5) in a fresh process, median of {args.repeats} (cold: 1 run); kernels compiled\n")
        width = max(len(name) for name, _ in steps)
        print(f"{'':{width}}" + "".join(f"{label:>26}" for label, _ in sources))
        for name, _ in steps:
            cells = []
            for tree in trees:
                ms = statistics.median(tree.times[name]) * 1000
                cells.append(f"{ms:9.1f} ms, {statistics.median(tree.compiled[name]):>2g} kernels")
            print(f"{name:{width}}" + "".join(f"{c:>26}" for c in cells))
        print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        same = len({ids for tree in trees for ids in tree.lists}) == 1
        print(f"the same list from every run: {same}")


if __name__ == "__main__":
    main()
