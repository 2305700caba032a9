"""The figures behind README's `--dry-run` and `--start` rows: for each video, the frames `--dry-run` announces (from
the header) against those the sampler takes, under four settings; and how fast the frames before `--start` are
read (grabbed, not decoded into images), as multiples of real time.

    python scripts/header_vs_sampler.py ../shared/fixtures --out reports/dry-run.md
"""
from __future__ import annotations

import argparse
import glob
import os
import time
from pathlib import Path

from fer_batch.options import AnalyzeOptions
from fer_batch.sources import VIDEO_SUFFIXES, frames_of, header_sample_count, open_video, walk_inputs

SETTINGS = {"--fps 5": {"fps": 5.0}, "--fps 2": {"fps": 2.0},
            "--every-frame --start 1 --end 2": {"fps": None, "start_s": 1.0, "end_s": 2.0},
            "--fps 7 --start 0.3": {"fps": 7.0, "start_s": 0.3}}


def grab_speed(path: Path) -> float:
    """Frames grabbed per second of wall time, divided by the video's frame rate: multiples of real time."""
    cap, info = open_video(path)
    started, frames = time.perf_counter(), 0
    while cap.grab():
        frames += 1
    cap.release()
    return frames / (time.perf_counter() - started) / info.fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    videos = sorted(p for p in glob.glob(str(args.folder / "*")) if Path(p).suffix.lower() in VIDEO_SUFFIXES)
    lines = ["# `--dry-run`'s frame counts against the sampler's, and reading speed before `--start`", "",
             "```", f"python scripts/header_vs_sampler.py {args.folder} --out {args.out}", "```", "",
             "Each cell: frames announced from the header / frames the sampler takes. Reading speed: frames grabbed "
             f"(not decoded into images) per second, in multiples of the video's real time, on {os.cpu_count()} CPUs.",
             "", "| video | header rate | header frames | " + " | ".join(SETTINGS) + " | reading speed |",
             "|---|---|---|" + "---|" * len(SETTINGS) + "---|"]
    exact = total = 0
    for path in videos:
        item = walk_inputs([path])[0][0]
        cap, info = open_video(item.path)
        cap.release()
        cells = []
        for options in (AnalyzeOptions(**setting) for setting in SETTINGS.values()):
            announced = header_sample_count(info, options.fps, options.start_s, options.end_s)
            taken = len(list(frames_of(item, options.fps, None, [], options.video_window())))
            exact, total = exact + (announced == taken), total + 1
            cells.append(f"{announced} / {taken}")
        lines.append(f"| {Path(path).name} | {info.fps:.3f} | {info.frame_count} | " + " | ".join(cells)
                     + f" | {grab_speed(item.path):.0f}x |")
    lines += ["", f"{exact} of {total} counts exact."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
