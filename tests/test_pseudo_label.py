"""training/pseudo_label.py: the unlabelled faces of ExpW photos, labelled by a model, for self-training."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_batch.classify import SHIPPED_MODEL
from fer_batch.labels import LABELS
from training.expw_crops import photo_fold
from training.pseudo_label import FACE_COLUMNS, main, unlabelled_detections

NAMES = ["angry_man_0", "happy_girl_1", "sad_actor_2", "fear_boy_3", "calm_woman_4", "smile_child_5"]


@pytest.fixture(scope="module")
def two_face_scenes(tmp_path_factory, astronaut_bgr) -> Path:
    """ExpW layout: each scene holds two pasted faces, and label.lst labels only the left one."""
    root = tmp_path_factory.mktemp("expw2")
    (root / "image").mkdir()
    face = astronaut_bgr[0:300, 100:400]
    rows = []
    for i, name in enumerate(NAMES):
        scene = np.full((360, 720, 3), 50 + 20 * i, np.uint8)
        side = 150 + 10 * i
        for left in (30, 380):
            scene[40:40 + side, left:left + side] = cv2.resize(face, (side, side))
        cv2.imwrite(str(root / "image" / f"{name}.jpg"), scene)
        left, top = 30, 40
        rows.append(f"{name}.jpg 0 {top + side // 6} {left + side // 4} {left + 3 * side // 4} {top + 2 * side // 3} "
                    f"90.0 {i % len(LABELS)}")
    (root / "label.lst").write_text("\n".join(rows) + "\n")
    return root


def test_unlabelled_detections_leave_out_every_overlap():
    labelled = np.array([[0, 0, 100, 100]], np.float32)
    detected = np.array([[5, 5, 105, 105], [60, 60, 160, 160], [300, 0, 400, 100]], np.float32)
    assert unlabelled_detections(labelled, detected, 0.1) == [1, 2]      # the second overlaps with IoU 0.087...
    assert unlabelled_detections(labelled, detected, 0.05) == [2]        # ...so a stricter bar drops it
    assert unlabelled_detections(np.zeros((0, 4), np.float32), detected, 0.1) == [0, 1, 2]
    assert unlabelled_detections(labelled, np.zeros((0, 4), np.float32), 0.1) == []


def test_the_unlabelled_face_of_each_photo_of_the_fold_is_labelled(two_face_scenes, tmp_path, capsys):
    out = tmp_path / "pseudo"
    cache = tmp_path / "dets.npz"
    assert main(["--data", str(two_face_scenes), "--model", str(SHIPPED_MODEL), "--fold", "1",
                 "--min-confidence", "0", "--detections-cache", str(cache), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    in_fold = [n for n in NAMES if photo_fold(f"{n}.jpg", 2) == 1]
    assert 0 < len(in_fold) < len(NAMES)
    faces = pd.read_csv(out / "faces.csv")
    assert list(faces.columns) == FACE_COLUMNS
    assert sorted(faces.photo) == sorted(f"{n}.jpg" for n in in_fold)   # one new face per photo, none of fold 0
    assert (faces.left > 300).all()                                       # the right face, never the labelled one
    assert faces.kept.all() and set(faces.label) <= set(LABELS)
    written = sorted(out.rglob("*.png"))
    assert sorted(p.name.split("#")[0] for p in written) == sorted(in_fold)
    for path in written:
        row = faces[faces.photo == path.name.split("#")[0] + ".jpg"].iloc[0]
        assert path.parent.name == row.label and path.stem.endswith(f"#u{row.detection}")
        crop = cv2.imread(str(path))
        assert abs(crop.shape[0] - crop.shape[1]) <= 1 and crop.shape[0] >= 40   # a square face crop, not a sliver
    assert summary["unlabelled_faces"] == len(in_fold) == summary["kept"]

    # a bar no probability reaches: every face still listed with its answer, none written for training
    strict = tmp_path / "strict"
    assert main(["--data", str(two_face_scenes), "--model", str(SHIPPED_MODEL), "--fold", "1",
                 "--min-confidence", "1", "--detections-cache", str(cache), "--out", str(strict)]) == 0
    listed = pd.read_csv(strict / "faces.csv")
    assert len(listed) == len(in_fold) and not listed.kept.any() and not list(strict.rglob("*.png"))
    assert listed.label.tolist() == faces.label.tolist()


@pytest.mark.parametrize("extra, message", [
    (["--fold", "2"], "--fold must be among 0..1"),
    (["--fold", "0", "--min-confidence", "1.5"], "--min-confidence must be between 0 and 1"),
    (["--fold", "0", "--max-overlap", "0"], "--max-overlap must be above 0"),
])
def test_bad_arguments_are_refused_in_one_sentence(two_face_scenes, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as stop:
        main(["--data", str(two_face_scenes), "--model", str(SHIPPED_MODEL), "--out", str(tmp_path / "o"), *extra])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_a_used_output_folder_or_a_missing_model_is_refused(two_face_scenes, tmp_path, capsys):
    used = tmp_path / "used"
    (used / "happy").mkdir(parents=True)
    (used / "happy" / "old.png").write_bytes(b"x")
    with pytest.raises(SystemExit):
        main(["--data", str(two_face_scenes), "--model", str(SHIPPED_MODEL), "--fold", "0", "--out", str(used)])
    assert "is not empty" in capsys.readouterr().err
    assert main(["--data", str(two_face_scenes), "--model", str(tmp_path / "none.keras"), "--fold", "0",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "pseudo_label.py: error:" in err and "Traceback" not in err and not (tmp_path / "o").exists()


def test_a_fold_without_photos_is_refused(two_face_scenes, tmp_path, capsys):
    empty = next(k for k in range(50) if all(photo_fold(f"{n}.jpg", 50) != k for n in NAMES))
    assert main(["--data", str(two_face_scenes), "--model", str(SHIPPED_MODEL), "--fold", str(empty),
                 "--folds", "50", "--out", str(tmp_path / "o")]) == 2
    assert f"lists no photos in fold {empty} of 50" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_photos_of_one_stem_keep_both_crops(two_face_scenes, tmp_path):
    root = tmp_path / "stems"
    (root / "image").mkdir(parents=True)
    scene = cv2.imread(str(two_face_scenes / "image" / f"{NAMES[0]}.jpg"))
    label_line = (two_face_scenes / "label.lst").read_text().splitlines()[0].split(" ", 1)[1]
    for name in ("same.jpg", "same.png"):
        cv2.imwrite(str(root / "image" / name), scene)
    (root / "label.lst").write_text(f"same.jpg {label_line}\nsame.png {label_line}\n")
    out = tmp_path / "pseudo"
    assert main(["--data", str(root), "--model", str(SHIPPED_MODEL), "--fold", "0", "--folds", "1",
                 "--min-confidence", "0", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.rglob("*.png"))
    assert len(written) == 2 and len(set(written)) == 2 and all(n.startswith("same#u") for n in written)
