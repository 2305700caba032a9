"""Under load: a folder of many small photos and one long video through `fer-batch analyze` in a child process,
with its peak memory (getrusage of the child) and a memory timeline (/proc) -> reports/load.md and load.json.

    python -m fer_batch.loadbench --images 2000 --video-seconds 3600      # the full run
    python -m fer_batch.loadbench --images 50 --video-seconds 60          # a quick check that it works
    python -m fer_batch.loadbench --images 50 -- --fps 2 --detector haar  # options after -- go to analyze
    python -m fer_batch.loadbench --memory-scaling 10 --video-seconds 3600  # video only: 360 s, then 3600 s
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

VIDEO_SIZE = (160, 120)
VIDEO_FPS = 5.0


def face_image() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:300, 100:400]


def write_photos(folder: Path, count: int, face: np.ndarray) -> None:
    """`count` small photos, three in four with a face, in folders of 500."""
    rng = np.random.default_rng(0)
    for n in range(count):
        target = folder / f"part_{n // 500:02d}" / f"photo_{n:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        image = np.full((120, 160, 3), int(rng.integers(60, 230)), np.uint8)
        if n % 4:
            side = int(rng.integers(60, 110))
            x, y = int(rng.integers(0, 160 - side)), int(rng.integers(0, 120 - side))
            image[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 85])


def write_long_video(path: Path, seconds: float, face: np.ndarray) -> int:
    """A low-resolution video: the face drifts across for 20 s, then 10 s without it, over and over."""
    width, height = VIDEO_SIZE
    side = 80
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (width, height))
    frames = int(round(seconds * VIDEO_FPS))
    for i in range(frames):
        t = i / VIDEO_FPS
        frame = np.full((height, width, 3), 200, np.uint8)
        phase = t % 30.0
        if phase < 20.0:
            x = int((width - side) * phase / 20.0)
            frame[20:20 + side, x:x + side] = small
        writer.write(frame)
    writer.release()
    return frames


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_analyze(inputs: list[Path], out: Path, extra: list[str]) -> dict:
    """Run the CLI in a child; its peak RSS from getrusage, and RSS every second from /proc."""
    command = [sys.executable, "-m", "fer_batch", "analyze", "--quiet", "--out", str(out / "report.html"),
               *extra, *map(str, inputs)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    timeline: list[tuple[float, float]] = []
    while child.poll() is None:
        rss = rss_mb(child.pid)
        if rss is not None:
            timeline.append((round(time.perf_counter() - started, 1), round(rss, 1)))
        time.sleep(1.0)
    stderr = child.stderr.read()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"command": command, "exit_status": child.returncode, "wall_s": round(seconds, 1), "peak_rss_mb": round(peak, 1),
            "rss_timeline_mb": timeline, "stderr_tail": stderr.strip().splitlines()[-5:]}


def quartile_rss(timeline: list[tuple[float, float]]) -> list[float]:
    """RSS at 25, 50, 75 and 100 % of the run: flat once warmed up means memory does not grow with the input."""
    if not timeline:
        return []
    values = [rss for _, rss in timeline]
    return [values[max(0, math.ceil(len(values) * q) - 1)] for q in (0.25, 0.5, 0.75, 1.0)]


def summarise_outputs(out: Path) -> dict:
    import pandas as pd

    csv_dir = out / "report_csv"
    summary = pd.read_csv(csv_dir / "summary.csv")
    errors = pd.read_csv(csv_dir / "errors.csv")
    return {
        "inputs_analysed": int(len(summary)), "frames_analysed": int(summary["frames_analysed"].sum()),
        "faces": int(summary["faces"].sum()), "failed": int(len(errors)),
        "report_mb": round((out / "report.html").stat().st_size / 2**20, 2),
        "csv_mb": round(sum(p.stat().st_size for p in csv_dir.rglob("*.csv")) / 2**20, 2),
    }


def markdown(result: dict) -> str:
    run, outputs = result["run"], result.get("outputs", {})
    frames = outputs.get("frames_analysed", 0)
    lines = [
        "# Under load", "",
        f"`{result['command_line']}` on {result['machine']}.", "",
        f"Inputs: {result['images']} photos of 160x120 in {max(1, -(-result['images'] // 500))} folder(s), "
        "and one video of "
        f"{result['video_seconds']:.0f} s at {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}, {VIDEO_FPS:g} fps ({result['video_frames']} frames); "
        f"analysed with `{' '.join(result['analyze_options'])}`.", "",
        "| measure | value |", "|---|---|",
        f"| exit status | {run['exit_status']} |",
        f"| wall time | {run['wall_s']:.1f} s |",
        f"| frames analysed (photos + video) | {frames:,} |",
        f"| throughput | {frames / max(run['wall_s'], 1e-9):.1f} frames/s |",
        f"| faces found | {outputs.get('faces', 0):,} |",
        f"| failed inputs | {outputs.get('failed', 0)} |",
        f"| **peak RSS of the run** | **{run['peak_rss_mb']:.0f} MB** |",
        f"| RSS at 25/50/75/100 % of the run | {' / '.join(f'{v:.0f}' for v in result['rss_quartiles_mb'])} MB |",
        f"| report size | {outputs.get('report_mb', 0)} MB |",
        f"| CSV size | {outputs.get('csv_mb', 0)} MB |",
        "", f"Generating the inputs took {result['generate_s']:.1f} s (not included above).", "",
    ]
    if result.get("note"):
        lines += [result["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_batch.loadbench",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--images", type=int, default=2000, help="How many small photos to generate.")
    parser.add_argument("--video-seconds", type=float, default=3600.0, help="Length of the generated video.")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fer-batch-loadbench",
                        help="Where inputs and outputs go [default: a folder in the temporary directory].")
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="Where load.md and load.json go.")
    parser.add_argument("--note", default="", help="A sentence added to load.md (e.g. what else ran on the machine).")
    parser.add_argument("--memory-scaling", type=float, default=None, metavar="FACTOR",
                        help="Video only: run --video-seconds / FACTOR and --video-seconds in separate processes and "
                             "compare their peak RSS (reports/memory-scaling.md).")
    parser.add_argument("analyze_options", nargs="*", default=["--fps", "5"],
                        help="Options passed to `fer-batch analyze` (after --) [default: --fps 5].")
    args = parser.parse_args(argv)
    if args.memory_scaling:
        return memory_scaling(args)

    inputs_dir = args.work / "inputs"
    out = args.work / "out"
    started = time.perf_counter()
    face = face_image()
    photos = inputs_dir / "photos"
    video = inputs_dir / "long.mp4"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    if not (photos.is_dir() and len(list(photos.rglob("*.jpg"))) == args.images):
        write_photos(photos, args.images, face)
    frames = write_long_video(video, args.video_seconds, face)
    generate_s = time.perf_counter() - started

    out.mkdir(parents=True, exist_ok=True)
    run = run_analyze([photos, video] if args.images else [video], out, args.analyze_options)
    result = {
        "command_line": f"python -m fer_batch.loadbench --images {args.images} --video-seconds {args.video_seconds:g} -- "
                        + " ".join(args.analyze_options),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}",
        "images": args.images, "video_seconds": args.video_seconds, "video_frames": frames,
        "analyze_options": args.analyze_options, "generate_s": round(generate_s, 1), "run": run,
        "rss_quartiles_mb": quartile_rss(run["rss_timeline_mb"]), "note": args.note,
    }
    if run["exit_status"] in (0, 1):
        result["outputs"] = summarise_outputs(out)
    args.reports.mkdir(parents=True, exist_ok=True)
    from fer_batch.export import atomic_write_text

    atomic_write_text(args.reports / "load.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.reports / "load.md", markdown(result))
    print(markdown(result))
    return 0 if run["exit_status"] == 0 else 1


def memory_scaling(args: argparse.Namespace) -> int:
    """Peak RSS of a video and of one FACTOR times longer, each analysed by its own child of its own loadbench."""
    runs = []
    for seconds in (args.video_seconds / args.memory_scaling, args.video_seconds):
        reports = args.work / f"scaling-{seconds:g}s"
        command = [sys.executable, "-m", "fer_batch.loadbench", "--images", "0", "--video-seconds", f"{seconds:g}",
                   "--work", str(reports / "work"), "--reports", str(reports), "--", *args.analyze_options]
        status = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
        result = json.loads((reports / "load.json").read_text())
        runs.append({"video_seconds": seconds, "exit_status": status, "frames": result["video_frames"],
                     "wall_s": result["run"]["wall_s"], "peak_rss_mb": result["run"]["peak_rss_mb"],
                     "rss_quartiles_mb": result["rss_quartiles_mb"]})
    ratio = runs[1]["peak_rss_mb"] / max(runs[0]["peak_rss_mb"], 1e-9)
    summary = {"command_line": f"python -m fer_batch.loadbench --memory-scaling {args.memory_scaling:g} --video-seconds "
                               f"{args.video_seconds:g} -- " + " ".join(args.analyze_options),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}",
               "runs": runs, "peak_rss_ratio": round(ratio, 3), "note": args.note}
    lines = ["# Memory against video length", "", f"`{summary['command_line']}` on {summary['machine']}.", "",
             f"One generated video ({VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}, {VIDEO_FPS:g} fps, a face drifting across for 20 s "
             "of every 30 s) at two lengths, each analysed by its own process "
             f"with `{' '.join(args.analyze_options)}`.", "",
             "| video | frames | exit status | wall time | peak RSS | RSS at 25/50/75/100 % of the run |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['video_seconds']:g} s | {run['frames']:,} | {run['exit_status']} | {run['wall_s']:.0f} s | "
                     f"{run['peak_rss_mb']:.0f} MB | {' / '.join(f'{v:.0f}' for v in run['rss_quartiles_mb'])} MB |")
    lines += ["", f"**Peak RSS ratio, {args.memory_scaling:g}x longer video: {ratio:.2f}**", ""]
    if args.note:
        lines += [args.note, ""]
    from fer_batch.export import atomic_write_text

    args.reports.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.reports / "memory-scaling.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(args.reports / "memory-scaling.md", "\n".join(lines))
    print("\n".join(lines))
    return 0 if all(run["exit_status"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
