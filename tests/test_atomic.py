"""Atomic replacement: the temporary files of killed writers are cleared, those of live writers kept."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recommender import Recommender, precompute
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


def test_a_replaced_file_keeps_its_mode_and_a_new_file_gets_the_umasks(tmp_path: Path) -> None:
    # A store readable by the web server's group only (0640) must stay so when a job rewrites it.
    target = tmp_path / "related.jsonl"
    umask = os.umask(0o022)
    try:
        atomic_write(target, lambda tmp: tmp.write_text("new"))
        assert stat.S_IMODE(target.stat().st_mode) == 0o644  # as any new file
        for mode in (0o640, 0o600, 0o444):  # read-only too: the mode is set once the file is written
            target.chmod(mode)
            text = f"lists {mode:o}"
            atomic_write(target, lambda tmp, text=text: tmp.write_text(text))
            assert (stat.S_IMODE(target.stat().st_mode), target.read_text()) == (mode, text)
    finally:
        os.umask(umask)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".sqlite"])
def test_precompute_over_a_store_keeps_its_mode(fitted: Recommender, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"related{suffix}"
    precompute(fitted, target, k=2)
    target.chmod(0o640)
    precompute(fitted, target, k=3)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file another group needs root")
def test_a_replaced_file_keeps_its_group(tmp_path: Path) -> None:
    target = tmp_path / "related.csv"
    target.write_text("old")
    group = next(g for g in (1, 2, 3) if g != target.stat().st_gid)
    os.chown(target, -1, group)
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert (target.stat().st_gid, target.read_text()) == (group, "new")
