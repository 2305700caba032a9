"""CSV outputs of a batch: per-frame CSVs (one per video, one per folder of images), summary.csv, tracks.csv,
videos_by_second.csv, errors.csv, skipped.csv; and run.json, the settings that made them (provenance.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

import pandas as pd

from fer_batch.aggregate import normalise_frame_types
from fer_batch.export import atomic_write_bytes, output_path_inside, per_frame_csv_path, write_csv
from fer_batch.provenance import RUN_FILE
from fer_batch.pipeline import InputOutcome
from fer_batch.state import STATE_DIR


OUTPUTS_MANIFEST = "outputs.txt"   # in the state folder: the per-frame CSVs written here, one relative path a line


class IncrementalCsvWriter:
    """Writes each video's CSV as soon as it is analysed, and each image folder's CSV once the batch moves on to
    another folder (inputs come folder by folder, so a folder's photos are done then; videos between its photos do
    not rewrite it, which would cost time quadratic in the folder's length).

    Every per-frame CSV it writes is listed in `.fer-batch/outputs.txt` first; when the run finishes, the ones an
    earlier run listed there and this run did not write are deleted, so the folder holds this run's results only.
    """

    def __init__(self, csv_dir: str | os.PathLike, fresh: bool = False):
        """With `fresh` (a run not resuming), what an earlier run wrote here goes first: its per-frame CSVs and the
        batch tables, so that a folder interrupted mid-run never holds two runs' tables side by side."""
        self.csv_dir = Path(csv_dir)
        self.csv_dir.mkdir(parents=True, exist_ok=True)
        self._manifest = self.csv_dir / STATE_DIR / OUTPUTS_MANIFEST
        self._written: set[str] = set()
        if fresh:
            self._remove_earlier_runs_csvs()
            for name in BATCH_FILES:
                (self.csv_dir / name).unlink(missing_ok=True)
        self._group: str | None = None
        self._group_parts: dict[str, list[pd.DataFrame]] = {}

    def add(self, outcome: InputOutcome, frames: pd.DataFrame) -> None:
        item = outcome.item
        if item.kind == "video":
            if (os.path.dirname(item.source) or ".") != self._group:
                self._flush_group()
            if outcome.results:
                self._write(per_frame_csv_path(self.csv_dir, item.group, "video"), frames)
            return
        if item.group != self._group:
            self._flush_group()
            self._group = item.group
        if outcome.results:
            self._group_parts.setdefault(item.group, []).append(frames)

    def _flush_group(self) -> None:
        """Write the current image folder's CSV with all of its images so far (folders given twice stay whole)."""
        parts = self._group_parts.get(self._group) if self._group is not None else None
        if parts:
            frames = normalise_frame_types(pd.concat(parts, ignore_index=True))
            self._write(per_frame_csv_path(self.csv_dir, self._group, "image"), frames)
        self._group = None

    def _write(self, path: Path, frames: pd.DataFrame) -> None:
        relative = path.relative_to(self.csv_dir.resolve()).as_posix()
        if relative not in self._written:
            self._written.add(relative)
            self._manifest.parent.mkdir(parents=True, exist_ok=True)
            with open(self._manifest, "a", encoding="utf-8", errors="surrogateescape") as manifest:
                manifest.write(relative + "\n")
        write_csv(path, frames)

    def finish(self, analysis) -> None:
        self._flush_group()
        write_batch_tables(analysis, self.csv_dir)
        self._remove_earlier_runs_csvs()

    def _remove_earlier_runs_csvs(self) -> None:
        listed = set(self._manifest.read_text(encoding="utf-8", errors="surrogateescape").splitlines()) \
            if self._manifest.is_file() else set()
        root = self.csv_dir.resolve()
        for relative in sorted(listed - self._written - {""}):
            try:
                path = output_path_inside(root, PurePosixPath(relative))
            except ValueError:
                continue
            if path.suffix == ".csv" and path.is_file():
                path.unlink()
                for folder in path.parents:
                    if folder == root or not folder.is_relative_to(root) or any(folder.iterdir()):
                        break
                    folder.rmdir()
        atomic_write_bytes(self._manifest, "".join(f"{line}\n" for line in sorted(self._written))
                           .encode("utf-8", "surrogateescape"))


def write_all_csvs(analysis, csv_dir: str | os.PathLike) -> None:
    """Write every CSV of an Analysis at once."""
    csv_dir = Path(csv_dir)
    frames = analysis.frames
    for group, part in frames.groupby(frames["source"].map(analysis.groups), sort=False):
        first = part["source"].iloc[0]
        write_csv(per_frame_csv_path(csv_dir, group, analysis.kinds[first]), part)
    write_batch_tables(analysis, csv_dir)


BATCH_FILES = ("summary.csv", "tracks.csv", "videos_by_second.csv", "errors.csv", "skipped.csv", RUN_FILE)


def write_batch_tables(analysis, csv_dir: Path) -> None:
    """The tables of the whole batch: summary.csv, tracks.csv, videos_by_second.csv, errors.csv, skipped.csv."""
    write_csv(csv_dir / "summary.csv", analysis.summary)
    write_csv(csv_dir / "tracks.csv", analysis.tracks)
    write_csv(csv_dir / "videos_by_second.csv", analysis.by_second)
    write_csv(csv_dir / "errors.csv", analysis.errors)
    write_csv(csv_dir / "skipped.csv", analysis.skipped)
    if analysis.settings:
        atomic_write_bytes(csv_dir / RUN_FILE, (json.dumps(analysis.settings, indent=2) + "\n").encode())
