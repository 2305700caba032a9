"""`fer-batch bench`: throughput of each stage and of the whole pipeline on one video, and of the peer (`fer`) when installed."""
from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from fer_batch.options import FAST_FLAGS, FAST_SETTINGS, AnalyzeOptions
from fer_batch.sources import NO_FRAME_DECODED, NOT_FOUND, VIDEO_SUFFIXES, InputFailure, kind_of, open_video, walk_inputs


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
    started, cpu_started = time.perf_counter(), time.process_time()
    pipeline.run(items, outcomes.append)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    results = outcomes[0].results
    return {"frames": len(results), "seconds": seconds, "fps": len(results) / max(seconds, 1e-9),
            "frames_per_cpu_s": len(results) / max(cpu_seconds, 1e-9),
            "faces": int(sum(len(r.faces) for r in results)), "duration_s": outcomes[0].duration_s,
            "stage_seconds": {k: round(v, 3) for k, v in pipeline.stage_seconds.items()}}


def classifier_crops_per_s(classifier, n: int = 2048) -> float:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(n)]
    classifier.predict(crops[: classifier.batch_size])
    started = time.perf_counter()
    classifier.predict(crops)
    return n / (time.perf_counter() - started)


def peer_figures(video: Path, peer_python: Path | None, max_frames: int | None) -> dict:
    """The peer's frames/second analysing every frame, with its default Haar detector and, when its environment
    has facenet-pytorch, with mtcnn=True; None values and a one-sentence note when it cannot run."""
    from fer_batch.peer import PeerUnavailable, mtcnn_available, peer_video_fps

    figures = no_peer_figures(None)
    try:
        haar = peer_video_fps(peer_python, video, max_frames=max_frames)
    except PeerUnavailable as exc:
        figures["peer_note"] = f"Peer not measured: {exc}."
        return figures
    figures.update(peer_fps=round(haar["fps"], 2), peer_frames_per_cpu_s=round(haar["frames_per_cpu_s"], 2),
                   peer_frames=haar["frames"], peer_faces=haar["faces"],
                   peer_version=f"fer {haar['fer_version']}, OpenCV {haar['opencv']}")
    if not mtcnn_available(peer_python):
        figures["peer_note"] = "The peer's mtcnn=True was not measured: its environment has no facenet-pytorch."
        return figures
    try:
        mtcnn = peer_video_fps(peer_python, video, mtcnn=True, max_frames=max_frames)
        figures.update(peer_mtcnn_fps=round(mtcnn["fps"], 2), peer_mtcnn_frames_per_cpu_s=round(mtcnn["frames_per_cpu_s"], 2))
    except PeerUnavailable as exc:
        figures["peer_note"] = f"The peer's mtcnn=True was not measured: {exc}."
    return figures


def no_peer_figures(note: str | None) -> dict:
    return {"peer_fps": None, "peer_frames_per_cpu_s": None, "peer_frames": None, "peer_faces": None,
            "peer_mtcnn_fps": None, "peer_mtcnn_frames_per_cpu_s": None, "peer_version": None, "peer_note": note}


def _ratio(ours: float, theirs: float | None) -> float | None:
    return None if not theirs else round(ours / theirs, 3)




