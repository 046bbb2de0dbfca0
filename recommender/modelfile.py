"""Model files: one owner of the formats a model is saved in, and of saving and loading them.

A model saved as ``models/model.joblib`` is two files: the manifest ``models/model.json`` (format and
library versions, parameters, corpus size and checksum, creation time, and the data file's name, size
and SHA-256) and the data file it names, ``models/model-<first 16 hex digits of its SHA-256>.joblib``
(numpy arrays, memory-mapped on load). The manifest is the single commit point: a save writes a new
data file beside the old one, then replaces the manifest, then deletes the data files no manifest names;
whenever a save dies, the manifest names a complete data file, the old one or the new one. Models
saved before content-addressed names (a manifest naming ``model.joblib``) keep their data at the model
path itself, and still load.

Updates since the save live in an overlay beside it (``model.updates.joblib``: the rows added and the
fitted rows dropped), written by :class:`PendingOverlay` and applied on load. Each update is also
appended to a journal (``model.journal.jsonl``: one line per batch, with its articles as given), from
which a ``precompute`` that ran while updates landed brings its store up to them, and a ``train``
carries into the new fit the updates made after its corpus was written (their text analysed anew).

joblib files are pickles: loading one can execute code. Load only models you built yourself.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import mmap
import os
import platform
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy

from ._atomic import atomic_write, fsync_directory, fsync_file, locked_directory, sweep_leftovers, temporary_beside
from ._manifest import MANIFEST_SCHEMA, VERSION_SCHEMA, disagreement, schema_problem
from ._sparse import csr_from_state, csr_state, rows_from
from ._version import __version__
from .corpus import Article, article_from_record
from .errors import ModelError
from .folding import assemble, fold, others
from .neighbors import time_origin
from .state import ArticleColumns, FittedState, StringColumn, UpdateCounts

__all__ = [
    "FORMAT_VERSION",
    "JournalEntry",
    "JournalReader",
    "LoadedModel",
    "PendingOverlay",
    "append_journal",
    "apply_overlay",
    "data_path",
    "journal_path",
    "load",
    "manifest",
    "manifest_path",
    "overlay_generation",
    "overlay_path",
    "read_journal",
    "read_manifest",
    "read_overlay",
    "save",
]

FORMAT_VERSION = 1
OVERLAY_FORMAT = 1
# Saved before these parameters existed: what such a model was built and ranked with then.
_OLD_DEFAULTS = {"time_weight": 1.0, "stopwords": "indonesian", "numbers": False, "topic_dims": None}


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model as read from its files: its parameters, fitted state (updates applied) and manifest."""

    params: dict[str, Any]
    state: FittedState
    manifest: dict[str, Any]


def manifest_path(model_path: str | Path) -> Path:
    """Where the manifest of a model lives: ``models/model.joblib`` → ``models/model.json``."""
    return Path(model_path).with_suffix(".json")


_DATA_NAME = re.compile(r"-[0-9a-f]{16}\.joblib\Z")  # the tail of a content-addressed data file's name


def data_path(model_path: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """The file holding a model's arrays: the one its manifest (read now unless given) names beside it,
    ``model-<sha256[:16]>.joblib``; for a model saved before names were content-addressed, the model
    path itself."""
    model_path = Path(model_path)
    name = str((manifest if manifest is not None else read_manifest(model_path))["model_file"]["name"])
    return model_path.with_name(name) if _DATA_NAME.search(name) else model_path


def _data_name(model_path: Path, sha256: str) -> str:
    return f"{model_path.stem}-{sha256[:16]}.joblib"


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:  # an empty file cannot be mapped
            return hashlib.sha256(b"").hexdigest()
        # Hashed straight from the mapped pages, in one call without the GIL: 12% faster than reading chunks
        # into Python buffers (0.30 s against 0.34 s for a 366 MB model).
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return hashlib.sha256(mapped).hexdigest()


def overlay_path(model_path: str | Path) -> Path:
    """Where the updates of a model file live: ``model.joblib`` → ``model.updates.joblib``."""
    return Path(model_path).with_suffix(".updates.joblib")


def manifest(state: FittedState, params: dict[str, Any]) -> dict[str, Any]:
    """Everything about a model that fits in a small JSON file (no model file hash yet)."""
    return {
        "format_version": FORMAT_VERSION,
        "package": "recommender",
        "package_version": __version__,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": importlib.metadata.version("scikit-learn"),  # not imported: a second
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "joblib": joblib.__version__,
        },
        "params": params,
        "corpus": state.corpus,
        "terms": int(state.idf.shape[0]),
        "nonzeros": int(state.matrix.nnz),
        "created_at": state.fitted_at,
        "updates": state.updates.to_dict(),
    }


