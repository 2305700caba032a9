"""Crash safety for a batch writing into one output folder: a lock held for the run, and a journal of
finished inputs that `--resume` replays instead of analysing them again.

Layout, inside the CSV folder:
    .fer-batch/lock           flock()ed while a run writes here (the kernel drops it when the process dies)
    .fer-batch/journal.jsonl  a header line (the options that change results), then one line per finished input,
                              and a last line {"complete": true} once the run has written all of its outputs
    .fer-batch/parts/*.npz    each finished input's per-frame results and thumbnails, written before its line
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fer_batch.export import atomic_write_bytes
from fer_batch.options import AnalyzeOptions
from fer_batch.pipeline import InputOutcome
from fer_batch.sources import InputFile
from fer_batch.types import Faces, FrameResult, InputError

STATE_DIR = ".fer-batch"
JOURNAL_VERSION = 1
# options that change what is written for an input; everything else in AnalyzeOptions counts
OPTIONS_WITHOUT_EFFECT = frozenset({"quiet", "include_hidden",
                                    # where the work runs: a run begun locally may resume on Ray, and back
                                    "backend", "address", "segment_s", "workers", "cpus_per_worker"})
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # export.atomic_write_bytes' temporaries


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until the block ends, so what it writes is never half made
    (a KeyboardInterrupt inside numpy's zip writer leaves an object whose clean-up prints a traceback)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


class RunLocked(RuntimeError):
    """Another run is writing into the same output folder."""


class ResumeRefused(RuntimeError):
    """The journal was written with options that would give different results."""


def result_options(options: AnalyzeOptions) -> dict:
    """The options recorded in the journal: those that change results, with the detector's defaults spelled out
    (`--detector mtcnn` resumes a run that left the detector to default) and the model file's SHA-256."""
    from fer_batch.provenance import model_identity, with_detector_defaults

    recorded = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
                if f.name not in OPTIONS_WITHOUT_EFFECT and f.name != "model"}
    # the model by its content: a copy, a move or a reinstall of the same file does not stop a resume
    recorded["model_sha256"] = model_identity(options.model)["model_sha256"]
    return json.loads(json.dumps(with_detector_defaults(recorded)))  # as it reads after a trip through the journal


def file_identity(item: InputFile) -> list | None:
    """Path, size and modification time: an input whose identity is unchanged is not analysed again."""
    try:
        stat = item.path.stat()
    except OSError:
        return None
    return [os.path.abspath(item.path), stat.st_size, stat.st_mtime_ns]


