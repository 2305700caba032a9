"""The peer, the `fer` package, on ExpW scene photos: its detection recall and its expression accuracy.

    scripts/install_peer.sh      # once: the peer's own environment, .peer-venv/
    python training/eval_peer_expw.py --data ../shared/data/expw-sample [--mtcnn] [--peer-python PATH]

The peer runs in its own interpreter (fer_batch/peer_runner.py); matching and metrics are fer-batch's, the
same as training/eval_end_to_end.py: a labelled face is found when a detection overlaps its box with
IoU >= --iou (greedy by IoU, each detection used once); accuracy, macro-F1 and per-class recall are over the
faces found, the peer's top emotion against the label. The peer's classifier is also scored on the labelled
boxes themselves (perfectly placed crops, through fer's own crop: squared, 10 px offsets, grey 64x64).
Writes reports/peer-<name>.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.labels import LABELS  # noqa: E402
from fer_batch.peer import default_peer_python, peer_photos  # noqa: E402
from training.datasets import read_expw_labels  # noqa: E402
from training.eval_end_to_end import write_face_rows  # noqa: E402
from training.expw_detections import match_faces  # noqa: E402
from training.evaluate import confusion_matrix, metrics_from_confusion  # noqa: E402


def top_label(scores: dict[str, float]) -> int:
    """Index in LABELS of the highest-scoring emotion (the first on ties, as fer's top_emotion)."""
    return max(range(len(LABELS)), key=lambda i: scores[LABELS[i]])


def score_answer(truth: dict[str, list[tuple[list[int], int]]], answer: dict, min_iou: float) -> dict:
    """Recall and metrics on found faces, and metrics on the labelled boxes, from the peer runner's answer."""
    found_truth, found_pred, box_truth, box_pred = [], [], [], []
    labelled = found = unscored_boxes = photos = 0
    face_rows: list[dict] = []
    for name, faces in truth.items():
        peer = answer["images"].get(name)
        if peer is None:  # unreadable photo
            continue
        photos += 1
        labels = [label for _, label in faces]
        labelled += len(labels)
        detected = np.array([d["box"] for d in peer["detected"]], np.float32).reshape(-1, 4)
        matches = match_faces(np.array([box for box, _ in faces], np.float32), detected, min_iou)
        for i, (label, di) in enumerate(zip(labels, matches)):
            row = {"photo": name, "face": i, "label": LABELS[label], "found": di is not None, "predicted": ""}
            if di is not None:
                found += 1
                found_truth.append(label)
                found_pred.append(top_label(peer["detected"][di]["scores"]))
                row["predicted"] = LABELS[found_pred[-1]]
            face_rows.append(row)
        for label, scores in zip(labels, peer["on_truth"]):
            if scores is None:
                unscored_boxes += 1
            else:
                box_truth.append(label)
                box_pred.append(top_label(scores))
    metrics = lambda t, p: metrics_from_confusion(confusion_matrix(np.array(t, np.int64), np.array(p, np.int64)))  # noqa: E731
    return {"photos": photos, "labelled_faces": labelled, "found_faces": found, "recall": found / max(1, labelled),
            "on_found": metrics(found_truth, found_pred),
            "on_labelled_boxes": {**metrics(box_truth, box_pred), "unscored": unscored_boxes}, "faces": face_rows}


def markdown(result: dict) -> str:
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    found, boxes = result["on_found"], result["on_labelled_boxes"]
    lines = [
        f"# The peer (`{result['peer']}`, {result['detector']} detector) on {Path(result['data']).name}", "",
        "```", result["command"], "```", "",
        f"A labelled face is found when a detection has IoU >= {result['iou']} with it (greedy, one detection per "
        "face, as training/eval_end_to_end.py). Accuracy on found faces: the peer's top emotion against the label. "
        "On labelled boxes: the peer's classifier on the ground-truth boxes, through its own crop.", "",
        "| photos | labelled faces | found | recall | accuracy on found | macro-F1 on found | accuracy on labelled "
        "boxes | macro-F1 on labelled boxes | detect s/photo |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {result['photos']} | {result['labelled_faces']} | {result['found_faces']} | {result['recall']:.3f} | "
        f"{fmt(found['accuracy'])} | {fmt(found['macro_f1'])} | {fmt(boxes['accuracy'])} | {fmt(boxes['macro_f1'])} | "
        f"{result['detect_seconds_per_photo']:.3f} |", "",
    ]
    if boxes["unscored"]:
        lines += [f"{boxes['unscored']} labelled boxes got no score (fer could not crop them).", ""]
    lines += ["| class | support (found) | recall on found | support (boxes) | recall on labelled boxes |",
              "|---|---|---|---|---|"]
    for label in LABELS:
        f, b = found["per_class"][label], boxes["per_class"][label]
        lines.append(f"| {label} | {f['support']} | {fmt(f['recall'])} | {b['support']} | {fmt(b['recall'])} |")
    lines += ["", "Confusion on found faces (rows true, columns predicted): " + json.dumps(found["confusion_matrix"]),
              "", "Confusion on labelled boxes: " + json.dumps(boxes["confusion_matrix"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="ExpW root: label.lst and image/")
    p.add_argument("--peer-python", type=Path, default=None,
                   help="the peer's Python [default: $FER_BATCH_PEER_PYTHON, else .peer-venv/bin/python]")
    p.add_argument("--mtcnn", action="store_true", help="the peer's mtcnn=True (facenet-pytorch) instead of Haar")
    p.add_argument("--iou", type=float, default=0.4)
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--name", default=None, help="report name [default: <data folder>, with -mtcnn for --mtcnn]")
    p.add_argument("--out-dir", type=Path, default=Path("reports"))
    args = p.parse_args(argv)

    truth: dict[str, list] = defaultdict(list)
    for name, _, box, _, label in read_expw_labels(args.data / "label.lst"):
        truth[name].append((list(box), label))
    names = sorted(truth)[: args.limit] if args.limit else sorted(truth)
    truth = {name: truth[name] for name in names}

    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        answer = peer_photos(args.peer_python or default_peer_python(), args.data / "image",
                             {name: [box for box, _ in faces] for name, faces in truth.items()}, Path(scratch),
                             mtcnn=args.mtcnn)
    scored = score_answer(truth, answer, args.iou)
    face_rows = scored.pop("faces")
    result = {
        "data": str(args.data), "peer": f"fer {answer['fer_version']}", "opencv": answer["opencv"],
        "detector": answer["detector"], "iou": args.iou, **scored,
        "detect_seconds_per_photo": answer["detect_seconds"] / max(1, scored["photos"]),
        "wall_seconds": time.time() - started,
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
    }
    name = args.name or args.data.name + ("-mtcnn" if args.mtcnn else "")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"peer-{name}.json").write_text(json.dumps(result, indent=1))
    (args.out_dir / f"peer-{name}.md").write_text(markdown(result))
    write_face_rows(args.out_dir / f"peer-{name}-faces.csv", face_rows)
    print(f"recall {result['recall']:.3f} ({scored['found_faces']}/{scored['labelled_faces']}), accuracy on found "
          f"{scored['on_found']['accuracy']}, on labelled boxes {scored['on_labelled_boxes']['accuracy']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
