"""What a run shows in the terminal: tqdm progress over files and frames, and a one-screen summary at the end."""
from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from fer_batch.sources import NOT_FOUND


class ProgressBars:
    """tqdm bars over files and frames, drawn from `open()` on, so that refusals and messages before the work
    starts print on lines of their own. Used as a context manager; updates before `open()` open the bars."""

    def __init__(self, n_files: int, quiet: bool):
        self.n_files = n_files
        self.quiet = quiet
        self._bars: dict[str, tqdm] = {}

    def open(self) -> None:
        if not self._bars:
            self._bars = {
                "files": tqdm(total=self.n_files, desc="files ", unit="file", disable=self.quiet, file=sys.stderr,
                              position=0, dynamic_ncols=True),
                "frames": tqdm(desc="frames", unit="frame", disable=self.quiet, file=sys.stderr, position=1,
                               dynamic_ncols=True),
            }

    def update(self, kind: str, n: int) -> None:
        self.open()
        self._bars[kind].update(n)

    def close(self) -> None:
        for name in ("frames", "files"):
            if name in self._bars:
                self._bars[name].close()
        self._bars = {}

    def __enter__(self) -> "ProgressBars":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summary_screen(analysis, report: Path | None, csv_dir: Path | None) -> str:
    summary, errors, skipped = analysis.summary, analysis.errors, analysis.skipped
    faces = int(summary["faces"].sum()) if len(summary) else 0
    frames = int(summary["frames_analysed"].sum()) if len(summary) else 0
    missing = int((skipped["reason"] == NOT_FOUND).sum()) if len(skipped) else 0
    lines = [
        f"analysed {len(summary)} input(s): {frames} frame(s), {faces} face(s); "
        f"{len(errors)} failed, {len(skipped) - missing} skipped (not media)"
        + (f", {missing} not found" if missing else ""),
    ]
    with_faces = summary[summary["faces"] > 0] if len(summary) else summary
    if len(with_faces):
        counts = with_faces["dominant_expression"].value_counts()
        lines.append("dominant expressions: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for row in errors.head(10).itertuples(index=False):
        lines.append(f"  failed: {row.input} [{row.stage}] {row.reason}")
    if len(errors) > 10:
        lines.append(f"  ... and {len(errors) - 10} more in errors.csv")
    if csv_dir is not None:
        lines.append(f"CSVs:   {csv_dir}")
    if report is not None:
        lines.append(f"report: {report}")
    return "\n".join(lines)