class RunState:
    """The lock and journal of one output folder. Use as a context manager around the run."""

    def __init__(self, csv_dir: str | os.PathLike):
        self.csv_dir = Path(csv_dir)
        self.dir = self.csv_dir / STATE_DIR
        self.journal_path = self.dir / "journal.jsonl"
        self.parts_dir = self.dir / "parts"
        self._lock_fd: int | None = None
        self._identities: dict[str, list | None] = {}
        self.discarded = 0   # inputs an interrupted run had finished, dropped by a start without resume
        self.discarded_resumable = False   # ... and that run's options were this run's: --resume would have kept them

    # -- lock ------------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the folder's lock, or raise RunLocked naming the process that holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(f"another fer-batch run (process {holder}) is writing into {self.csv_dir}; "
                            "wait for it to finish or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._lock_fd = fd
        remove_stale_temporaries(self.csv_dir)

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def __enter__(self) -> "RunState":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- journal ---------------------------------------------------------------------------------
    def start(self, options: AnalyzeOptions, inputs: Sequence[InputFile], resume: bool) -> dict[str, InputOutcome]:
        """`resumable` then `begin`: the inputs finished by an earlier run here, unchanged since, by source."""
        finished = self.resumable(options, inputs) if resume else None
        self.begin(options, inputs, resuming=finished is not None)
        return finished or {}

    def resumable(self, options: AnalyzeOptions, inputs: Sequence[InputFile]) -> dict[str, InputOutcome] | None:
        """What `--resume` continues from, reading only: the inputs an earlier run here finished, unchanged since,
        by source; None when there is no journal to continue. Raises ResumeRefused when the earlier run used
        options that change results."""
        self._identities = {item.source: file_identity(item) for item in inputs}
        if not self.journal_path.is_file():
            return None
        header, entries = self._read()
        if header is None:
            return None
        wanted = result_options(options)
        recorded = _recorded_options(header)
        if recorded != wanted:
            raise ResumeRefused(_options_differ(recorded, wanted, self.csv_dir))
        return self._replayable(inputs, entries)

    def begin(self, options: AnalyzeOptions, inputs: Sequence[InputFile], resuming: bool) -> None:
        """Continue the journal (`resuming`), or discard any earlier one and start a new one; `discarded` then
        tells how many inputs the earlier one held if its run was interrupted."""
        if not self._identities:
            self._identities = {item.source: file_identity(item) for item in inputs}
        if resuming:
            self._end_torn_line()
            return
        self.discarded = interrupted_run_finished(self.csv_dir)
        if self.discarded:
            header = _read_journal(self.journal_path)[0] or {}
            self.discarded_resumable = _recorded_options(header) == result_options(options)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        header_line = json.dumps({"version": JOURNAL_VERSION, "options": result_options(options)}, ensure_ascii=True)
        atomic_write_bytes(self.journal_path, (header_line + "\n").encode("ascii"))

    def record(self, outcome: InputOutcome) -> None:
        """Journal one newly finished input: its part file first, then its line (a torn last line is ignored)."""
        item = outcome.item
        identity = self._identities.get(item.source)
        if identity is None:
            return
        name = hashlib.sha1(item.source.encode("utf-8", "surrogateescape")).hexdigest()[:20] + ".npz"
        entry = {
            "source": item.source, "identity": identity, "kind": item.kind, "group": item.group, "part": name,
            "duration_s": outcome.duration_s, "problems": outcome.problems,
            "error": None if outcome.error is None else [outcome.error.stage, outcome.error.reason],
        }
        with interrupts_deferred():
            atomic_write_bytes(self.parts_dir / name, _pack_results(outcome))
            self._append(entry)

    def mark_complete(self) -> None:
        """Note that the run wrote all of its outputs: a later run starting afresh here loses no unfinished work."""
        self._append({"complete": True})

    def _append(self, entry: dict) -> None:
        line = (json.dumps(entry, ensure_ascii=True) + "\n").encode("ascii")
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _end_torn_line(self) -> None:
        """A run killed mid-append leaves a line without its newline: end it, so the next line stands alone."""
        with open(self.journal_path, "rb+") as journal:
            journal.seek(0, os.SEEK_END)
            if journal.tell() and (journal.seek(-1, os.SEEK_END), journal.read(1))[1] != b"\n":
                journal.write(b"\n")

    def finished_sources(self) -> list[str]:
        """The sources journalled as finished (for tests and messages)."""
        return [entry["source"] for entry in self._read()[1]]

    def _read(self) -> tuple[dict | None, list[dict]]:
        return _read_journal(self.journal_path)[:2]

    def _replayable(self, inputs: Iterable[InputFile], entries: list[dict]) -> dict[str, InputOutcome]:
        """The journalled outcomes a resumed run takes as they are: not those of inputs changed since, nor of inputs
        that failed (tried again, as their cause, say a permission, may have been fixed without changing the file)."""
        latest = {entry["source"]: entry for entry in entries}
        finished = {}
        for item in inputs:
            entry = latest.get(item.source)
            identity = self._identities.get(item.source)
            if entry is None or identity is None or entry["identity"] != identity or entry.get("error") is not None:
                continue
            try:
                finished[item.source] = _unpack_outcome(item, entry, (self.parts_dir / entry["part"]).read_bytes())
            except (OSError, ValueError, KeyError):
                continue  # a missing or damaged part: analyse the input again
        return finished


def _recorded_options(header: dict) -> dict:
    """A journal header's options, with the detector's defaults spelled out (older journals left them unset)."""
    from fer_batch.provenance import with_detector_defaults

    return json.loads(json.dumps(with_detector_defaults(header.get("options") or {})))


def _read_journal(path: Path) -> tuple[dict | None, list[dict], bool]:
    """The header, the finished inputs' entries, and whether the run that wrote it last completed."""
    parsed = []
    for line in path.read_bytes().split(b"\n"):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue  # the torn last line of a killed run, or the empty string after the final newline
    if not parsed or not isinstance(parsed[0], dict) or parsed[0].get("version") != JOURNAL_VERSION:
        return None, [], False
    complete = isinstance(parsed[-1], dict) and parsed[-1].get("complete") is True
    return parsed[0], [p for p in parsed[1:] if isinstance(p, dict) and "source" in p], complete