def check_video(video: Path) -> None:
    """ValueError, in one sentence, for a video the bench could not measure on: missing, not a video, unreadable,
    or without a single decodable frame."""
    if not video.exists() and not video.is_symlink():
        raise ValueError(f"cannot bench {video}: {NOT_FOUND}")
    if video.is_dir():
        raise ValueError(f"cannot bench {video}: it is a folder; give one video file")
    if kind_of(video) != "video":   # the pipeline would take it as a photo, or skip it
        raise ValueError(f"cannot bench {video}: not a video by its name (give one of "
                         f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    try:
        cap, _ = open_video(video)
    except InputFailure as exc:
        raise ValueError(f"cannot bench {video}: {exc.reason}") from None
    try:
        while cap.grab():   # the first decodable frame; a broken first frame is stepped over, as the pipeline does
            ok, image = cap.retrieve()
            if ok and image is not None:
                return
    finally:
        cap.release()
    raise ValueError(f"cannot bench {video}: {NO_FRAME_DECODED}")


def check_bench(video: Path | None, out_json: Path | None, report_dir: Path, name: str = "bench",
                max_frames: int | None = None) -> None:
    """ValueError, before any measuring, for options the bench would fail on or measure nothing with
    (the output folders are made)."""
    from fer_batch.api import check_output_file

    AnalyzeOptions(fps=None, max_frames=max_frames, quiet=True).validate()
    if video is not None:
        check_video(video)   # before the output folders are made
    if report_dir.exists() and not report_dir.is_dir():
        raise ValueError(f"--reports {report_dir} is a file, not a folder; give the folder for {name}.md")
    if out_json is not None and out_json.is_file() and out_json.suffix.lower() != ".json":
        raise ValueError(f"--json {out_json} is an existing file that is not a .json file, which the results would "
                         "replace; give a new file name ending in .json")
    check_output_file(report_dir / f"{name}.md", "--reports")
    if out_json is not None:
        check_output_file(out_json, "--json")


def run_bench(video: Path | None, out_json: Path | None, report_dir: Path, max_frames: int | None = None,
              with_peer: bool = True, peer_python: Path | None = None, name: str = "bench") -> dict:
    """Measure on `video`; `peer_python` is the peer's interpreter (default: fer_batch.peer.default_peer_python()).
    The caller checks the arguments first with `check_bench` (the command line does), so the video is opened once."""
    from fer_batch.api import build_stages
    from fer_batch.demo import write_demo_clip

    if video is None:
        video = write_demo_clip(Path("fer-batch-bench") / "bench-clip.mp4", seconds=20.0, fps=30.0)
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    options = AnalyzeOptions(fps=None, max_frames=max_frames, quiet=True)
    stages = build_stages(options)
    dec_fps, total_frames = decode_fps(video)
    every = pipeline_run(video, options, stages)
    at5 = pipeline_run(video, AnalyzeOptions(fps=5.0, quiet=True), stages)
    crops = classifier_crops_per_s(stages[1])
    fast_options = AnalyzeOptions(fps=None, max_frames=max_frames, quiet=True, **FAST_SETTINGS)
    fast_stages = build_stages(fast_options)
    fast = pipeline_run(video, fast_options, fast_stages)
    fast_at5 = pipeline_run(video, AnalyzeOptions(fps=5.0, quiet=True, **FAST_SETTINGS), fast_stages)
    if with_peer:
        from fer_batch.peer import default_peer_python

        peer = peer_figures(video, peer_python or default_peer_python(), max_frames)
    else:
        peer = no_peer_figures("Peer not measured: --no-peer.")
    cap, info = open_video(video)
    cap.release()
    result = {
        "video": str(video), "width": info.width, "height": info.height, "video_fps": info.fps, "frames": total_frames,
        "decode_fps": round(dec_fps, 1),
        "every_frame_fps": round(every["fps"], 2), "every_frame_stage_seconds": every["stage_seconds"],
        "every_frame_frames": every["frames"], "every_frame_frames_per_cpu_s": round(every["frames_per_cpu_s"], 2),
        "fps5_realtime_factor": round((at5["duration_s"] or 0) / max(at5["seconds"], 1e-9), 2),
        "fps5_stage_seconds": at5["stage_seconds"],
        "classifier_crops_per_s": round(crops, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        **peer,
        "ratio_vs_peer": _ratio(every["fps"], peer["peer_fps"]),
        "ratio_vs_peer_mtcnn": _ratio(every["fps"], peer["peer_mtcnn_fps"]),
        "fast_settings": FAST_FLAGS, "fast_every_frame_fps": round(fast["fps"], 2),
        "fast_stage_seconds": fast["stage_seconds"], "fast_ratio_vs_peer": _ratio(fast["fps"], peer["peer_fps"]),
        "fast_frames_per_cpu_s": round(fast["frames_per_cpu_s"], 2),
        "fast_fps5_realtime_factor": round((fast_at5["duration_s"] or 0) / max(fast_at5["seconds"], 1e-9), 2),
        "fast_fps5_stage_seconds": fast_at5["stage_seconds"],
        "fast_ratio_vs_peer_cpu": _ratio(fast["frames_per_cpu_s"], peer["peer_frames_per_cpu_s"]),
        "ratio_vs_peer_cpu": _ratio(every["frames_per_cpu_s"], peer["peer_frames_per_cpu_s"]),
        "ratio_vs_peer_mtcnn_cpu": _ratio(every["frames_per_cpu_s"], peer["peer_mtcnn_frames_per_cpu_s"]),
        "detector": stages[0].name, "machine": f"{platform.machine()}, {_cpu_count()} CPU(s)",
        "load_average_at_start": None if load_at_start is None else round(load_at_start, 2),
        "niceness": os.nice(0) if hasattr(os, "nice") else 0,
        "command": "fer-batch bench " + " ".join(sys.argv[2:]),
    }
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(result, indent=1))
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"{name}.md").write_text(markdown(result))
    return result


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _peer_cell(value: float | None, ratio: float | None, unit: str = "frames/s") -> str:
    return "not measured" if value is None else f"{value} {unit} (ours / peer = {ratio})"


