"""Golden outputs: the batch job's lists on the test slice, byte for byte, as the judged defaults give them.

A refactoring must leave them as they are (issue 13). When a change is meant to alter lists (new defaults,
a new ranking), rewrite the files on purpose with ``python tests/test_golden.py`` and say why in the commit.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from recommender import Recommender, precompute, read_articles

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden"
SAMPLE = HERE / "data" / "sample.jsonl"
K = 5
WHEN = ("model_created_at", "written_at")  # the only values that differ from one run to the next


def store_dump(path: Path) -> str:
    """The store's tables as SQL text, in a fixed order, without the run's timestamps."""
    conn = sqlite3.connect(path)
    try:
        lines = []
        for table in ("articles", "related", "meta"):
            lines.append(f"-- {table}")
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid"):
                if table == "meta" and row[0] in WHEN:
                    continue
                lines.append("\t".join("NULL" if v is None else repr(v) for v in row))
        return "\n".join(lines) + "\n"
    finally:
        conn.close()


def write_outputs(directory: Path) -> tuple[Path, Path]:
    model = Recommender.train(read_articles(SAMPLE).articles, n_jobs=1)
    jsonl, store = directory / "related.jsonl", directory / "related.sqlite"
    precompute(model, jsonl, K)
    precompute(model, store, K)
    return jsonl, store


def test_precompute_on_the_test_slice_is_unchanged(tmp_path: Path) -> None:
    jsonl, store = write_outputs(tmp_path)
    assert jsonl.read_bytes() == (GOLDEN / "sample-k5.jsonl").read_bytes()
    assert store_dump(store) == (GOLDEN / "sample-k5.sql.txt").read_text(encoding="utf-8")


if __name__ == "__main__":  # rewrite the golden files (on purpose only: see the docstring)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        jsonl, store = write_outputs(Path(tmp))
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / "sample-k5.jsonl").write_bytes(jsonl.read_bytes())
        (GOLDEN / "sample-k5.sql.txt").write_text(store_dump(store), encoding="utf-8")
    print(f"wrote {GOLDEN}", file=sys.stderr)
