"""`fer-batch bench`: throughput of each stage and of the whole pipeline on one video, and of the peer (`fer`) when installed."""
from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np

from fer_batch.options import AnalyzeOptions
from fer_batch.sources import open_video, walk_inputs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def decode_fps(video: Path) -> tuple[float, int]:
    cap, _ = open_video(video)
    n, started = 0, time.perf_counter()
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n / max(time.perf_counter() - started, 1e-9), n


def pipeline_run(video: Path, options: AnalyzeOptions, stages) -> dict:
    from fer_batch.pipeline import Pipeline

    items, _ = walk_inputs([video])
    pipeline = Pipeline(*stages, options)
    outcomes = []
    started = time.perf_counter()
    pipeline.run(items, outcomes.append)
    seconds = time.perf_counter() - started
    results = outcomes[0].results
    return {"frames": len(results), "seconds": seconds, "fps": len(results) / max(seconds, 1e-9),
            "faces": int(sum(len(r.faces) for r in results)), "duration_s": outcomes[0].duration_s,
            "stage_seconds": {k: round(v, 3) for k, v in pipeline.stage_seconds.items()}}


def classifier_crops_per_s(classifier, n: int = 2048) -> float:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(n)]
    classifier.predict(crops[: classifier.batch_size])
    started = time.perf_counter()
    classifier.predict(crops)
    return n / (time.perf_counter() - started)


PEER_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import cv2
    from fer.fer import FER
    detector = FER(mtcnn=False)
    cap = cv2.VideoCapture(sys.argv[1])
    n, faces, started = 0, 0, time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        faces += len(detector.detect_emotions(frame))
        n += 1
    print(json.dumps({"frames": n, "faces": faces, "fps": n / (time.perf_counter() - started)}))
""")


def peer_fps(video: Path) -> dict | None:
    """The `fer` package's frames/second analysing every frame (its default Haar detector), or None when not installed."""
    try:
        done = subprocess.run([sys.executable, "-c", PEER_SCRIPT, str(video)], capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_bench(video: Path | None, out_json: Path | None, report_dir: Path, max_frames: int | None = None,
              with_peer: bool = True) -> dict:
    from fer_batch.api import build_stages
    from fer_batch.demo import write_demo_clip

    if video is None:
        video = write_demo_clip(Path("fer-batch-bench") / "bench-clip.mp4", seconds=20.0, fps=30.0)
    options = AnalyzeOptions(fps=None, max_frames=max_frames, quiet=True)
    stages = build_stages(options)
    dec_fps, total_frames = decode_fps(video)
    every = pipeline_run(video, options, stages)
    at5 = pipeline_run(video, AnalyzeOptions(fps=5.0, quiet=True), stages)
    crops = classifier_crops_per_s(stages[1])
    peer = peer_fps(video) if with_peer else None
    cap, info = open_video(video)
    cap.release()
    result = {
        "video": str(video), "width": info.width, "height": info.height, "video_fps": info.fps, "frames": total_frames,
        "decode_fps": round(dec_fps, 1),
        "every_frame_fps": round(every["fps"], 2), "every_frame_stage_seconds": every["stage_seconds"],
        "every_frame_frames": every["frames"],
        "fps5_realtime_factor": round((at5["duration_s"] or 0) / max(at5["seconds"], 1e-9), 2),
        "fps5_stage_seconds": at5["stage_seconds"],
        "classifier_crops_per_s": round(crops, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "peer_fps": None if peer is None else round(peer["fps"], 2),
        "ratio_vs_peer": None if peer is None else round(every["fps"] / peer["fps"], 3),
        "detector": stages[0].name, "machine": f"{platform.machine()}, {_cpu_count()} CPU(s)",
        "command": "fer-batch bench " + " ".join(sys.argv[2:]),
    }
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(result, indent=1))
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "bench.md").write_text(markdown(result))
    return result


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def markdown(r: dict) -> str:
    peer = "not installed" if r["peer_fps"] is None else f"{r['peer_fps']} frames/s (ratio {r['ratio_vs_peer']})"
    return "\n".join([
        f"# Benchmark: {Path(r['video']).name} ({r['width']}x{r['height']}, {r['video_fps']:.2f} fps, {r['frames']} frames)",
        "", "```", r["command"], "```", "",
        f"Machine: {r['machine']}; detector `{r['detector']}`.", "",
        "| measure | value |", "|---|---|",
        f"| decode only (OpenCV), frames/s | {r['decode_fps']} |",
        f"| end to end, every frame, frames/s | {r['every_frame_fps']} |",
        f"| end to end at --fps 5, seconds of video per second | {r['fps5_realtime_factor']} |",
        f"| classifier alone, crops/s | {r['classifier_crops_per_s']} |",
        f"| peak RSS, MB | {r['peak_rss_mb']} |",
        f"| peer (`fer`, Haar), every frame | {peer} |",
        "", f"Stage seconds, every frame: {json.dumps(r['every_frame_stage_seconds'])}",
        f"Stage seconds, --fps 5: {json.dumps(r['fps5_stage_seconds'])}", "",
    ])