def markdown(r: dict) -> str:
    frames = r.get("every_frame_frames", r["frames"])
    lines = [
        f"# Benchmark: {Path(r['video']).name} ({r['width']}x{r['height']}, {r['video_fps']:.2f} fps, {r['frames']} frames)",
        "", "```", r["command"], "```", "",
        f"Machine: {r['machine']}; detector `{r['detector']}`.",
    ]
    load = r.get("load_average_at_start")
    if load is not None and load >= 0.5:
        lines.append(f"1-minute load average at the start: {load}. It averages the last minute, so work that had just "
                     "ended (such as a preceding bench) counts too; when other work does run beside the bench, every "
                     "figure here is lower than on an idle machine (ours and the peer's alike).")
    if r.get("niceness"):
        lines.append(f"The bench ran at niceness {r['niceness']}, below the other work's priority.")
    lines += [
        "", "| measure | value |", "|---|---|",
        f"| decode only (OpenCV), frames/s | {r['decode_fps']} |",
        f"| end to end, every frame ({frames} frames), frames/s | {r['every_frame_fps']} |",
        f"| end to end at --fps 5, seconds of video per second | {r['fps5_realtime_factor']} |",
        f"| end to end, every frame, fast settings (`{r['fast_settings']}`), frames/s | {r['fast_every_frame_fps']} |",
        f"| end to end at --fps 5, fast settings, seconds of video per second | {r.get('fast_fps5_realtime_factor')} |",
        f"| classifier alone, crops/s | {r['classifier_crops_per_s']} |",
        f"| peak RSS, MB | {r['peak_rss_mb']} |",
        f"| peer (`fer`, Haar), every frame | {_peer_cell(r['peer_fps'], r['ratio_vs_peer'])} |",
        f"| peer (`fer`, mtcnn=True), every frame | {_peer_cell(r.get('peer_mtcnn_fps'), r.get('ratio_vs_peer_mtcnn'))} |",
        f"| fast settings / peer (Haar) | {r['fast_ratio_vs_peer']} |",
        "", "Per CPU second (the process's CPU time, all threads), which other work on the machine does not deflate:",
        "", "| measure | frames per CPU second |", "|---|---|",
        f"| ours, every frame | {r.get('every_frame_frames_per_cpu_s')} |",
        f"| ours, every frame, fast settings | {r.get('fast_frames_per_cpu_s')} (ours / peer Haar = {r.get('fast_ratio_vs_peer_cpu')}) |",
        f"| peer (`fer`, Haar) | {_peer_cell(r.get('peer_frames_per_cpu_s'), r.get('ratio_vs_peer_cpu'), 'frames per CPU s')} |",
        f"| peer (`fer`, mtcnn=True) | "
        f"{_peer_cell(r.get('peer_mtcnn_frames_per_cpu_s'), r.get('ratio_vs_peer_mtcnn_cpu'), 'frames per CPU s')} |",
        "",
    ]
    if r.get("peer_version"):
        lines.append(f"Peer: {r['peer_version']}, its own pipeline (`fer.classes.Video(...).analyze`) on the same "
                     f"{r['peer_frames']} frames, model loading excluded as for ours.")
    if r.get("peer_note"):
        lines.append(r["peer_note"])
    lines += ["", f"Stage seconds, every frame: {json.dumps(r['every_frame_stage_seconds'])}",
              f"Stage seconds, --fps 5: {json.dumps(r['fps5_stage_seconds'])}",
              f"Stage seconds, every frame, fast settings: {json.dumps(r['fast_stage_seconds'])}",
              f"Stage seconds, --fps 5, fast settings: {json.dumps(r.get('fast_fps5_stage_seconds'))}", "",
              "What the fast settings cost in agreement with every-frame detection: `reports/detect-every.md`; "
              "BlazeFace's recall against MTCNN's: `reports/detectors.md`.", ""]
    return "\n".join(lines)