def save(
    state: FittedState, params: dict[str, Any], path: str | Path, *, carry_since: float | None = None
) -> tuple[FittedState, dict[str, Any]]:
    """Save ``state`` (fitted with ``params``) as ``path``: a new data file beside it, then its manifest,
    which commits the save (see the module's notes). Returns the state as the base of later updates, and
    the manifest. Whenever the process dies, ``path`` loads as the previous model or as this one.

    ``carry_since`` (a ``time.time()``): the updates made to the model saved at ``path`` since then (while
    this one was being fitted, say) are folded into this one, as an overlay, in the same turn of the lock;
    otherwise the model's journal of updates starts afresh."""
    path = Path(path)
    columns = {"terms": state.terms.state(), **state.articles.state()}
    data_state = {
        "format_version": FORMAT_VERSION,
        "params": params | {"ngram_range": tuple(params["ngram_range"])},
        "analyzer": state.analyzer,
        "idf": state.idf,
        "matrix": csr_state(state.matrix),
        "index_t": csr_state(state.index_t),
        "columns": columns,
        "timestamps": state.timestamps,
        "time_origin": state.time_origin,
        "topic_terms": state.topic_terms,
        "topics": state.topics,
        "corpus": state.corpus,
        "fitted_at": state.fitted_at,
        "updates": state.updates.to_dict(),
    }
    saved = manifest(state, params)
    mpath = manifest_path(path)
    data_tmp = temporary_beside(path)
    manifest_tmp: Path | None = None
    try:
        joblib.dump(data_state, data_tmp)  # uncompressed, so arrays can be memory-mapped on load
        fsync_file(data_tmp)
        sha256 = _sha256(data_tmp)
        data = path.with_name(_data_name(path, sha256))
        saved["model_file"] = {"name": data.name, "bytes": data_tmp.stat().st_size, "sha256": sha256}
        # Written in full before anything is renamed: a manifest that cannot be written changes nothing.
        manifest_tmp = temporary_beside(mpath)
        manifest_tmp.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        fsync_file(manifest_tmp)
        # Writers of models in this folder take turns from here: the deletions below must not take a
        # data file that another writer has renamed into place but not named in its manifest yet.
        with locked_directory(path.parent):
            previous = _named_data(path)
            previous_fit = _saved_fit(path)
            os.replace(data_tmp, data)
            try:
                fsync_directory(path.parent)  # the data file's name is on disk before a manifest names it
                os.replace(manifest_tmp, mpath)  # the commit point
            except BaseException:
                if data != previous:  # ours, and named by no manifest
                    data.unlink(missing_ok=True)
                raise
            fsync_directory(path.parent)
            _delete_unnamed(path, data)
            # The data file now holds every update: an overlay of earlier updates beside it is obsolete
            # (and ignored until deleted: it names the previous data file's SHA-256). Deleted under the
            # lock: an updater that loads this model next writes an overlay of its own.
            overlay_path(path).unlink(missing_ok=True)
            sweep_leftovers(overlay_path(path))  # and what killed updaters left of theirs
            based = state.rebased(sha256)
            carried: list[JournalEntry] = []
            # The same fit again (the same corpus trained within the same second: an identical file) carries
            # them too: its overlay, deleted above, held them.
            if carry_since is not None and previous_fit is not None:
                based, carried = _carry(based, path, previous_fit, carry_since)
            if carried:
                PendingOverlay(based, path).commit()
                _write_journal(path, carried)
            else:
                journal_path(path).unlink(missing_ok=True)
    except BaseException:
        data_tmp.unlink(missing_ok=True)
        if manifest_tmp is not None:
            manifest_tmp.unlink(missing_ok=True)
        raise
    return based, saved


