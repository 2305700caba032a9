r"""What detecting one frame per MTCNN call costs against the `mtcnn` package's batches of 8, and how often the
batched answer for a frame differs from that frame's own.

    python scripts/mtcnn_batching.py ../shared/fixtures/fer-woman2.mp4 ../shared/fixtures/pyfeat-WolfgangLanger_Pexels.mp4 \
        --out reports/mtcnn-batching.md
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_batch.detect import create_detector  # noqa: E402
from fer_batch.detect.base import shrink_to_max_side  # noqa: E402
from fer_batch.detect.mtcnn_detector import MTCNN_SMALLEST_FACE, _faces_from_rows  # noqa: E402

BATCH = 8  # the pipeline's frame batch


def frames_of(path: Path, every: int, limit: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames, index = [], 0
    while len(frames) < limit and cap.grab():
        if index % every == 0:
            frames.append(cap.retrieve()[1])
        index += 1
    cap.release()
    return frames


def batched(detector, images: list[np.ndarray]) -> list:
    """The removed code path: one mtcnn call for the whole batch (the frames share a shape)."""
    rgb = [cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images]
    rows = detector._mtcnn.detect_faces(rgb, box_format="xyxy", output_type="numpy", min_face_size=MTCNN_SMALLEST_FACE)
    rows = np.asarray(rows, np.float32).reshape(-1, 16)
    return [_faces_from_rows(rows[rows[:, 0] == k]) for k in range(len(images))]


def timed(run) -> tuple[list, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", type=Path)
    p.add_argument("--every", type=int, default=6, help="take every N-th frame (default 6: 5 per second at 30 fps)")
    p.add_argument("--frames", type=int, default=64, help="frames per video (a multiple of 8)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    detector = create_detector("mtcnn")
    rows = []
    for video in args.videos:
        frames = [shrink_to_max_side(f, detector.max_side)[0] for f in frames_of(video, args.every, args.frames)]
        batched(detector, frames[:BATCH]), [detector._detect_one(f) for f in frames[:2]]   # warm-up
        together, wall_b, cpu_b = timed(lambda: [faces for start in range(0, len(frames), BATCH)
                                                 for faces in batched(detector, frames[start:start + BATCH])])
        alone, wall_a, cpu_a = timed(lambda: [detector._detect_one(f) for f in frames])
        shifts = [np.inf if len(a) != len(b) else float(np.abs(a.boxes - b.boxes).max(initial=0.0))
                  for a, b in zip(alone, together)]
        rows.append((video.name, len(frames), len(frames) / wall_b, len(frames) / cpu_b, len(frames) / wall_a,
                     len(frames) / cpu_a, sum(s > 0.5 for s in shifts), max(s for s in shifts if np.isfinite(s)),
                     sum(not np.isfinite(s) for s in shifts)))
    lines = ["# MTCNN: one frame per call against batches of 8", "",
             "```", "python scripts/mtcnn_batching.py " + " ".join(str(v) for v in args.videos)
             + f" --every {args.every} --frames {args.frames} --out {args.out}", "```", "",
             f"Machine: {os.cpu_count()} CPU(s); 1-minute load average at the end: {os.getloadavg()[0]:.2f}. "
             "Frames shrunk to the detector's 640-pixel side as in the pipeline; the batched path is the code "
             "that was replaced, one `detect_faces` call per 8 frames.", "",
             "| video | frames | batched, frames/s | batched, frames per CPU s | one per call, frames/s | "
             "one per call, frames per CPU s | frames whose boxes move > 0.5 px | largest move, px | "
             "frames with another number of faces |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {n} | {bw:.2f} | {bc:.2f} | {aw:.2f} | {ac:.2f} | {d} | {m:.2f} | {c} |"
              for name, n, bw, bc, aw, ac, d, m, c in rows]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
