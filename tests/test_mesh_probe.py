"""training/mesh_probe.py: MediaPipe's face-mesh network as a second classifier (an experiment; see reports/mesh)."""
from __future__ import annotations

import numpy as np
import pytest

from fer_batch.preprocess import preprocess
from training.mesh_probe import MeshNetwork, choose_alpha, face_features, mesh_input, normalised_landmarks

ASTRONAUT_FACE = (slice(64, 172), slice(170, 278))  # rows, columns of her face in scikit-image's photo


@pytest.fixture(scope="module")
def mesh() -> MeshNetwork:
    return MeshNetwork()


def test_mesh_input_frames_the_face_with_its_edges_repeated():
    faces = np.random.default_rng(0).random((2, 48, 48, 1)).astype(np.float32)
    x = mesh_input(faces)
    assert x.shape == (2, 192, 192, 3) and x.dtype == np.float32
    assert np.array_equal(x[..., 0], x[..., 2])
    # 12 repeated pixels on each side of 48 become 32 of 192: the corner block is the face's corner pixel
    assert np.allclose(x[0, :24, :24, 0], faces[0, 0, 0, 0], atol=1e-6)
    assert not np.allclose(x[0, 96, 96, 0], x[1, 96, 96, 0])


def test_the_mesh_finds_a_real_face_and_its_points_mirror_with_it(mesh, astronaut_bgr):
    face = preprocess([astronaut_bgr[ASTRONAUT_FACE]])
    flat = np.full_like(face, 0.5)
    features = face_features(mesh, np.concatenate([face, face[:, :, ::-1], flat]))
    score = features["score"].ravel()
    assert score[0] > 0 and score[1] > 0 and score[2] < min(score[0], score[1]) - 5
    points = features["landmarks"].reshape(3, 468, 3)
    centre, mirrored_centre = points[0, :, 0].mean(), points[1, :, 0].mean()
    assert abs(centre - (192 - mirrored_centre)) < 4
    assert points[0, :, :2].min() > 0 and points[0, :, :2].max() < 192
    assert features["trunk"].shape == (3, 6 * 6 * 128) and features["branch"].shape == (3, 3 * 3 * 128)


def test_normalised_landmarks_ignore_where_the_face_is_and_its_size():
    points = np.random.default_rng(1).random((4, 468 * 3)).astype(np.float32) * 100
    moved = points.reshape(4, 468, 3) * 2.5 + np.array([30.0, -12.0, 7.0])
    assert np.allclose(normalised_landmarks(points), normalised_landmarks(moved.reshape(4, -1)), atol=1e-4)


def test_alpha_is_zero_for_a_useless_mesh_and_positive_for_a_mesh_that_fixes_the_cnn():
    labels = np.arange(40) % 7
    cnn = np.log(np.full((40, 7), 0.1))
    cnn[np.arange(20), labels[:20]] = np.log(0.4)         # right on the first half
    cnn[np.arange(20, 40), (labels[20:] + 1) % 7] = np.log(0.3)  # narrowly wrong on the second
    useless = np.zeros((40, 7))
    assert choose_alpha(cnn, useless, labels) == 0.0
    helpful = np.log(np.full((40, 7), 0.1))
    helpful[np.arange(40), labels] = np.log(0.4)
    alpha = choose_alpha(cnn, helpful, labels)
    assert alpha > 0 and ((cnn + alpha * helpful).argmax(1) == labels).all()


def test_the_probe_reports_each_feature_set_and_repeats_itself_from_its_cache(tmp_path, astronaut_bgr):
    import json

    import cv2

    from fer_batch.classify import SHIPPED_MODEL
    from fer_batch.labels import LABELS
    from training.expw_crops import photo_fold
    from training.mesh_probe import PROBES, main

    face = astronaut_bgr[ASTRONAUT_FACE]
    rng = np.random.default_rng(2)
    for split in ("train", "val"):
        for label in LABELS:
            (tmp_path / "fer" / split / label).mkdir(parents=True)
            for i in range(3):
                noisy = np.clip(cv2.cvtColor(cv2.resize(face, (48, 48)), cv2.COLOR_BGR2GRAY) + rng.normal(0, 20, (48, 48)), 0, 255)
                cv2.imwrite(str(tmp_path / "fer" / split / label / f"{i}.png"), noisy.astype(np.uint8))
    expw = tmp_path / "expw"
    (expw / "image").mkdir(parents=True)
    names = ["angry_man_0", "happy_girl_1", "sad_actor_2", "fear_boy_3"]
    assert {photo_fold(f"{n}.jpg", 2) for n in names} == {0, 1}
    rows = []
    for i, name in enumerate(names):
        scene = np.full((360, 480, 3), 60 + 30 * i, np.uint8)
        scene[100:260, 150:310] = cv2.resize(astronaut_bgr[0:300, 100:400], (160, 160))
        cv2.imwrite(str(expw / "image" / f"{name}.jpg"), scene)
        rows.append(f"{name}.jpg 0 {100 + 160 // 6} {150 + 160 // 4} {150 + 3 * 160 // 4} {100 + 2 * 160 // 3} 90.0 {i}")
    (expw / "label.lst").write_text("\n".join(rows) + "\n")
    args = ["--fer", str(tmp_path / "fer"), "--expw", str(expw), "--twin", str(SHIPPED_MODEL),
            "--detections-cache", str(tmp_path / "boxes.npz"), "--cache-dir", str(tmp_path / "cache")]
    assert main(args + ["--out-dir", str(tmp_path / "first")]) == 0
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["expw-mtcnn-aligned.npz", "fer-train.npz", "fer-val.npz"]
    assert main(args + ["--out-dir", str(tmp_path / "again")]) == 0
    first, again = (json.loads((tmp_path / d / "mesh-probe.json").read_text()) for d in ("first", "again"))
    assert first["fer_train"] == first["fer_val"] == 21 and first["expw_fold0"] + first["expw_fold1"] == len(names)
    assert [r["features"] for r in first["probes"]] == ["+".join(p) for p in PROBES]
    assert first["probes"] == again["probes"]
    for r in first["probes"]:
        fold0 = first["expw_fold0"]
        assert r["right_only_fused"] + r["right_only_model"] <= fold0
        assert r["fused_model_fold0"] - r["model_fold0"] == pytest.approx((r["right_only_fused"] - r["right_only_model"]) / fold0)
    assert "| landmarks |" in (tmp_path / "first" / "mesh-probe.md").read_text()
