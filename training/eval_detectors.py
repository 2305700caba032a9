"""Benchmark face detectors on ExpW-style labelled photos: recall at an IoU threshold, detections and seconds per image.

    python training/eval_detectors.py --data ../shared/data/expw-sample --detectors mtcnn blazeface haar --out reports/

A labelled face counts as found when some detection overlaps its box with IoU >= --iou.
Writes <out>/detectors.json and <out>/detectors.md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.detect import DETECTORS, DetectorUnavailable, detector_class  # noqa: E402
from fer_batch.detect.base import box_iou  # noqa: E402
from training.datasets import read_expw_labels  # noqa: E402


@dataclass
class Result:
    config: str
    detector: str
    max_side: int | None
    available: bool
    reason: str = ""
    images: int = 0
    labelled_faces: int = 0
    found_faces: int = 0
    recall: float | None = None
    detections_per_image: float | None = None
    images_without_detection: int = 0
    seconds_per_image: float | None = None      # wall clock: inflated when the machine is shared
    cpu_seconds_per_image: float | None = None  # CPU time of this process, all threads: comparable under load


def load_ground_truth(data: Path) -> dict[str, np.ndarray]:
    """image name -> (n, 4) labelled boxes x1, y1, x2, y2."""
    boxes: dict[str, list] = defaultdict(list)
    for name, _, box, _, _ in read_expw_labels(data / "label.lst"):
        boxes[name].append(box)
    return {name: np.asarray(b, np.float32) for name, b in sorted(boxes.items())}


@dataclass
class Config:
    label: str
    detector: str
    max_side: int | None = None      # None: the backend's default
    options: dict | None = None      # backend-specific constructor options


def evaluate(config: Config, data: Path, truth: dict[str, np.ndarray], iou_threshold: float) -> Result:
    name, max_side = config.detector, config.max_side
    try:
        detector = detector_class(name)(max_side=max_side, **(config.options or {}))
    except DetectorUnavailable as exc:
        return Result(config.label, name, max_side, False, reason=str(exc))
    result = Result(config.label, name, detector.max_side, True)
    detections = 0
    seconds = cpu_seconds = 0.0
    warmed_up = False
    for image_name, boxes in truth.items():
        image = cv2.imread(str(data / "image" / image_name), cv2.IMREAD_COLOR)
        if image is None:
            continue
        if not warmed_up:  # graph building and first-call costs are not per-image costs
            detector.detect([image])
            warmed_up = True
        start, cpu_start = time.perf_counter(), time.process_time()
        faces = detector.detect([image])[0]
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        result.images += 1
        result.labelled_faces += len(boxes)
        detections += len(faces)
        result.images_without_detection += int(len(faces) == 0)
        if len(faces):
            result.found_faces += int((box_iou(boxes, faces.boxes).max(axis=1) >= iou_threshold).sum())
    if result.images:
        result.recall = round(result.found_faces / result.labelled_faces, 4)
        result.detections_per_image = round(detections / result.images, 3)
        result.seconds_per_image = round(seconds / result.images, 4)
        result.cpu_seconds_per_image = round(cpu_seconds / result.images, 4)
    return result


def write_reports(results: list[Result], out: Path, command: str, data: Path, iou_threshold: float, limit: int | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "data": str(data), "iou_threshold": iou_threshold, "limit": limit,
               "results": [asdict(r) for r in results]}
    (out / "detectors.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Face detectors on labelled photos",
        "",
        f"Data: `{data}`; a labelled face is found when a detection has IoU >= {iou_threshold} with it.",
        "CPU seconds count every thread of the process (TensorFlow uses several); wall seconds grow when",
        "other work shares the machine. Detections per image include unlabelled faces ExpW does not box.",
        "",
        "| config | max side | images | labelled faces | recall | detections / image | images without detection "
        "| CPU s / image | wall s / image |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r.available:
            lines.append(f"| {r.config} | {r.max_side} | {r.images} | {r.labelled_faces} | {r.recall:.3f} | "
                         f"{r.detections_per_image:.2f} | {r.images_without_detection} | {r.cpu_seconds_per_image:.3f} "
                         f"| {r.seconds_per_image:.3f} |")
        else:
            lines.append(f"| {r.config} | - | - | - | unavailable | - | - | - | - |")
    unavailable = [r for r in results if not r.available]
    if unavailable:
        lines += ["", "Unavailable:", ""] + [f"- {r.config}: {r.reason}" for r in unavailable]
    lines += ["", "Command:", "", "```", command, "```", ""]
    (out / "detectors.md").write_text("\n".join(lines))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with label.lst and image/ (ExpW layout)")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    parser.add_argument("--sweep-max-side", nargs="*", type=int, default=[1024, 1600],
                        help="extra mtcnn runs at these max_side values (besides its default)")
    parser.add_argument("--iou", type=float, default=0.4)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (quick checks)")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    truth = load_ground_truth(args.data)
    if args.limit:
        truth = dict(list(truth.items())[: args.limit])
    configs = [Config(name, name) for name in args.detectors]
    if "mtcnn" in args.detectors:
        default_side = detector_class("mtcnn").default_max_side
        configs += [Config(f"mtcnn@{side}", "mtcnn", side) for side in args.sweep_max_side if side != default_side]
    if "blazeface" in args.detectors:
        configs.append(Config("blazeface-short", "blazeface", options={"model": "short"}))
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    results = []
    for config in configs:
        result = evaluate(config, args.data, truth, args.iou)
        results.append(result)
        print(json.dumps(asdict(result)), flush=True)
        write_reports(results, args.out, command, args.data, args.iou, args.limit)  # after each, so a long run keeps what it has


if __name__ == "__main__":
    main()
