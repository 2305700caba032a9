"""MTCNN with and without its stages taking the normalised image as one tensor (`_TensorInput`), timed in one
process on the same frames, alternating which goes first each round, so that a busy or slow host slows both
alike -> reports/mtcnn-tensor-input.md. Also checks that both give the same boxes, scores and landmarks.

    python scripts/mtcnn_tensor_ab.py      # every 2nd frame of fer-woman2.mp4 and 60 ExpW photos, 4 rounds

Run-to-run spread on this 2-core host is larger than the effect between separate `fer-batch bench` runs (9.5 to
13.6 frames/s for one commit in one session), which is why this compares the two in one process.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import fer_batch.detect.mtcnn_detector as mtcnn_detector  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def video_frames(path: Path, step: int) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames[::step]
        frames.append(frame)


def detectors() -> tuple[mtcnn_detector.MTCNNDetector, mtcnn_detector.MTCNNDetector]:
    """(with tensor input, without): the second built with the stage wrapper replaced by the stage itself."""
    with_tensor = mtcnn_detector.MTCNNDetector()
    wrapper = mtcnn_detector._TensorInput
    mtcnn_detector._TensorInput = lambda stage: stage
    try:
        without = mtcnn_detector.MTCNNDetector()
    finally:
        mtcnn_detector._TensorInput = wrapper
    return with_tensor, without


def same_faces(a, b) -> bool:
    return all(np.array_equal(x.boxes, y.boxes) and np.array_equal(x.scores, y.scores)
               and np.array_equal(x.landmarks, y.landmarks) for x, y in zip(a, b, strict=True))


def time_both(images: list[np.ndarray], rounds: int) -> dict:
    with_tensor, without = detectors()
    first_with, first_without = with_tensor.detect(images), without.detect(images)   # also the warm-up
    seconds: dict[str, list[float]] = {"with": [], "without": []}
    for r in range(rounds):
        order = [("with", with_tensor), ("without", without)]
        for name, detector in order if r % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            detector.detect(images)
            seconds[name].append(time.perf_counter() - start)
    return {"images": len(images), "faces": sum(len(f.boxes) for f in first_with),
            "identical": same_faces(first_with, first_without), "seconds": seconds,
            "median_with": float(np.median(seconds["with"])), "median_without": float(np.median(seconds["without"]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=SHARED / "fixtures" / "fer-woman2.mp4")
    p.add_argument("--step", type=int, default=2, help="every STEP-th frame of the video (default 2)")
    p.add_argument("--photos", type=Path, default=SHARED / "data" / "expw-sample" / "image")
    p.add_argument("--n-photos", type=int, default=60)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("reports/mtcnn-tensor-input.md"))
    args = p.parse_args(argv)
    for path in (args.video, args.photos):
        if not path.exists():
            p.error(f"{path}: no such file or folder (the shared data sits beside the repository)")

    sets = {f"{args.video.name}, 1 frame in {args.step}": video_frames(args.video, args.step),
            f"{args.n_photos} ExpW photos (sorted names)":
                [cv2.imread(str(f)) for f in sorted(args.photos.iterdir())[:args.n_photos]]}
    lines = ["# MTCNN stages given one tensor instead of a numpy array", "",
             f"`python scripts/mtcnn_tensor_ab.py` on {platform.node()} ({platform.processor() or platform.machine()}), "
             f"{args.rounds} rounds alternating which goes first; seconds for the whole set.", "",
             "| images | faces | identical boxes, scores, landmarks | without (median) | with (median) | change | "
             "rounds without | rounds with |", "|---|---|---|---|---|---|---|---|"]
    for name, images in sets.items():
        r = time_both(images, args.rounds)
        change = r["median_with"] / r["median_without"] - 1
        lines.append(f"| {name}: {r['images']} | {r['faces']} | {'yes' if r['identical'] else '**no**'} | "
                     f"{r['median_without']:.2f} | {r['median_with']:.2f} | {change:+.1%} | "
                     f"{', '.join(f'{s:.2f}' for s in r['seconds']['without'])} | "
                     f"{', '.join(f'{s:.2f}' for s in r['seconds']['with'])} |")
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
