"""training/eval_peer_faceapi.py: face-api.js's expression network rebuilt from a tfjs weights manifest.

The real weights come from npm and are not in the repository, so these tests write weights of the same names
and shapes: they check the loading, the network's wiring and class order, the crop, and a scored run."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_batch.labels import LABELS


def _shapes() -> dict[str, list[int]]:
    shapes = {"dense0/conv0/filters": [3, 3, 3, 32], "dense0/conv0/bias": [32]}
    channels_in = 32
    for block, channels in zip(("dense0", "dense1", "dense2", "dense3"), (32, 64, 128, 256)):
        for conv in ("conv0", "conv1", "conv2", "conv3"):
            if block == "dense0" and conv == "conv0":
                continue
            shapes[f"{block}/{conv}/depthwise_filter"] = [3, 3, channels_in if conv == "conv0" else channels, 1]
            shapes[f"{block}/{conv}/pointwise_filter"] = [1, 1, channels_in if conv == "conv0" else channels, channels]
            shapes[f"{block}/{conv}/bias"] = [channels]
        channels_in = channels
    shapes["fc/weights"], shapes["fc/bias"] = [256, 7], [7]
    return shapes


def write_model(folder: Path, favoured: str | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """A face-api-style model folder: filters 8-bit quantised, biases float32, split over two .bin files. With
    `favoured`, the output layer ignores the face and always picks that face-api class. Returns the true values."""
    from training.eval_peer_faceapi import MANIFEST, PEER_LABELS

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    specs, chunks, values = [], [], {}
    for name, shape in _shapes().items():
        if name.endswith("bias"):
            value = rng.normal(0, 0.01, shape).astype(np.float32)
            if name == "fc/bias" and favoured:
                value = np.where(np.arange(7) == PEER_LABELS.index(favoured), 5.0, 0.0).astype(np.float32)
            chunks.append(value.tobytes())
            specs.append({"name": name, "shape": shape, "dtype": "float32"})
        else:
            codes = rng.integers(0, 256, shape, dtype=np.uint8)
            scale, low = (0.0, 0.0) if (name == "fc/weights" and favoured) else (0.0016, -0.2)
            value = codes.astype(np.float32) * scale + low
            chunks.append(codes.tobytes())
            specs.append({"name": name, "shape": shape, "dtype": "float32",
                          "quantization": {"dtype": "uint8", "scale": scale, "min": low}})
        values[name] = value
    blob = b"".join(chunks)
    half = len(blob) // 2
    (folder / "part1.bin").write_bytes(blob[:half])
    (folder / "part2.bin").write_bytes(blob[half:])
    (folder / MANIFEST).write_text(json.dumps([{"paths": ["part1.bin", "part2.bin"], "weights": specs}]))
    return values


def test_weights_are_read_back_and_dequantised(tmp_path):
    from training.eval_peer_faceapi import load_weights

    truth = write_model(tmp_path / "model")
    loaded = load_weights(tmp_path / "model")
    assert loaded.keys() == truth.keys()
    for name, value in truth.items():
        np.testing.assert_allclose(loaded[name], value, rtol=1e-6, atol=1e-6)
    (tmp_path / "model" / "part2.bin").write_bytes((tmp_path / "model" / "part2.bin").read_bytes() + b"\0\0\0\0")
    with pytest.raises(ValueError, match="the weights take"):
        load_weights(tmp_path / "model")
    with pytest.raises(ValueError, match="npm pack @vladmandic/face-api"):
        load_weights(tmp_path / "nothing-here")


def test_the_network_gives_probabilities_in_our_class_order(tmp_path):
    from training.eval_peer_faceapi import FaceApiExpressionNet, load_weights

    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((60, 40), (120, 120), (33, 90))]
    write_model(tmp_path / "random")
    probs = FaceApiExpressionNet(load_weights(tmp_path / "random")).predict(crops)
    assert probs.shape == (3, len(LABELS)) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.ptp(probs, axis=0).max() > 1e-4 and probs.max() < 0.99   # each face its own answer
    write_model(tmp_path / "surprised", favoured="surprise")
    fixed = FaceApiExpressionNet(load_weights(tmp_path / "surprised")).predict(crops)
    assert [LABELS[i] for i in fixed.argmax(axis=1)] == ["surprise"] * 3
    assert FaceApiExpressionNet(load_weights(tmp_path / "random")).predict([]).shape == (0, len(LABELS))


def test_faces_are_padded_to_a_centred_square():
    from training.eval_peer_faceapi import INPUT_SIDE, square_face

    wide = np.full((40, 80, 3), 200, np.uint8)
    square = square_face(wide)
    assert square.shape == (INPUT_SIDE, INPUT_SIDE, 3)
    assert square[:20].max() == 0 and square[-20:].max() == 0          # black bars above and below
    assert np.allclose(square[40:72], 200)                             # the face in the middle


def test_a_scored_run_writes_per_face_rows_and_the_fusion(tmp_path, astronaut_bgr, capsys):
    from training.eval_end_to_end import write_face_rows
    from training.eval_peer_faceapi import main

    root = tmp_path / "expw"
    (root / "image").mkdir(parents=True)
    face = astronaut_bgr[0:300, 100:400]
    rows = []
    for i in range(3):
        scene = np.full((300, 480, 3), 60 + 30 * i, np.uint8)
        side, left, top = 160, 40 + 60 * i, 40
        scene[top:top + side, left:left + side] = cv2.resize(face, (side, side))
        cv2.imwrite(str(root / "image" / f"scene_{i}.jpg"), scene)
        rows.append(f"scene_{i}.jpg 0 {top + side // 6} {left + side // 4} {left + 3 * side // 4} {top + 2 * side // 3} "
                    f"90.0 {i}")
    (root / "label.lst").write_text("\n".join(rows) + "\n")
    write_model(tmp_path / "model", favoured="angry")
    ours = tmp_path / "ours-faces.csv"   # "our" model: right on every face, sure of it
    write_face_rows(ours, [{"photo": f"scene_{i}.jpg", "face": 0, "label": LABELS[i], "found": True,
                            "predicted": LABELS[i], "box_side": 100.0, "confidence": 0.9,
                            **{f"p_{label}": 0.9 if k == i else 0.1 / 6 for k, label in enumerate(LABELS)}}
                           for i in range(3)])
    args = ["--model-dir", str(tmp_path / "model"), "--data", str(root), "--detections-cache",
            str(tmp_path / "boxes.npz"), "--out-dir", str(tmp_path / "out"), "--name", "peer", "--fuse", str(ours),
            "--alpha", "0.1", "10"]
    assert main(args) == 0
    result = json.loads((tmp_path / "out" / "e2e-peer.json").read_text())
    faces = pd.read_csv(tmp_path / "out" / "e2e-peer-faces.csv", keep_default_na=False)
    assert result["labelled_faces"] == 3 and result["found_faces"] == (faces["found"] == 1).sum() >= 2
    assert set(faces.loc[faces["found"] == 1, "predicted"]) == {"angry"}   # the peer always says angry
    fusion = result["fusion"]
    assert fusion["faces"] == result["found_faces"] and fusion["ours"] == 1.0
    assert fusion["fused"]["0.1"] == 1.0 and fusion["fused"]["10"] == fusion["peer"] < 1.0
    assert "| 10 |" in (tmp_path / "out" / "e2e-peer.md").read_text()
    elsewhere = tmp_path / "elsewhere-faces.csv"   # another fold's faces: nothing to fuse with
    write_face_rows(elsewhere, [{"photo": "other.jpg", "face": 0, "label": "happy", "found": True, "predicted": "happy",
                                 "box_side": 100.0, "confidence": 1.0, **{f"p_{label}": 1 / 7 for label in LABELS}}])
    with pytest.raises(SystemExit) as stopped:
        main([*args[:-5], "--fuse", str(elsewhere)])
    assert stopped.value.code == 2
    assert "no face there was also scored here" in capsys.readouterr().err


def test_a_missing_model_folder_or_fusion_file_is_one_clear_line(tmp_path, capsys):
    from training.eval_peer_faceapi import main

    (tmp_path / "expw" / "image").mkdir(parents=True)
    (tmp_path / "expw" / "label.lst").write_text("")
    with pytest.raises(SystemExit) as stopped:
        main(["--model-dir", str(tmp_path / "model"), "--data", str(tmp_path / "expw")])
    assert stopped.value.code == 2
    assert "npm pack @vladmandic/face-api" in capsys.readouterr().err.strip().splitlines()[-1]
    write_model(tmp_path / "model")
    with pytest.raises(SystemExit) as stopped:
        main(["--model-dir", str(tmp_path / "model"), "--data", str(tmp_path / "expw"), "--fuse", str(tmp_path / "no.csv")])
    assert stopped.value.code == 2
    assert "--fuse" in capsys.readouterr().err.strip().splitlines()[-1]
