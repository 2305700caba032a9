"""How FER2013's framing of a face compares with the crop `fer-batch analyze` cuts: the detector run on FER2013 faces.

    python training/fer_framing.py --data ../shared/data/fer2013/train --faces 2000 --out reports/framing
    python training/fer_framing.py --data ../shared/data/fer2013/train --write-crops ../fer2013-reframed/train

At run time the classifier sees the square on the detector's box, turned so the eyes are level; it was trained on
FER2013's own 48x48 frames. Each sampled face (seeded) is scaled up 4 times, its edges repeated on every side so a
box may reach past the frame, and given to the detector; its largest face's box and eyes are mapped back to the
48x48 frame. Where the square on that box has the frame's size and centre, the run-time crop shows a face as
FER2013 does; the eye tilt is what the run-time alignment takes out.

With `--write-crops DIR` every face is instead written to DIR (the same class folders) as the run-time crop of it:
the aligned square on the detector's box, back at the face's own size; a face the detector misses is written as it
is. That is a training set framed exactly as `fer-batch analyze` frames faces.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.crops import aligned_crop, eye_angle  # noqa: E402
from fer_batch.detect import create_detector  # noqa: E402
from training.datasets import load_folders  # noqa: E402

UPSCALE = 4
PAD_FRACTION = 0.25  # of the frame, on each side
QUANTILES = (10, 25, 50, 75, 90)


def detector_view(face: np.ndarray) -> np.ndarray:
    """The face as the detector is given it: gray to BGR, scaled up, its edges repeated around it."""
    gray = face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    big = cv2.resize(gray, (gray.shape[1] * UPSCALE, gray.shape[0] * UPSCALE), interpolation=cv2.INTER_CUBIC)
    pad = int(round(PAD_FRACTION * big.shape[0]))
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


def detected_faces(faces: list[np.ndarray], detector_name: str = "mtcnn", batch: int = 32
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Per face: the face, the detector's view of it, and the largest found face's box and landmarks in that
    view's pixels (None, None where nothing is found)."""
    detector = create_detector(detector_name, min_face=8)
    for start in range(0, len(faces), batch):
        chunk = faces[start:start + batch]
        views = [detector_view(face) for face in chunk]
        for face, view, found in zip(chunk, views, detector.detect(views)):
            if len(found.boxes) == 0 or found.landmarks is None:
                yield face, view, None, None
                continue
            sides = np.maximum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1])
            i = int(np.argmax(sides))
            yield face, view, found.boxes[i], found.landmarks[i]


def framing(faces: list[np.ndarray], detector_name: str = "mtcnn") -> list[dict[str, float] | None]:
    """Per face, in units of its own frame side: the run-time square's side and centre offset, the eye line's
    height in that square, the eye distance; and the eye tilt in degrees. None where nothing is found."""
    results: list[dict[str, float] | None] = []
    for face, view, box, landmarks in detected_faces(faces, detector_name):
        if box is None:
            results.append(None)
            continue
        pad = (view.shape[0] - face.shape[0] * UPSCALE) / 2.0
        x1, y1, x2, y2 = (box - pad) / UPSCALE
        eyes = (landmarks[:2] - pad) / UPSCALE
        frame = float(face.shape[0])
        side = max(x2 - x1, y2 - y1)
        top = (y1 + y2) / 2.0 - side / 2.0
        results.append({
            "side": side / frame,
            "dx": ((x1 + x2) / 2.0 - frame / 2.0) / frame,
            "dy": ((y1 + y2) / 2.0 - frame / 2.0) / frame,
            "eye_height": (float(eyes[:, 1].mean()) - top) / side,
            "eye_distance": float(np.linalg.norm(eyes[1] - eyes[0])) / frame,
            "tilt": eye_angle(landmarks),
        })
    return results


def runtime_crops(faces: list[np.ndarray], detector_name: str = "mtcnn") -> Iterator[tuple[np.ndarray, bool]]:
    """Each face as `fer-batch analyze` would cut it (gray, at the face's own size), and whether it was found;
    a face the detector misses comes back as it is."""
    for face, view, box, landmarks in detected_faces(faces, detector_name):
        gray = face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
        if box is None:
            yield gray, False
            continue
        crop = cv2.cvtColor(aligned_crop(view, box, landmarks), cv2.COLOR_BGR2GRAY)
        yield cv2.resize(crop, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_AREA), True


def summary(rows: list[dict[str, float] | None]) -> dict[str, object]:
    found = [row for row in rows if row is not None]
    out: dict[str, object] = {"faces": len(rows), "found": len(found)}
    if not found:
        return out
    for key in found[0]:
        values = np.array([row[key] for row in found])
        out[key] = dict(zip((f"p{q}" for q in QUANTILES), np.percentile(values, QUANTILES).round(3).tolist()))
    tilt = np.abs([row["tilt"] for row in found])
    out["abs_tilt_over_5_degrees"] = round(float(np.mean(tilt > 5.0)), 3)
    sides = np.array([row["side"] for row in found])
    out["side_within_10_percent"] = round(float(np.mean(np.abs(sides - 1.0) <= 0.1)), 3)
    return out


def markdown(result: dict[str, object], command: str) -> str:
    lines = [
        "# FER2013's framing against the run-time crop",
        "",
        f"`{command}`",
        "",
        f"The detector found a face in {result['found']} of {result['faces']} sampled faces. Quantiles over those, in "
        "units of the 48-pixel frame (the run-time crop is the square on the detector's box):",
        "",
        "| measure | " + " | ".join(f"p{q}" for q in QUANTILES) + " |",
        "| --- |" + " --- |" * len(QUANTILES),
    ]
    names = {"side": "square's side / frame", "dx": "square's centre right of the frame's / frame",
             "dy": "square's centre below the frame's / frame", "eye_height": "eye line below the square's top / side",
             "eye_distance": "eye distance / frame", "tilt": "eye tilt (degrees; alignment levels it)"}
    for key, name in names.items():
        if key in result:
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in result[key].values()) + " |")
    if "side" in result:
        lines += ["", f"Squares within 10% of the frame's side: {result['side_within_10_percent']:.3f}; "
                      f"eyes tilted more than 5 degrees: {result['abs_tilt_over_5_degrees']:.3f}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="class-named folders of face images (FER2013 layout)")
    parser.add_argument("--faces", type=int, default=2000, help="how many faces to sample (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--out", help="folder for framing.md and framing.json")
    parser.add_argument("--write-crops", type=Path, metavar="DIR",
                        help="instead, write every face as the run-time crop of it to DIR (class folders)")
    args = parser.parse_args(argv)
    if (args.out is None) == (args.write_crops is None):
        parser.error("give one of --out and --write-crops")

    faces = load_folders(args.data)
    if args.write_crops is not None:
        found = 0
        for name, (crop, was_found) in zip(faces.names, runtime_crops(faces.images, args.detector)):
            target = args.write_crops / Path(name).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target), crop)
            found += was_found
        print(f"{len(faces.names)} faces written to {args.write_crops}, {found} re-framed on the detector's box")
        return 0
    order = sorted(range(len(faces.images)), key=lambda i: faces.names[i])
    chosen = sorted(random.Random(args.seed).sample(order, min(args.faces, len(order))))
    result = summary(framing([faces.images[i] for i in chosen], args.detector))
    result["detector"] = args.detector
    command = "python training/fer_framing.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "framing.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "framing.md").write_text(markdown(result, command))
    print(markdown(result, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
