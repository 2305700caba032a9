"""CSV outputs of a batch: per-frame CSVs (one per video, one per folder of images), summary.csv, tracks.csv,
videos_by_second.csv, errors.csv, skipped.csv; and run.json, the settings that made them (provenance.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from fer_batch.aggregate import normalise_frame_types
from fer_batch.export import atomic_write_bytes, per_frame_csv_path, write_csv
from fer_batch.provenance import RUN_FILE
from fer_batch.pipeline import InputOutcome


class IncrementalCsvWriter:
    """Writes each video's CSV as soon as it is analysed, and each image folder's CSV as its images are done."""

    def __init__(self, csv_dir: str | os.PathLike):
        self.csv_dir = Path(csv_dir)
        self.csv_dir.mkdir(parents=True, exist_ok=True)
        self._group: str | None = None
        self._group_parts: dict[str, list[pd.DataFrame]] = {}

    def add(self, outcome: InputOutcome, frames: pd.DataFrame) -> None:
        item = outcome.item
        if item.kind == "video":
            self._flush_group()
            if outcome.results:
                write_csv(per_frame_csv_path(self.csv_dir, item.group, "video"), frames)
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
            write_csv(per_frame_csv_path(self.csv_dir, self._group, "image"), frames)
        self._group = None

    def finish(self, analysis) -> None:
        self._flush_group()
        write_batch_tables(analysis, self.csv_dir)


def write_all_csvs(analysis, csv_dir: str | os.PathLike) -> None:
    """Write every CSV of an Analysis at once."""
    csv_dir = Path(csv_dir)
    frames = analysis.frames
    for group, part in frames.groupby(frames["source"].map(analysis.groups), sort=False):
        first = part["source"].iloc[0]
        write_csv(per_frame_csv_path(csv_dir, group, analysis.kinds[first]), part)
    write_batch_tables(analysis, csv_dir)


def write_batch_tables(analysis, csv_dir: Path) -> None:
    """The tables of the whole batch: summary.csv, tracks.csv, videos_by_second.csv, errors.csv, skipped.csv."""
    write_csv(csv_dir / "summary.csv", analysis.summary)
    write_csv(csv_dir / "tracks.csv", analysis.tracks)
    write_csv(csv_dir / "videos_by_second.csv", analysis.by_second)
    write_csv(csv_dir / "errors.csv", analysis.errors)
    write_csv(csv_dir / "skipped.csv", analysis.skipped)
    if analysis.settings:
        atomic_write_bytes(csv_dir / RUN_FILE, (json.dumps(analysis.settings, indent=2) + "\n").encode())
