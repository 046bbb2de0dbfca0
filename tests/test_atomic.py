"""Atomic replacement: the temporary files of killed writers are cleared, those of live writers kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender._atomic import atomic_write


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "related.jsonl"
    dead = tmp_path / f".related.jsonl.{dead_pid()}.abc123.tmp"
    live = tmp_path / f".related.jsonl.{os.getppid()}.def456.tmp"  # our parent is alive
    mine = tmp_path / f".related.jsonl.{os.getpid()}.ghi789.tmp"  # another thread of ours may be writing
    other_file = tmp_path / f".other.jsonl.{dead_pid()}.jkl012.tmp"  # not this target's
    for path in (dead, live, mine, other_file):
        path.write_text("partial")
    atomic_write(target, lambda tmp: tmp.write_text("done"))
    assert target.read_text() == "done"
    assert not dead.exists()
    assert live.exists() and mine.exists() and other_file.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name, mine.name, other_file.name])


def test_missing_directories_are_created_unless_refused(tmp_path: Path) -> None:
    # A model saved to models/x.joblib gets its directory; a store's writer refuses instead.
    atomic_write(tmp_path / "new" / "model.joblib", lambda tmp: tmp.write_text("model"))
    assert (tmp_path / "new" / "model.joblib").read_text() == "model"
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "p.jsonl", lambda tmp: tmp.write_text("lists"), make_parents=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]