def _saved_fit(path: Path) -> str | None:
    """The SHA-256 of the data file the manifest at ``path`` names now (``None``: no readable model)."""
    try:
        return str(read_manifest(path)["model_file"]["sha256"])
    except ModelError:
        return None


def _from_data(path: Path, saved: dict[str, Any], *, mmap: bool, verify: bool) -> LoadedModel:
    """The model in the data file that ``saved`` (a manifest read and checked by :func:`read_manifest`)
    names; :class:`FileNotFoundError` if that file is gone."""
    expected = saved["model_file"]
    data = data_path(path, saved)
    if data.stat().st_size != expected["bytes"] or (verify and _sha256(data) != expected["sha256"]):
        raise ModelError(
            f"{data} does not match its manifest {manifest_path(path).name} (corrupt, truncated or "
            "tampered with): retrain it with `recommender train`"
        )
    try:
        loaded = joblib.load(data, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise
    except Exception as exc:  # a pickle can fail in many ways; all mean the file is unusable
        raise ModelError(f"cannot read model file {data}: {exc}") from None
    if not isinstance(loaded, dict) or loaded.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{data} is not a recommender model file of format {FORMAT_VERSION}")
    params = _OLD_DEFAULTS | dict(loaded["params"])
    params["ngram_range"] = tuple(params["ngram_range"])
    timestamps = loaded["timestamps"]
    matrix = csr_from_state(loaded["matrix"])
    state = FittedState(
        analyzer=loaded["analyzer"],
        terms=StringColumn(**loaded["columns"]["terms"]),
        idf=loaded["idf"],
        sublinear_tf=bool(params["sublinear_tf"]),
        matrix=matrix,
        index_t=csr_from_state(loaded["index_t"]),
        topic_terms=loaded.get("topic_terms"),
        topics=loaded.get("topics"),
        articles=ArticleColumns.from_state(loaded["columns"]),
        timestamps=timestamps,
        time_origin=loaded.get("time_origin", time_origin(np.asarray(timestamps))),
        corpus=loaded["corpus"],
        fitted_at=loaded["fitted_at"],
        updates=UpdateCounts.from_dict(loaded.get("updates", {})),
        base_rows=np.arange(matrix.shape[0], dtype=np.int64),
        base_size=matrix.shape[0],
        base_sha256=expected["sha256"],
    )
    # What lookups use comes from the data file; the manifest must say the same, or `info` (which shows
    # it) and hand edits would silently disagree with the model.
    facts = {
        "params": params | {"ngram_range": list(params["ngram_range"])},
        "corpus": state.corpus,
        "created_at": state.fitted_at,
        "terms": int(state.idf.shape[0]),
        "nonzeros": int(state.matrix.nnz),
        "updates": state.updates.to_dict(),
    }
    problem = disagreement(saved, facts, data.name)
    if problem is not None:
        raise ModelError(
            f"manifest {manifest_path(path)}: {problem}: restore the manifest, or retrain with "
            "`recommender train` to change the model"
        )
    overlay = read_overlay(path, expected["sha256"])
    if overlay is not None:
        state = apply_overlay(state, overlay)
    return LoadedModel(params, state, saved)


def read_manifest(model_path: str | Path) -> dict[str, Any]:
    """The manifest beside ``model_path``, checked against the manifest's JSON Schema; :class:`ModelError`
    saying what is wrong with it (the field, what it must be, what it is)."""
    return _read_manifest(Path(model_path))[0]


_Stamp = tuple[int, int, int, int]  # which file a manifest was: device, inode, modification time, size


def _stamp(stat: os.stat_result) -> _Stamp:
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _manifest_stamp(model_path: Path) -> _Stamp | None:
    """Which file the manifest beside ``model_path`` is now (``None``: none). A save commits by renaming a
    new manifest into place, so a save that commits changes it."""
    try:
        return _stamp(os.stat(manifest_path(model_path)))
    except OSError:
        return None


def _read_manifest(model_path: Path) -> tuple[dict[str, Any], _Stamp]:
    """:func:`read_manifest`, and which file it read."""
    mpath = manifest_path(model_path)
    if not mpath.is_file():
        if not model_path.exists() and not _data_files(model_path):
            raise ModelError(f"no model at {model_path}: train one first with `recommender train`")
        raise ModelError(f"no manifest {mpath.name} beside {model_path}: was it saved by recommender?")
    try:
        with open(mpath, "rb") as fh:
            stamp = _stamp(os.fstat(fh.fileno()))
            manifest = json.loads(fh.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"manifest {mpath} is unreadable ({exc}): retrain with `recommender train`") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"manifest {mpath} is not a JSON object: retrain with `recommender train`")
    # The version first: a manifest of another format is not expected to meet this format's schema.
    problem = schema_problem(manifest, VERSION_SCHEMA)
    if problem is None and manifest["format_version"] != FORMAT_VERSION:
        raise ModelError(
            f"{model_path} has model format {manifest['format_version']}, this version of recommender reads "
            f"format {FORMAT_VERSION}: retrain it with `recommender train`"
        )
    problem = problem or schema_problem(manifest, MANIFEST_SCHEMA)
    if problem is not None:
        raise ModelError(
            f"manifest {mpath}: field '{problem.field}' {problem.text}: retrain with `recommender train` or "
            "restore the file"
        )
    return manifest, stamp


