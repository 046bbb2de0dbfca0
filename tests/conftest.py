"""Shared fixtures: a small slice of the real corpus, and a model trained and saved on it once."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recommender import Article, Recommender, read_articles, read_manifest
from recommender.model import data_path, manifest_path

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample.jsonl"
SNAKE_ID = "kompas-8f42b397"


@pytest.fixture(scope="session")
def sample_articles() -> list[Article]:
    return read_articles(SAMPLE).articles


@pytest.fixture(scope="session")
def fitted(sample_articles: list[Article]) -> Recommender:
    """A model fitted on the sample; tests must not modify it."""
    return Recommender.train(sample_articles, n_jobs=1)


@pytest.fixture(scope="session")
def model_path(fitted: Recommender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample model saved once (with its manifest); copy it before changing the files."""
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    fitted.save(path)
    return path


@pytest.fixture(scope="module")
def timeline(sample_articles: list[Article]) -> list[Article]:
    """The sample in publication order: a model is fitted on the first part, the rest arrives later."""
    return sorted(sample_articles, key=lambda a: (a.published or "", a.id))


@pytest.fixture(scope="module")
def base_model(timeline: list[Article], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model fitted on the first 300 articles of the timeline (the updates' and readers' tests add the rest)."""
    path = tmp_path_factory.mktemp("base") / "model.joblib"
    Recommender(n_jobs=1).fit(timeline[:300]).save(path)
    return path


def headless_chrome(width: int) -> Iterator[Any]:
    """Headless Chromium driven by Selenium, ``width`` pixels wide (Debian's packages, as .ci/run installs
    them); in CI a missing browser fails, elsewhere it skips."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: apt-get install chromium chromium-driver")
        pytest.skip("Chromium is not installed: apt-get install chromium chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},1000"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


def copy_model(model_path: Path, directory: Path) -> Path:
    """Copy a saved model (its manifest and the data file it names) into ``directory`` as
    ``model.joblib``, to change them without touching the original."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "model.joblib"
    manifest = read_manifest(model_path)
    shutil.copyfile(data_path(model_path, manifest), data_path(target, manifest))
    shutil.copyfile(manifest_path(model_path), manifest_path(target))
    return target


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def is_locked_for_readers(path: Path) -> bool:
    """Whether a new reader is refused at once: a writer is committing, or waiting to."""
    conn = sqlite3.connect(path, timeout=0)
    try:
        conn.execute("SELECT count(*) FROM related").fetchone()
    except sqlite3.OperationalError as exc:
        assert "database is locked" in str(exc)
        return True
    finally:
        conn.close()
    return False


def stored_lists(store: Path) -> list[tuple[Any, ...]]:
    """Every pair in a SQLite store, sorted, scores rounded: two stores compare equal by their lists."""
    conn = sqlite3.connect(store)
    try:
        return sorted(conn.execute("SELECT article_id, rank, related_id, round(score, 6) FROM related"))
    finally:
        conn.close()
