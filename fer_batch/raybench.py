"""The Ray backend's overhead: the same generated inputs through `fer-batch analyze` with the local backend and
with `--backend ray` (a local Ray instance on this machine's CPUs, started and stopped by the run), each in a
child process; wall time, CPU time of the child and everything it started, and whether the CSVs are identical
-> reports/ray.md and ray.json.

    python -m fer_batch.raybench                                  # 40 photos, a 120 s video in 30 s segments
    python -m fer_batch.raybench --images 10 --video-seconds 30   # a quick check that it works
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fer_batch.loadbench import VIDEO_FPS, VIDEO_SIZE, face_image, write_long_video, write_photos


def cpu_ticks_below(pid: int) -> dict[int, int]:
    """User + system clock ticks of `pid` and every process below it (Ray's workers are not reaped by the run,
    so getrusage would miss them)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            ticks[int(entry)] = int(fields[11]) + int(fields[12])
    below, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in below:
                below.add(child)
                frontier.append(child)
    return {p: ticks[p] for p in below if p in ticks}


def run_cli(inputs: Path, out: Path, options: list[str]) -> dict:
    """One `fer-batch analyze` in a child: wall seconds, and CPU seconds of the child and all it started
    (sampled from /proc every 0.2 s, each process's last sample counted)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "fer_batch", "analyze", "--quiet", "--out", str(out / "report.html"),
               *options, str(inputs)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ticks: dict[int, int] = {}
    while child.poll() is None:
        ticks.update(cpu_ticks_below(child.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    return {"options": options, "exit_status": child.returncode, "wall_s": round(wall, 1),
            "cpu_s": round(sum(ticks.values()) / os.sysconf("SC_CLK_TCK"), 1), "processes": len(ticks)}


def same_csvs(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.csv"))
    files_b = sorted(p.relative_to(b) for p in b.rglob("*.csv"))
    return bool(files_a) and files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def frames_analysed(csv_dir: Path) -> int:
    import pandas as pd

    return int(pd.read_csv(csv_dir / "summary.csv")["frames_analysed"].sum())


def markdown(r: dict) -> str:
    wall = {k: min(run["wall_s"] for run in runs) for k, runs in r["runs"].items()}
    cpu = {k: min(run["cpu_s"] for run in runs) for k, runs in r["runs"].items()}

    def row(backend: str) -> str:
        runs = r["runs"][backend]
        return (f"| {backend} | {', '.join(str(run['wall_s']) for run in runs)} | "
                f"{', '.join(str(run['cpu_s']) for run in runs)} |")

    lines = [
        "# Ray backend overhead", "",
        f"`{r['command_line']}` on {r['machine']}; load average (1, 5, 15 min) before the runs: "
        f"{r['load_before']}, after: {r['load_after']}.", "",
        f"Inputs: {r['images']} photos of 160x120 and one video of {r['video_seconds']:g} s at "
        f"{VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}, {VIDEO_FPS:g} fps; `analyze {' '.join(r['analyze_options'])}` "
        f"({r['frames']} frames analysed). Ray: `{' '.join(r['ray_options'])}` — a local Ray instance on "
        f"{os.cpu_count()} CPUs, one worker per CPU, the video in {r['segments']} segments. Each run is a fresh "
        "`fer-batch analyze` process, the backends alternating.", "",
        "| backend | wall time, s (each run) | CPU time of all its processes, s (each run) |", "|---|---|---|",
        row("local"), row("ray"), "",
        f"Overhead of Ray on this machine (best runs): **{wall['ray'] - wall['local']:+.1f} s wall** "
        f"({wall['ray'] / max(wall['local'], 1e-9):.2f}x) and **{cpu['ray'] - cpu['local']:+.1f} s CPU** "
        f"({cpu['ray'] / max(cpu['local'], 1e-9):.2f}x): starting Ray's processes, loading TensorFlow and the "
        "models once per worker, moving results to the driver. CPU time depends little on what else runs on the "
        "machine; wall time depends on it a lot.",
        f"CSVs of the two backends byte-for-byte identical: **{'yes' if r['identical'] else 'NO'}**.", "",
    ]
    if r.get("note"):
        lines += [r["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_batch.raybench",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--images", type=int, default=40, help="How many small photos to generate.")
    parser.add_argument("--video-seconds", type=float, default=120.0, help="Length of the generated video.")
    parser.add_argument("--segment-seconds", type=float, default=30.0, help="Ray's --segment-seconds.")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each backend, alternating; the best counts.")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fer-batch-raybench",
                        help="Where inputs and outputs go [default: a folder in the temporary directory].")
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="Where ray.md and ray.json go.")
    parser.add_argument("--note", default="", help="A sentence added to ray.md (e.g. what else ran on the machine).")
    args = parser.parse_args(argv)

    from fer_batch.units import segment_windows

    inputs = args.work / "inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    face = face_image()
    write_photos(inputs / "photos", args.images, face)
    write_long_video(inputs / "long.mp4", args.video_seconds, face)
    analyze_options = ["--fps", "5"]
    ray_options = ["--backend", "ray", "--segment-seconds", f"{args.segment_seconds:g}"]
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    for _ in range(args.repeats):
        runs["local"].append(run_cli(inputs, args.work / "local", analyze_options))
        runs["ray"].append(run_cli(inputs, args.work / "ray", analyze_options + ray_options))
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    failed = [run for backend in runs.values() for run in backend if run["exit_status"] != 0]
    if failed:
        print(json.dumps(failed, indent=1), file=sys.stderr)
        return 1
    result = {
        "command_line": " ".join(["python -m fer_batch.raybench", *(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                           if k != "note" and v != parser.get_default(k))]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}",
        "load_before": load_before, "load_after": load_after, "images": args.images, "video_seconds": args.video_seconds,
        "analyze_options": analyze_options, "ray_options": ray_options,
        "segments": len(segment_windows(args.video_seconds, 5.0, args.segment_seconds)),
        "frames": frames_analysed(args.work / "local" / "report_csv"),
        "identical": same_csvs(args.work / "local" / "report_csv", args.work / "ray" / "report_csv"),
        "runs": runs,
        "note": args.note,
    }
    args.reports.mkdir(parents=True, exist_ok=True)
    from fer_batch.export import atomic_write_text

    atomic_write_text(args.reports / "ray.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.reports / "ray.md", markdown(result))
    print(markdown(result))
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