def load(path: str | Path, *, mmap: bool = True, verify: bool = True) -> LoadedModel:
    """The model saved at ``path``, checked against its manifest (and SHA-256 when ``verify``), with the
    updates of its overlay applied."""
    path = Path(path)
    for _ in range(3):
        saved, stamp = _read_manifest(path)
        try:
            loaded = _from_data(path, saved, mmap=mmap, verify=verify)
        except FileNotFoundError:
            if _manifest_stamp(path) == stamp:  # still the manifest we read: its data file is really gone
                raise ModelError(
                    f"no model file {data_path(path, saved)} beside its manifest {manifest_path(path).name}: "
                    "retrain with `recommender train`"
                ) from None
            continue
        # A save that committed meanwhile may have deleted the data file or the updates this manifest
        # names, before or while they were read: then start again from the new manifest. A save that
        # commits after this check leaves a model that was whole when loaded.
        if _manifest_stamp(path) == stamp:
            return loaded
    raise ModelError(f"{path} changed three times while it was being loaded (saves in quick succession): load it again")


def _named_data(path: Path) -> Path | None:
    """The data file the manifest beside ``path`` names now, or ``None`` if there is no usable manifest."""
    try:
        return data_path(path)
    except ModelError:
        return None


def _data_files(path: Path) -> list[Path]:
    """The files beside ``path`` named as its data files are (``model-<16 hex digits>.joblib``)."""
    own = re.compile(re.escape(path.stem) + _DATA_NAME.pattern)
    try:
        # A file so named may be another model's own path (model-0123456789abcdef.joblib with its
        # manifest beside it): not ours.
        return [p for p in path.parent.iterdir() if own.fullmatch(p.name) and not manifest_path(p).exists()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _delete_unnamed(path: Path, keep: Path) -> None:
    """Delete the data files of the model ``path`` other than ``keep``: those of earlier saves, and those
    of saves killed before their manifest named them; and the data file of an older layout (``path``)."""
    for entry in _data_files(path):
        if entry != keep:
            entry.unlink(missing_ok=True)
    if path != keep and path.is_file():
        path.unlink(missing_ok=True)


# --- the overlay of updates ------------------------------------------------------------------------


def _overlay_state(state: FittedState) -> dict[str, Any]:
    """What :func:`apply_overlay` needs to rebuild ``state`` from its fitted file."""
    base = np.asarray(state.base_rows)
    first_added = int(np.count_nonzero(base >= 0))
    rows = np.arange(first_added, len(state))
    columns = state.articles.take(rows).state()
    return {
        "format_version": OVERLAY_FORMAT,
        "base_sha256": state.base_sha256,
        "updates": state.updates.to_dict(),
        "removed_base": others(state.base_size, base[base >= 0]),
        "added": {
            "matrix": csr_state(rows_from(state.matrix, first_added)),
            "columns": columns,
            "timestamps": np.asarray(state.timestamps[first_added:]),
        },
    }


def read_overlay(model_path: Path, base_sha256: str) -> dict[str, Any] | None:
    """The overlay beside ``model_path`` if it belongs to the fitted file with ``base_sha256``; ``None``
    if there is none, or it is left from an earlier fit (a full save supersedes it)."""
    path = overlay_path(model_path)
    if not path.is_file():
        return None
    try:
        loaded = joblib.load(path)
    except FileNotFoundError:  # deleted since: a save committed a new model, which the load notices
        return None
    except Exception:  # a pickle can fail in many ways (its messages say little); all mean the file is unusable
        raise ModelError(
            f"cannot read the model's updates {path} (corrupt or truncated): delete it to go back to the fitted "
            "model, or retrain"
        ) from None
    if not isinstance(loaded, dict) or loaded.get("format_version") != OVERLAY_FORMAT:
        raise ModelError(f"{path} is not a recommender updates file: delete it to go back to the fit")
    return loaded if loaded.get("base_sha256") == base_sha256 else None


def apply_overlay(state: FittedState, overlay: dict[str, Any]) -> FittedState:
    """``state`` as loaded from its fitted file, with the overlay's removals and additions."""
    removed = np.asarray(overlay["removed_base"], dtype=np.int64)
    kept = others(len(state), removed) if removed.size else None
    added = overlay["added"]
    return assemble(
        state,
        kept,
        csr_from_state(added["matrix"]),
        ArticleColumns.from_state(added["columns"]),
        np.asarray(added["timestamps"], dtype=np.float64),
        UpdateCounts.from_dict(overlay["updates"]),
    )


class PendingOverlay:
    """The overlay of ``state`` (a model loaded from ``model_path`` with updates folded in), written
    beside it in full but not in force: :meth:`commit` renames it into place, :meth:`discard` deletes it.
    Callers hold the model folder's lock (:func:`~recommender._atomic.locked_directory`)."""

    def __init__(self, state: FittedState, model_path: str | Path) -> None:
        if state.base_sha256 is None:
            raise ModelError(f"the model in memory was not loaded from {model_path}: load it to update it there")
        self.target = overlay_path(model_path)
        self.temporary = temporary_beside(self.target)
        try:
            joblib.dump(_overlay_state(state), self.temporary)
            fsync_file(self.temporary)
        except BaseException:
            self.temporary.unlink(missing_ok=True)
            raise

    def commit(self) -> None:
        os.replace(self.temporary, self.target)

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)


