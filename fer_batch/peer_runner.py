"""Runs the peer, the `fer` package, inside the peer's own environment (scripts/install_peer.sh).

Not imported by fer-batch: fer_batch.peer starts it with the peer interpreter as `python -I peer_runner.py ...`
(-I keeps this file's folder off sys.path, where fer_batch's own modules would shadow the stdlib's). So it
imports only the standard library, cv2 and fer (and torch for mtcnn=True).

    python -I peer_runner.py video VIDEO [--mtcnn] [--max-frames N]
        fer's own pipeline, fer.classes.Video(...).analyze(...), on every frame; prints one JSON line.
    python -I peer_runner.py photos REQUEST_JSON OUT_JSON [--mtcnn]
        REQUEST_JSON: {"image_dir": DIR, "images": {name: [[x1, y1, x2, y2], ...]}}. For each photo, fer's own
        detections with their emotion scores, and its classifier's scores on each given box; written to OUT_JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def load_fer(mtcnn: bool):
    """fer's FER recogniser. For mtcnn=True, torch and torchvision (through facenet-pytorch) must be imported
    before TensorFlow, which fer.fer imports: the other order crashes in native code."""
    if mtcnn:
        import facenet_pytorch  # noqa: F401
        import torch  # noqa: F401
    from fer.fer import FER  # the top-level `import fer` API fails in 25.10.3

    return FER(mtcnn=mtcnn)


def time_video(video: str, mtcnn: bool, max_frames: int | None) -> dict:
    """Frames/second (and per CPU second, all threads) of fer's own video pipeline analysing every frame,
    model loading excluded."""
    import cv2
    from fer.classes import Video

    recogniser = load_fer(mtcnn)
    faces = 0
    detect = recogniser.detect_emotions

    def counting_detect(img, face_rectangles=None):
        nonlocal faces
        found = detect(img, face_rectangles)
        faces += len(found)
        return found

    recogniser.detect_emotions = counting_detect
    cv2.waitKey = lambda *_: -1  # fer polls the keyboard every frame; headless OpenCV has no window to poll
    video = os.path.abspath(video)
    with tempfile.TemporaryDirectory() as outdir:
        os.chdir(outdir)  # fer writes its timeline to ./data.csv
        clip = Video(video, outdir=outdir)
        started, cpu_started = time.perf_counter(), time.process_time()
        clip.analyze(recogniser, display=False, save_frames=False, save_video=False, annotate_frames=False,
                     zip_images=False, max_results=max_frames)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        os.chdir(os.path.dirname(outdir))
    frames = clip.frameCount
    return {"frames": frames, "faces": faces, "seconds": seconds, "fps": frames / max(seconds, 1e-9),
            "cpu_seconds": cpu_seconds, "frames_per_cpu_s": frames / max(cpu_seconds, 1e-9),
            "detector": "mtcnn" if mtcnn else "haar", "fer_version": _fer_version(), "opencv": cv2.__version__}


def _xyxy(box) -> list[int]:
    x, y, w, h = (int(v) for v in box)
    return [x, y, x + w, y + h]


def _scores(emotions: dict) -> dict:
    return {name: float(score) for name, score in emotions.items()}


def analyse_photos(request_path: str, out_path: str, mtcnn: bool) -> None:
    import cv2

    with open(request_path) as fh:
        request = json.load(fh)
    recogniser = load_fer(mtcnn)
    results, seconds = {}, 0.0
    for name, truth_boxes in request["images"].items():
        image = cv2.imread(f"{request['image_dir']}/{name}", cv2.IMREAD_COLOR)
        if image is None:
            continue
        started = time.perf_counter()
        found = recogniser.detect_emotions(image)
        seconds += time.perf_counter() - started
        on_truth = []
        for x1, y1, x2, y2 in truth_boxes:  # one box per call: fer drops crops it cannot resize
            scored = recogniser.detect_emotions(image, [(x1, y1, x2 - x1, y2 - y1)])
            on_truth.append(_scores(scored[0]["emotions"]) if scored else None)
        results[name] = {"detected": [{"box": _xyxy(f["box"]), "scores": _scores(f["emotions"])} for f in found],
                         "on_truth": on_truth}
    with open(out_path, "w") as fh:
        json.dump({"detector": "mtcnn" if mtcnn else "haar", "fer_version": _fer_version(),
                   "opencv": cv2.__version__, "detect_seconds": seconds, "images": results}, fh)


def _fer_version() -> str:
    import fer

    return fer.__version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    video = sub.add_parser("video")
    video.add_argument("video")
    video.add_argument("--max-frames", type=int, default=None)
    photos = sub.add_parser("photos")
    photos.add_argument("request")
    photos.add_argument("out")
    for p in (video, photos):
        p.add_argument("--mtcnn", action="store_true", help="fer's MTCNN (facenet-pytorch) instead of Haar")
    args = parser.parse_args(argv)
    if args.mode == "video":
        result = time_video(args.video, args.mtcnn, args.max_frames)
        sys.stdout.write("\n" + json.dumps(result) + "\n")
    else:
        analyse_photos(args.request, args.out, args.mtcnn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
