"""`analyze --dry-run`: what a run would analyse and skip, from the files and the videos' headers alone.

No model or detector is loaded and nothing is written, so it answers in seconds for a large folder: which files
count, how much video there is and about how many frames the chosen --fps/--start/--end/--max-frames would analyse.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fer_batch.options import AnalyzeOptions
from fer_batch.sources import InputFailure, InputFile, check_readable, header_sample_count, open_video
from fer_batch.types import SkippedFile


@dataclass(frozen=True)
class PlannedInput:
    source: str
    kind: str                  # "video" or "image"
    duration_s: float | None   # of video the run would analyse (within --start/--end), from its header
    frames: int | None         # frames the run would analyse, estimated from the header; None = not known
    problem: str | None        # why the run would fail it, where that shows without decoding


def plan_inputs(inputs: Sequence[InputFile], options: AnalyzeOptions) -> list[PlannedInput]:
    """Each input as the run would meet it: photos are checked for being readable, videos' headers are read."""
    planned = []
    for item in inputs:
        if item.kind != "video":
            try:
                check_readable(item.path)
                planned.append(PlannedInput(item.source, item.kind, None, 1, None))
            except (InputFailure, OSError) as exc:
                planned.append(PlannedInput(item.source, item.kind, None, None, getattr(exc, "reason", str(exc))))
            continue
        try:
            cap, info = open_video(item.path)
            cap.release()
        except (InputFailure, OSError) as exc:
            planned.append(PlannedInput(item.source, item.kind, None, None, getattr(exc, "reason", str(exc))))
            continue
        duration = info.frame_count / info.fps if info.fps and info.frame_count else None
        frames = header_sample_count(info, options.fps, options.start_s, options.end_s, options.max_frames)
        planned.append(PlannedInput(item.source, item.kind, _analysed_seconds(duration, info.fps, options), frames,
                                    options.start_past_end(duration)))
    return planned


def _analysed_seconds(duration_s: float | None, native_fps: float, options: AnalyzeOptions) -> float | None:
    """The stretch between --start and --end, shortened to what --max-frames frames cover."""
    if duration_s is None:
        return None
    end_s = duration_s if options.end_s is None else min(options.end_s, duration_s)
    stretch = max(0.0, end_s - options.start_s)
    if options.max_frames is None:
        return stretch
    period = max(1.0 / options.fps if options.fps else 0.0, 1.0 / native_fps)
    return min(stretch, options.max_frames * period)


def format_plan(planned: Sequence[PlannedInput], skipped: Sequence[SkippedFile]) -> str:
    """One line per input (kind, duration, frames, source; and why it would fail), a total, the skipped files."""
    lines = [f"{'kind':<6} {'duration':>10} {'frames':>8}  input"]
    for row in planned:
        duration = f"{row.duration_s:.1f} s" if row.duration_s is not None else "-"
        frames = f"{row.frames:,}" if row.frames is not None else "?"
        lines.append(f"{row.kind:<6} {duration:>10} {frames:>8}  {row.source}"
                     + (f"  (would fail: {row.problem})" if row.problem else ""))
    videos = [row for row in planned if row.kind == "video"]
    known = [row.frames for row in planned if row.frames is not None and not row.problem]
    failing = sum(row.problem is not None for row in planned)
    unknown = sum(row.frames is None and not row.problem for row in planned)
    lines.append(f"{len(planned):,} input(s): {len(videos):,} video(s), {len(planned) - len(videos):,} photo(s); "
                 f"{sum(row.duration_s or 0.0 for row in videos):,.1f} s of video; about {sum(known):,} frame(s) "
                 f"to analyse" + (f" (and {unknown:,} video(s) of unknown length)" if unknown else "")
                 + f"; {failing:,} would fail; {len(skipped):,} skipped")
    lines += [f"skipped: {entry.path} ({entry.reason})" for entry in skipped]
    return "\n".join(lines)