# --- the journal of updates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One batch of updates to a fit, as it was given: its generation, when it landed, its articles (added
    or edited) and the ids it removed."""

    fit: str  # the SHA-256 of the fitted data file the batch was folded into
    generation: int
    at: float  # time.time() when it landed
    articles: tuple[Article, ...]
    removed: tuple[str, ...]


def journal_path(model_path: str | Path) -> Path:
    """Where the journal of a model's updates lives: ``model.joblib`` → ``model.journal.jsonl``."""
    return Path(model_path).with_suffix(".journal.jsonl")


def _journal_line(entry: JournalEntry) -> str:
    record = {
        "fit": entry.fit,
        "generation": entry.generation,
        "at": entry.at,
        "articles": [asdict(a) | {"tags": list(a.tags)} for a in entry.articles],
        "removed": list(entry.removed),
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def append_journal(
    model_path: str | Path, state: FittedState, articles: Iterable[Article], removed: Iterable[str]
) -> None:
    """Record the batch that made ``state`` (a model loaded from ``model_path``, updated). Callers hold the
    model folder's lock, as for :class:`PendingOverlay`."""
    if state.base_sha256 is None:
        raise ModelError(f"the model in memory was not loaded from {model_path}: load it to update it there")
    entry = JournalEntry(state.base_sha256, state.updates.generation, time.time(), tuple(articles), tuple(removed))
    with open(journal_path(model_path), "a+b") as out:
        if out.tell() > 0:
            out.seek(-1, os.SEEK_END)
            if out.read(1) != b"\n":  # a writer killed mid-line: end its line, or it would swallow ours
                out.write(b"\n")
        out.write(_journal_line(entry).encode("utf-8"))
        out.flush()
        os.fsync(out.fileno())


def read_journal(model_path: str | Path, fit: str, *, after: int = 0, since: float | None = None) -> list[JournalEntry]:
    """The journal's batches folded into the fit ``fit`` with a generation above ``after`` (and landed at
    or after ``since``), in order; of a generation found twice, the last. A torn line (a writer killed
    mid-line) is skipped."""
    try:
        text = journal_path(model_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return _entries(text.splitlines(), fit, after, since)


def _entries(lines: Iterable[str], fit: str, after: int, since: float | None) -> list[JournalEntry]:
    found: dict[int, JournalEntry] = {}
    for line in lines:
        try:
            record = json.loads(line)
            if record["fit"] != fit or int(record["generation"]) <= after:
                continue
            entry = JournalEntry(
                fit,
                int(record["generation"]),
                float(record["at"]),
                tuple(article_from_record(a) for a in record["articles"]),
                tuple(str(i) for i in record["removed"]),
            )
        except (ValueError, KeyError, TypeError):
            continue
        if since is None or entry.at >= since:
            found[entry.generation] = entry
    return [found[g] for g in sorted(found)]


class JournalReader:
    """Follows a model's journal as it grows: each :meth:`new_entries` parses only the lines appended
    since the one before (from the start again once a save has replaced the journal)."""

    def __init__(self, model_path: str | Path) -> None:
        self.path = journal_path(model_path)
        self._file: tuple[int, int] | None = None  # (device, inode) of the journal read so far
        self._offset = 0

    def new_entries(self, fit: str, *, after: int) -> list[JournalEntry]:
        """The batches of ``fit`` above generation ``after`` among the complete lines not read yet."""
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if (st.st_dev, st.st_ino) != self._file or st.st_size < self._offset:
                    self._file, self._offset = (st.st_dev, st.st_ino), 0
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._offset += len(complete)
        return _entries(complete.decode("utf-8", errors="replace").splitlines(), fit, after, None)


def overlay_generation(model_path: str | Path, base_sha256: str) -> int | None:
    """The update generation of the overlay beside ``model_path`` if it belongs to the fit ``base_sha256``
    (``None``: no overlay of that fit)."""
    overlay = read_overlay(Path(model_path), base_sha256)
    return None if overlay is None else int(overlay["updates"]["generation"])


def _write_journal(model_path: Path, entries: list[JournalEntry]) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text("".join(map(_journal_line, entries)), encoding="utf-8")

    atomic_write(journal_path(model_path), write)


def _carry(state: FittedState, path: Path, previous_fit: str, since: float) -> tuple[FittedState, list[JournalEntry]]:
    """``state`` (just saved as ``path``) with the updates made to the previous fit since ``since`` folded
    in, and those batches as entries of the new fit's journal."""
    carried: list[JournalEntry] = []
    for entry in read_journal(path, previous_fit, since=since):
        rows = state.rows()
        removed = [i for i in entry.removed if i in rows]  # never in the new corpus: nothing to remove
        if not entry.articles and not removed:
            continue
        state, _ = fold(state, entry.articles, removed)
        carried.append(
            JournalEntry(str(state.base_sha256), state.updates.generation, entry.at, entry.articles, tuple(removed))
        )
    return state, carried
