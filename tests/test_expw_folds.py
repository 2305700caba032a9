"""ExpW detector crops split by photo into folds, training with them, cross-fitted evaluation, same-face comparison."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_batch.classify import SHIPPED_MODEL
from fer_batch.labels import LABELS
from training.expw_detections import LANDMARKS
from training.expw_crops import photo_fold

NAMES = ["angry_man_0", "happy_girl_1", "sad_actor_2", "fear_boy_3", "calm_woman_4", "smile_child_5",
         "shout_player_6", "crowd_fan_7"]   # both folds (CRC-32 parity is the same for names differing in one digit)
PHOTOS = len(NAMES)


@pytest.fixture(scope="module")
def expw_scenes(tmp_path_factory, astronaut_bgr) -> Path:
    """ExpW layout: scene photos with one pasted face each, and label.lst rows (top left right bottom)."""
    root = tmp_path_factory.mktemp("expw")
    (root / "image").mkdir()
    face = astronaut_bgr[0:300, 100:400]
    rows = []
    for i in range(PHOTOS):
        scene = np.full((360, 640, 3), 40 + 20 * i, np.uint8)
        side = 140 + 10 * i
        left, top = 60 + 40 * i, 30 + 10 * i
        scene[top:top + side, left:left + side] = cv2.resize(face, (side, side))
        cv2.imwrite(str(root / "image" / f"{NAMES[i]}.jpg"), scene)
        # the face in the pasted head-and-shoulders picture: roughly its upper middle
        rows.append(f"{NAMES[i]}.jpg 0 {top + side // 6} {left + side // 4} {left + 3 * side // 4} {top + 2 * side // 3} "
                    f"90.0 {i % len(LABELS)}")
    (root / "label.lst").write_text("\n".join(rows) + "\n")
    return root


def test_photo_folds_are_stable_and_both_used():
    names = [f"photo_{i}.jpg" for i in range(200)]
    folds = [photo_fold(n, 2) for n in names]
    assert folds == [photo_fold(n, 2) for n in names]
    assert 60 < sum(folds) < 140
    assert {photo_fold(n, 5) for n in names} == set(range(5))


def test_expw_crops_go_to_the_fold_of_their_photo(expw_scenes, tmp_path):
    from training.expw_crops import main

    assert main(["--data", str(expw_scenes), "--out", str(tmp_path / "crops"), "--folds", "2"]) == 0
    written = sorted((tmp_path / "crops").rglob("*.png"))
    assert len(written) == PHOTOS
    for path in written:
        photo = path.stem.split("#")[0] + ".jpg"
        index = NAMES.index(path.stem.split("#")[0])
        assert path.parent.parent.name == f"fold{photo_fold(photo, 2)}"
        assert path.parent.name == LABELS[index % len(LABELS)]
        crop = cv2.imread(str(path))
        assert abs(crop.shape[0] - crop.shape[1]) <= 1 and crop.shape[0] >= 40   # a square face crop, not a sliver
    assert {p.parent.parent.name for p in written} == {"fold0", "fold1"}
    assert main(["--data", str(expw_scenes), "--out", str(tmp_path / "aligned"), "--align"]) == 0
    aligned = sorted((tmp_path / "aligned").rglob("*.png"))
    assert [p.name for p in aligned] == [p.name for p in written]
    assert all(cv2.imread(str(p)).shape[0] == cv2.imread(str(p)).shape[1] for p in aligned)
    from training.expw_crops import photo_kept

    assert main(["--data", str(expw_scenes), "--out", str(tmp_path / "share"), "--photo-fraction", "0.5",
                 "--photo-seed", "3"]) == 0
    share = sorted((tmp_path / "share").rglob("*.png"))
    kept = [n for n in NAMES if photo_kept(f"{n}.jpg", 0.5, 3)]
    assert 0 < len(kept) < PHOTOS and sorted(p.stem.split("#")[0] for p in share) == sorted(kept)
    assert {(p.parent.parent.name, p.name) for p in share} <= {(p.parent.parent.name, p.name) for p in written}


def test_training_mixes_in_repeated_extra_data(tmp_path, capsys):
    from test_training import _write_class_folders

    from training.model_card import train_command
    from training.train import main as train_main

    _write_class_folders(tmp_path / "train", per_class=4, seed=1)
    _write_class_folders(tmp_path / "extra", per_class=1, seed=2)
    _write_class_folders(tmp_path / "val", per_class=2, seed=3)
    out = tmp_path / "m.keras"
    code = train_main(["--data", str(tmp_path / "train"), "--extra-data", f"{tmp_path / 'extra'}:folders",
                       "--extra-repeat", "3", "--val-data", str(tmp_path / "val"), "--arch", "vgg_tiny",
                       "--epochs", "1", "--batch-size", "16", "--out", str(out)])
    assert code == 0
    assert f"loaded {7 * 4 + 3 * 7} training" in capsys.readouterr().out
    state = json.loads((out.with_suffix(".ckpt") / "state.json").read_text())
    command = train_command(state["args"])
    assert f"--extra-data {tmp_path / 'extra'}:folders --extra-repeat 3" in command


@pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="no shipped model")
def test_cross_fitted_evaluation_uses_one_model_per_fold_and_a_detection_cache(expw_scenes, tmp_path):
    from training.eval_end_to_end import main

    cache = tmp_path / "boxes.npz"
    args = ["--data", str(expw_scenes), "--fold-models", str(SHIPPED_MODEL), str(SHIPPED_MODEL),
            "--detections-cache", str(cache), "--out-dir", str(tmp_path)]
    assert main(args + ["--name", "first"]) == 0
    assert main(args + ["--name", "again"]) == 0
    first, again = (json.loads((tmp_path / f"e2e-{n}.json").read_text()) for n in ("first", "again"))
    assert first["cross_fitted"] and first["labelled_faces"] == PHOTOS and first["recall"] >= 0.75
    assert first["seconds_per_photo"] is not None and again["seconds_per_photo"] is None   # second run: cached boxes
    assert first["confusion_matrix"] == again["confusion_matrix"]
    faces = pd.read_csv(tmp_path / "e2e-first-faces.csv", keep_default_na=False)
    found = faces[faces["found"] == 1]
    assert len(faces) == PHOTOS and len(found) == first["found_faces"] and set(found["predicted"]) <= set(LABELS)
    assert (found["predicted"] == found["label"]).mean() == pytest.approx(first["accuracy"])
    probs = found[[f"p_{label}" for label in LABELS]].astype(float).to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert list(found["predicted"]) == [LABELS[i] for i in probs.argmax(axis=1)]
    assert np.allclose(found["confidence"].astype(float), probs.max(axis=1), atol=1e-6)
    assert (found["box_side"].astype(float) >= 20).all()                  # the detector's --min-face default
    assert (faces.loc[faces["found"] == 0, ["box_side", "confidence"]] == "").all().all()
    with np.load(cache) as stored:
        boxes = [k for k in stored.files if k != "__key__" and not k.startswith(LANDMARKS)]
        assert len(boxes) == PHOTOS and all(stored[LANDMARKS + k].shape == (len(stored[k]), 5, 2) for k in boxes)
    assert main(args + ["--name", "aligned", "--align"]) == 0
    aligned = json.loads((tmp_path / "e2e-aligned.json").read_text())
    assert aligned["seconds_per_photo"] is None and aligned["found_faces"] == first["found_faces"]  # landmarks cached
    assert main(["--data", str(expw_scenes), "--fold", "1", "--detections-cache", str(cache),
                 "--out-dir", str(tmp_path), "--name", "fold1"]) == 0
    fold1 = json.loads((tmp_path / "e2e-fold1.json").read_text())
    assert 0 < fold1["photos"] == sum(photo_fold(f"{name}.jpg", 2) == 1 for name in NAMES) < PHOTOS
    assert main(["--data", str(expw_scenes), "--fold-models", "-", str(SHIPPED_MODEL), "--detections-cache", str(cache),
                 "--out-dir", str(tmp_path), "--name", "skip0"]) == 0
    skip0 = json.loads((tmp_path / "e2e-skip0.json").read_text())
    assert skip0["photos"] == fold1["photos"] and skip0["fold"] == "1 of 2" and skip0["cross_fitted"]
    assert skip0["confusion_matrix"] == fold1["confusion_matrix"]   # fold 1 by the same model, fold 0 left out
    with pytest.raises(SystemExit):
        main(["--data", str(expw_scenes), "--fold-models", "-", "-", "--out-dir", str(tmp_path)])


def test_detected_photos_reads_each_photo_once_and_detects_only_what_the_cache_lacks(expw_scenes, tmp_path, capsys):
    from training.expw_detections import DetectedPhotos, DetectionCache

    names = [f"{n}.jpg" for n in NAMES[:3]] + ["not_there.jpg"] + [f"{NAMES[3]}.jpg"]
    cache_path = tmp_path / "mtcnn.npz"
    first = DetectedPhotos(expw_scenes, names, DetectionCache(cache_path, "mtcnn"), "mtcnn", need_landmarks=True)
    seen = [(name, image.shape, faces.boxes.copy()) for name, image, faces in first]
    assert [name for name, _, _ in seen] == [n for n in names if n != "not_there.jpg"]
    assert all(shape == (360, 640, 3) and len(boxes) == 1 for _, shape, boxes in seen)
    assert first.detector_ran and first.missing == ["not_there.jpg"]
    assert "not_there.jpg" in capsys.readouterr().err   # named in the warning
    assert cache_path.exists()   # saved when the iteration ends

    again = DetectedPhotos(expw_scenes, names, DetectionCache(cache_path, "mtcnn"), "mtcnn", need_landmarks=True)
    cached = [(name, faces.boxes, faces.landmarks) for name, _, faces in again]
    assert not again.detector_ran
    for (name, _, boxes), (cached_name, cached_boxes, landmarks) in zip(seen, cached):
        assert name == cached_name and landmarks.shape == (1, 5, 2)
        np.testing.assert_array_equal(boxes, cached_boxes)


def test_end_to_end_evaluation_refuses_bad_arguments_in_one_line(expw_scenes, tmp_path, capsys):
    from training.eval_end_to_end import main

    base = ["--data", str(expw_scenes), "--out-dir", str(tmp_path)]
    assert main([*base, "--model", str(tmp_path / "missing.keras")]) == 2
    assert capsys.readouterr().err.strip() == f"eval_end_to_end: model file {tmp_path / 'missing.keras'} does not exist."
    for bad, message in ((["--fold", "5"], "--fold must be one of 0..1"), (["--limit", "0"], "--limit must be at least 1")):
        with pytest.raises(SystemExit) as stopped:
            main([*base, *bad])
        assert stopped.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--out-dir", str(tmp_path)])
    assert "no label.lst there" in capsys.readouterr().err
    assert not list(tmp_path.glob("e2e-*"))


def test_folds_nest_when_their_counts_do():
    names = [f"photo_{i}.jpg" for i in range(300)]
    assert all(photo_fold(n, 4) % 2 == photo_fold(n, 2) for n in names)   # folds 0 and 2 of 4 make fold 0 of 2


def test_same_face_comparison_counts_by_who_found_what():
    from training.compare_faces import compare

    a = pd.DataFrame({"photo": ["p", "p", "q", "r"], "face": [0, 1, 0, 0], "label": ["happy", "sad", "fear", "angry"],
                      "found": [1, 1, 1, 0], "predicted": ["happy", "happy", "fear", ""]})
    b = pd.DataFrame({"photo": ["p", "p", "q", "r"], "face": [0, 1, 0, 0], "label": ["happy", "sad", "fear", "angry"],
                      "found": [1, 0, 1, 1], "predicted": ["sad", "", "fear", "angry"]})
    result = compare(a, b)
    assert result["both found"] == {"faces": 2, "right_a": 2, "right_b": 1, "accuracy_a": 1.0, "accuracy_b": 0.5}
    assert result["only A found"]["faces"] == 1 and result["only A found"]["right_a"] == 0
    assert result["only B found"] == {"faces": 1, "right_a": 0, "right_b": 1, "accuracy_a": 0.0, "accuracy_b": 1.0}
    assert result["all labelled faces"]["right_a"] == 2 and result["all labelled faces"]["right_b"] == 2
    assert result["both found, right by one only"] == {"a_only": 1, "b_only": 0, "mcnemar_p": 1.0}
    with pytest.raises(ValueError, match="same labelled faces"):
        compare(a, b.iloc[:3])


def test_exact_mcnemar_p_is_a_two_sided_binomial_test_at_one_half():
    from training.compare_faces import mcnemar_exact_p

    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(5, 5) == 1.0
    assert mcnemar_exact_p(30, 10) == mcnemar_exact_p(10, 30) == pytest.approx(0.00222, abs=1e-5)
    assert mcnemar_exact_p(6, 0) == pytest.approx(2 / 64)
    assert mcnemar_exact_p(12, 8) > 0.05


def test_dropout_scale_changes_the_rates_not_the_weights_and_is_in_the_command():
    from training.model_card import train_command
    from training.models import build

    plain, halved = build("vgg_small"), build("vgg_small", 0.5)
    rates = [layer.rate for layer in plain.layers if hasattr(layer, "rate")]
    assert rates and [layer.rate for layer in halved.layers if hasattr(layer, "rate")] == pytest.approx([r / 2 for r in rates])
    assert [w.shape for w in plain.get_weights()] == [w.shape for w in halved.get_weights()]
    args = {"data": "d", "arch": "vgg_small", "out": "m.keras"}
    assert "--dropout-scale 0.5" in train_command({**args, "dropout_scale": 0.5})
    assert "--dropout-scale" not in train_command({**args, "dropout_scale": 1.0})
    with pytest.raises(ValueError, match="dropout"):
        build("vgg_small", 2.0)


def test_gaussian_blur_matches_opencv_and_keeps_a_flat_image():
    import tensorflow as tf

    from training.augment import BLUR_SIGMA, gaussian_blur

    rng = np.random.default_rng(3)
    images = rng.uniform(0, 1, (3, 48, 48, 1)).astype(np.float32)
    blurred = gaussian_blur(tf.constant(images)).numpy()
    assert blurred.shape == images.shape
    reference = np.stack([cv2.GaussianBlur(image[:, :, 0], (0, 0), BLUR_SIGMA) for image in images])
    np.testing.assert_allclose(blurred[:, 5:-5, 5:-5, 0], reference[:, 5:-5, 5:-5], atol=0.01)
    flat = np.full((1, 16, 16, 1), 0.4, np.float32)
    np.testing.assert_allclose(gaussian_blur(tf.constant(flat)).numpy(), flat, atol=1e-6)   # edges reflected, not darkened


def test_blur_augment_softens_faces_by_random_amounts_and_is_in_the_command():
    import tensorflow as tf

    from training.augment import augment_batch
    from training.model_card import train_command, training_data

    rng = np.random.default_rng(4)
    images = tf.constant(rng.uniform(0, 1, (64, 48, 48, 1)).astype(np.float32))
    seed = tf.constant([7, 0], tf.int64)

    def detail(batch) -> np.ndarray:
        return np.array([np.abs(cv2.Laplacian(image[:, :, 0], cv2.CV_32F)).mean() for image in batch.numpy()])

    sharp, soft = detail(augment_batch(images, seed)), detail(augment_batch(images, seed, blur=True))
    assert np.all(soft <= sharp + 1e-4) and np.median(soft) < 0.8 * np.median(sharp)
    assert np.std(soft / sharp) > 0.1   # a different amount for each face
    np.testing.assert_array_equal(augment_batch(images, seed, blur=True).numpy(),
                                  augment_batch(images, seed, blur=True).numpy())
    args = {"data": "d", "arch": "vgg_small", "seed": 1, "out": "m.keras"}
    assert "--blur-augment --seed 1" in train_command({**args, "blur_augment": True})
    assert "--blur-augment" not in train_command(args)
    assert "blur" in training_data({**args, "blur_augment": True}) and "blur" not in training_data(args)