def interrupted_run_finished(csv_dir: str | os.PathLike) -> int:
    """How many inputs the journal in `csv_dir` holds as finished without a failure (what --resume keeps) when the
    run that wrote it stopped before its end; else 0."""
    journal = Path(csv_dir) / STATE_DIR / "journal.jsonl"
    try:
        header, entries, complete = _read_journal(journal)
    except OSError:
        return 0
    if header is None or complete:
        return 0
    latest = {entry["source"]: entry for entry in entries}
    return sum(entry.get("error") is None for entry in latest.values())   # failed ones are analysed again anyway


def _options_differ(before: dict, now: dict, csv_dir: Path) -> str:
    changed = [f"{key.removesuffix('_s')} {_plain(before.get(key))} -> {_plain(now.get(key))}"
               for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key)]
    return (f"cannot resume in {csv_dir}: the earlier run there used other options ({'; '.join(changed)}), which "
            "can change results; run with the same options, or without --resume to start afresh")


def _plain(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporaries a killed run left behind (hidden `.<name>.<random>.tmp` and `.<name>.part.mp4` files)."""
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            if _TEMPORARY.match(name) or (name.startswith(".") and name.endswith(".part.mp4")):
                Path(dirpath, name).unlink(missing_ok=True)


# -- one input's results as arrays (np.load with allow_pickle=False reads them back) ------------------
def _pack_results(outcome: InputOutcome) -> bytes:
    results = outcome.results
    faces = [r.faces for r in results]
    counts = np.array([len(f) for f in faces], np.int64)
    total = int(counts.sum())

    def stacked(get, shape, dtype):
        parts = [np.asarray(get(f), dtype).reshape((-1, *shape)) for f in faces if len(f)]
        return np.concatenate(parts) if parts else np.zeros((0, *shape), dtype)

    keys = sorted(outcome.thumbnails)
    arrays = {
        "frame": np.array([r.index for r in results], np.int64),
        "time_s": np.array([np.nan if r.time_s is None else r.time_s for r in results], np.float64),
        "counts": counts,
        "has_probs": np.array([f.probs is not None for f in faces], bool),
        "has_tracks": np.array([f.track_ids is not None for f in faces], bool),
        "boxes": stacked(lambda f: f.boxes, (4,), np.float32),
        "scores": stacked(lambda f: f.scores, (), np.float32),
        "probs": stacked(lambda f: f.probs if f.probs is not None else np.zeros((len(f), 7)), (7,), np.float32),
        "tracks": stacked(lambda f: f.track_ids if f.track_ids is not None else np.zeros(len(f)), (), np.int64),
        "thumb_keys": np.array(keys, np.int64),
        "thumb_scores": np.array([outcome.thumbnails[k][0] for k in keys], np.float64),
    }
    for n, key in enumerate(keys):
        arrays[f"thumb_{n}"] = outcome.thumbnails[key][1]
    assert len(arrays["boxes"]) == total
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _unpack_outcome(item: InputFile, entry: dict, data: bytes) -> InputOutcome:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    results = []
    start = 0
    for i, count in enumerate(arrays["counts"].tolist()):
        end = start + count
        faces = Faces(arrays["boxes"][start:end], arrays["scores"][start:end],
                      probs=arrays["probs"][start:end] if arrays["has_probs"][i] else None,
                      track_ids=arrays["tracks"][start:end] if arrays["has_tracks"][i] else None)
        time_s = float(arrays["time_s"][i])
        results.append(FrameResult(item.source, int(arrays["frame"][i]), None if np.isnan(time_s) else time_s, faces))
        start = end
    thumbnails = {int(key): (float(score), arrays[f"thumb_{n}"])
                  for n, (key, score) in enumerate(zip(arrays["thumb_keys"], arrays["thumb_scores"]))}
    error = entry.get("error")
    return InputOutcome(item, results, entry.get("duration_s"),
                        InputError(item.source, error[0], error[1]) if error else None,
                        list(entry.get("problems") or []), thumbnails)
