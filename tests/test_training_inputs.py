"""What the training scripts say about bad inputs a user gives them: one sentence and exit code 2, before the work
it would spoil, and nothing left behind; missing ExpW photos counted in one warning. Everything here is generated."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_batch.classify import SHIPPED_MODEL
from fer_batch.labels import LABELS
from test_expw_folds import NAMES, expw_scenes  # noqa: F401  (fixture)
from test_training import _write_class_folders

shipped_model_missing = pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason=f"{SHIPPED_MODEL} is not there yet")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


def _refused(main, argv: list[str], capsys) -> str:
    """The last line of what `main(argv)` says when it refuses (argparse's SystemExit(2) or a return of 2)."""
    try:
        code = main(argv)
    except SystemExit as stopped:
        code = stopped.code
    assert code == 2
    return _one_line_error(capsys)


def _fer_csv(path: Path, usages=("Training", "PublicTest"), per_usage: int = 7) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for usage in usages:
            for i in range(per_usage):
                writer.writerow([i % len(LABELS), " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])
    return path


@pytest.fixture()
def faces(tmp_path) -> Path:
    _write_class_folders(tmp_path / "train", per_class=4, seed=1)
    _write_class_folders(tmp_path / "val", per_class=2, seed=2)
    return tmp_path


# --- train.py --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (["--format", "expw"], "--data {root}/train: no label.lst there"),
    (["--format", "fer2013-csv"], "--data {root}/train is not what --format fer2013-csv reads"),
    (["--val-format", "fer2013-csv"], "--val-data {root}/val is not what --format fer2013-csv reads"),
    (["--val-data", "{root}/train/"], "--val-data {root}/train/ holds the same faces as --data"),
    (["--out", "{root}/m.h5"], "--out {root}/m.h5: give a file name ending in .keras"),
    (["--out", "{root}/train"], "--out {root}/train is a folder"),
    (["--out", "{root}/afile/m.keras"], "--out {root}/afile/m.keras cannot be made: {root}/afile is a file"),
    (["--init-from", "{root}/nothere.keras"], "--init-from {root}/nothere.keras: no such file"),
    (["--dropout-scale", "2"], "--dropout-scale must be between 0 and 1.5"),
    (["--patience", "-1"], "--patience must be at least 0"),
    (["--label-smoothing", "1"], "--label-smoothing must be at least 0 and below 1"),
    (["--usage", "Training"], "--usage applies to --format fer2013-csv data only, and no data here are fer2013-csv"),
    (["--val-usage", "PublicTest"], "--val-usage applies to --format fer2013-csv data only"),
    (["--min-confidence", "0.5"], "--min-confidence applies to --format expw data only, and no data here are expw"),
], ids=["expw-on-folders", "csv-on-folder", "val-format", "val-is-train", "out-h5", "out-is-folder", "out-under-file",
        "init-from-missing", "dropout-scale", "patience", "label-smoothing", "usage-unused", "val-usage-unused",
        "min-confidence-unused"])
def test_train_refuses_a_wrong_path_or_format_before_any_work(faces, change, message, capsys):
    from training.train import main

    (faces / "afile").write_text("")
    command = ["--data", str(faces / "train"), "--val-data", str(faces / "val"), "--arch", "vgg_tiny",
               "--out", str(faces / "m.keras")]
    option, value = change[0], change[1].format(root=faces)
    if option in command:
        command[command.index(option) + 1] = value
    else:
        command += [option, value]
    with pytest.raises(SystemExit) as stopped:
        main(command)
    assert stopped.value.code == 2
    assert message.format(root=faces) in _one_line_error(capsys)
    assert not list(faces.glob("*.ckpt")) and not list(faces.glob("*.keras"))


def test_train_refuses_validation_on_the_training_rows_of_one_csv(tmp_path, capsys):
    from training.train import main, same_faces

    data = _fer_csv(tmp_path / "fer2013.csv")
    base = ["--data", str(data), "--format", "fer2013-csv", "--val-data", str(data), "--val-usage", "PublicTest",
            "--out", str(tmp_path / "m.keras")]
    with pytest.raises(SystemExit):
        main(base)   # no --usage: PublicTest would be trained on too
    assert "(no --usage: every row of the file)" in _one_line_error(capsys)
    assert not same_faces((str(data), "fer2013-csv", "Training"), (str(data), "fer2013-csv", "PublicTest"))
    assert same_faces((str(data), "fer2013-csv", "PublicTest"), (str(tmp_path / "." / "fer2013.csv"), "fer2013-csv", None))
    assert not same_faces((str(tmp_path), "folders", None), (str(tmp_path), "expw", None))


@pytest.mark.parametrize("make, data_format, message", [
    (lambda root: (root / "empty").mkdir(), ["--data", "{root}/empty"], "--data: {root}/empty has no subfolders named after the classes"),
    (lambda root: (root / "wrong" / "cats").mkdir(parents=True), ["--data", "{root}/wrong"], "--data: {root}/wrong has no subfolders"),
    (lambda root: (root / "lst").mkdir() or (root / "lst" / "label.lst").write_text("a.jpg 0 1 2 3\n"),
     ["--data", "{root}/lst", "--format", "expw", "--val-format", "folders"], "label.lst line 1 has 5 fields, not the 8"),
    (lambda root: (root / "c.csv").write_text("label,pixels\n0,1 2 3 4\n"),
     ["--data", "{root}/c.csv", "--format", "fer2013-csv", "--val-format", "folders"], "c.csv has no emotion column"),
    (lambda root: _fer_csv(root / "f.csv"), ["--data", "{root}/f.csv", "--format", "fer2013-csv", "--usage", "training",
                                             "--val-format", "folders"],
     "has no rows of Usage 'training'; its Usage values are Training (7), PublicTest (7)"),
], ids=["empty-folder", "no-class-folders", "malformed-label-lst", "csv-without-emotion", "usage-not-in-csv"])
def test_train_names_data_it_cannot_load_in_one_line_and_leaves_no_checkpoint(faces, make, data_format, message, capsys):
    from training.train import main

    make(faces)
    command = ["--val-data", str(faces / "val"), "--arch", "vgg_tiny", "--epochs", "1", "--out", str(faces / "m.keras"),
               *(arg.format(root=faces) for arg in data_format)]
    assert main(command) == 2
    assert message.format(root=faces) in _one_line_error(capsys)
    assert not (faces / "m.ckpt").exists() and not (faces / "m.keras").exists()


def test_train_says_when_init_from_is_not_a_model_or_not_of_the_arch(faces, capsys):
    from training.models import build
    from training.train import main

    (faces / "notes.keras").write_text("not a model")
    build("vgg_small").save(faces / "small.keras")
    command = ["--data", str(faces / "train"), "--val-data", str(faces / "val"), "--arch", "vgg_tiny", "--epochs", "1",
               "--out", str(faces / "m.keras")]
    assert main([*command, "--init-from", str(faces / "notes.keras")]) == 2
    assert "--init-from: model" in (err := _one_line_error(capsys)) and "is not a Keras model file" in err
    assert main([*command, "--init-from", str(faces / "small.keras")]) == 2
    assert "is a vgg_small network, whose weights do not fit --arch vgg_tiny" in _one_line_error(capsys)
    assert not (faces / "m.ckpt").exists()


# --- evaluate.py -----------------------------------------------------------------------------------------------


def test_evaluate_refuses_outputs_it_cannot_write_before_loading_anything(faces, capsys):
    from training.evaluate import main

    (faces / "afile").write_text("")
    base = ["--model", str(faces / "missing.keras"), "--data", str(faces / "val")]
    for extra, message in ((["--out-dir", str(faces / "afile" / "r")], f"--out-dir {faces}/afile/r cannot be made"),
                           (["--faces-csv", str(faces / "afile" / "f.csv")], f"--faces-csv {faces}/afile/f.csv cannot be made")):
        with pytest.raises(SystemExit):
            main([*base, "--out-dir", str(faces / "r"), *extra])
        assert message in _one_line_error(capsys)


def test_evaluate_refuses_an_option_its_data_format_ignores(faces, capsys):
    from training.evaluate import main

    base = ["--model", str(faces / "missing.keras"), "--data", str(faces / "val"), "--out-dir", str(faces / "r")]
    for extra, message in ((["--usage", "PrivateTest"], "--usage applies to --format fer2013-csv data only"),
                           (["--min-confidence", "0.9"], "--min-confidence applies to --format expw data only")):
        with pytest.raises(SystemExit) as stopped:
            main([*base, *extra])
        assert stopped.value.code == 2 and message in _one_line_error(capsys)
    assert not (faces / "r").exists()


@shipped_model_missing
def test_evaluate_names_the_folder_once_when_it_has_no_class_folders(faces, capsys):
    from training.evaluate import main

    (faces / "wrong" / "cats").mkdir(parents=True)
    assert main(["--model", str(SHIPPED_MODEL), "--data", str(faces / "wrong"), "--out-dir", str(faces / "r")]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("error: --data: ") and line.count(str(faces / "wrong")) == 1


# --- datasets --------------------------------------------------------------------------------------------------


def test_missing_expw_photos_are_counted_once_without_a_line_each_from_opencv(expw_scenes, tmp_path, capfd):  # noqa: F811
    from training.datasets import load_expw

    root = tmp_path / "expw"
    shutil.copytree(expw_scenes, root)
    for name in NAMES[:3]:
        (root / "image" / f"{name}.jpg").unlink()
    faces = load_expw(root)
    assert len(faces.images) == len(NAMES) - 3
    err = capfd.readouterr().err
    assert "left out the faces of 3 photo(s)" in err and "findDecoder" not in err and "imread" not in err


def test_a_fer2013_csv_without_a_usage_chosen_says_it_takes_every_split(tmp_path, capsys):
    from training.datasets import load_fer2013_csv

    path = _fer_csv(tmp_path / "fer2013.csv")
    assert len(load_fer2013_csv(path).images) == 14
    assert "no Usage chosen, so all its rows are taken (Training (7), PublicTest (7))" in capsys.readouterr().err
    assert len(load_fer2013_csv(path, usage="Training").images) == 7
    assert capsys.readouterr().err == ""


# --- eval_end_to_end.py ------------------------------------------------------------------------------------------


def test_end_to_end_refuses_an_out_dir_it_cannot_make(expw_scenes, tmp_path, capsys):  # noqa: F811
    from training.eval_end_to_end import main

    (tmp_path / "afile").write_text("")
    with pytest.raises(SystemExit):
        main(["--data", str(expw_scenes), "--out-dir", str(tmp_path / "afile" / "r")])
    assert "--out-dir" in _one_line_error(capsys)
    with pytest.raises(SystemExit):
        main(["--data", str(expw_scenes), "--iou", "0", "--out-dir", str(tmp_path)])
    assert "--iou must be above 0" in _one_line_error(capsys)
    with pytest.raises(SystemExit):   # --folds 4 was silently replaced by the two models' 2
        main(["--data", str(expw_scenes), "--folds", "4", "--fold-models", "a.keras", "b.keras", "--out-dir", str(tmp_path)])
    assert "2 given for --folds 4" in _one_line_error(capsys)
    with pytest.raises(SystemExit):
        main(["--data", str(expw_scenes), "--folds", "0", "--out-dir", str(tmp_path)])
    assert "--folds at least 1" in _one_line_error(capsys)


@shipped_model_missing
def test_end_to_end_counts_missing_photos_and_stops_when_none_can_be_read(expw_scenes, tmp_path, capsys):  # noqa: F811
    from training.eval_end_to_end import main

    root = tmp_path / "expw"
    shutil.copytree(expw_scenes, root)
    for name in NAMES[:2]:
        (root / "image" / f"{name}.jpg").unlink()
    cache = ["--detections-cache", str(tmp_path / "expw-mtcnn.npz")]
    assert main(["--data", str(root), *cache, "--out-dir", str(tmp_path), "--name", "some"]) == 0
    assert "left out the faces of 2 photo(s)" in capsys.readouterr().err
    result = json.loads((tmp_path / "e2e-some.json").read_text())
    assert result["photos"] == result["labelled_faces"] == len(NAMES) - 2 and result["photos_missing"] == 2
    assert "2 photo(s) listed in label.lst are missing" in (tmp_path / "e2e-some.md").read_text()

    # labelled boxes where no face is: nothing found, so no accuracy to give, and the report says so
    rows = [line.split() for line in (root / "label.lst").read_text().splitlines()]
    (root / "label.lst").write_text("".join(f"{r[0]} {r[1]} 0 0 12 12 90.0 {r[7]}\n" for r in rows))
    assert main(["--data", str(root), *cache, "--out-dir", str(tmp_path), "--name", "unfound"]) == 0
    assert "recall 0.000" in capsys.readouterr().out
    assert json.loads((tmp_path / "e2e-unfound.json").read_text())["accuracy"] is None
    assert "| 0.000 | — |" in (tmp_path / "e2e-unfound.md").read_text()

    shutil.rmtree(root / "image")
    assert main(["--data", str(root), *cache, "--out-dir", str(tmp_path), "--name", "none"]) == 2
    assert f"none of the {len(NAMES)} photos to score could be read" in _one_line_error(capsys)
    assert not (tmp_path / "e2e-none.json").exists()


@shipped_model_missing
def test_a_detections_cache_of_another_detector_is_refused_and_kept(expw_scenes, tmp_path, capsys):  # noqa: F811
    from training.eval_end_to_end import main

    cache = tmp_path / "expw-mtcnn.npz"
    np.savez_compressed(cache, __key__=np.array("mtcnn"), **{f"{NAMES[0]}.jpg": np.zeros((0, 4), np.float32)})
    before = cache.read_bytes()
    assert main(["--data", str(expw_scenes), "--detector", "blazeface", "--detections-cache", str(cache),
                 "--out-dir", str(tmp_path)]) == 2
    assert "holds detector mtcnn's faces, not blazeface's" in _one_line_error(capsys)
    assert cache.read_bytes() == before and not list(tmp_path.glob("e2e-*"))
    (tmp_path / "notes.npz").write_text("not an archive")
    assert main(["--data", str(expw_scenes), "--detections-cache", str(tmp_path / "notes.npz"),
                 "--out-dir", str(tmp_path)]) == 2
    assert "is not a detections cache" in _one_line_error(capsys)


# --- expw_crops.py -----------------------------------------------------------------------------------------------


def test_expw_crops_refuses_bad_arguments_in_one_line(expw_scenes, tmp_path, capsys):  # noqa: F811
    from training.expw_crops import main

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "label.lst").write_text("a.jpg 0 1 1 9 9 50.0 3\nb.jpg 0 1 2 3\n")
    cache = tmp_path / "expw-mtcnn.npz"
    np.savez_compressed(cache, __key__=np.array("mtcnn"))
    (tmp_path / "used" / "fold0").mkdir(parents=True)
    for argv, message in (
            (["--data", str(expw_scenes), "--out", str(tmp_path / "c"), "--folds", "0"], "--folds must be at least 1"),
            (["--data", str(tmp_path), "--out", str(tmp_path / "c")], "no label.lst there"),
            (["--data", str(tmp_path / "bad"), "--out", str(tmp_path / "c")], "label.lst line 2 has 5 fields"),
            (["--data", str(expw_scenes), "--out", str(tmp_path / "used")], f"--out {tmp_path / 'used'} is not empty"),
            (["--data", str(expw_scenes), "--out", str(tmp_path / "c"), "--detector", "blazeface",
              "--detections-cache", str(cache)], "holds detector mtcnn's faces, not blazeface's")):
        assert message in _refused(main, argv, capsys)
    assert not (tmp_path / "c").exists()


def test_expw_crops_counts_missing_photos_and_cuts_the_others(expw_scenes, tmp_path, capsys):  # noqa: F811
    from training.expw_crops import main

    root = tmp_path / "expw"
    shutil.copytree(expw_scenes, root)
    for name in NAMES[:2]:
        (root / "image" / f"{name}.jpg").unlink()
    assert main(["--data", str(root), "--out", str(tmp_path / "crops")]) == 0
    assert "left out the faces of 2 photo(s)" in capsys.readouterr().err
    assert len(list((tmp_path / "crops").rglob("*.png"))) == len(NAMES) - 2
    shutil.rmtree(root / "image")
    assert "none of the photos" in _refused(main, ["--data", str(root), "--out", str(tmp_path / "none")], capsys)


def test_expw_crops_keeps_every_face_when_two_would_share_a_file_name(expw_scenes, tmp_path):  # noqa: F811
    """A face id listed twice for one photo, and photos of one stem (x.jpg, x.png): one crop file each, none lost."""
    from training.expw_crops import main

    root = tmp_path / "expw"
    shutil.copytree(expw_scenes, root)
    first = (root / "label.lst").read_text().splitlines()[0]
    shutil.copy(root / "image" / f"{NAMES[0]}.jpg", root / "image" / f"{NAMES[0]}.png")
    with open(root / "label.lst", "a") as fh:
        fh.write(first + "\n" + first.replace(".jpg", ".png", 1) + "\n")
    assert main(["--data", str(root), "--out", str(tmp_path / "crops"), "--folds", "1"]) == 0
    label_folder = tmp_path / "crops" / "fold0" / LABELS[0]
    assert sorted(p.name for p in label_folder.glob(f"{NAMES[0]}#*")) == [
        f"{NAMES[0]}#0.png", f"{NAMES[0]}#0~2.png", f"{NAMES[0]}#0~3.png"]
    assert len(list((tmp_path / "crops").rglob("*.png"))) == len(NAMES) + 2


# --- refit_tail.py -----------------------------------------------------------------------------------------------


def test_refit_refuses_bad_arguments_before_computing_any_feature(expw_scenes, faces, capsys):  # noqa: F811
    from training.models import build
    from training.refit_tail import main

    model = faces / "base.keras"
    build("vgg_tiny").save(model)
    (faces / "notes.keras").write_text("not a model")
    (faces / "bad").mkdir()
    (faces / "bad" / "label.lst").write_text("a.jpg 0 1 2 3\n")
    cache = faces / "expw-mtcnn.npz"
    np.savez_compressed(cache, __key__=np.array("mtcnn"))
    base = ["--model", str(model), "--data", str(faces / "train"), "--expw", str(expw_scenes), "--expw-fold", "1",
            "--out", str(faces / "r.keras")]

    def with_(option, value):
        argv = list(base)
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
        return argv

    for argv, message in (
            (with_("--epochs", "0"), "--epochs must be at least 1"),
            (with_("--dropout-scale", "3"), "--dropout-scale must be between 0 and 1.5"),
            (with_("--out", str(faces / "r.h5")), "give a file name ending in .keras"),
            (with_("--data", str(faces / "nothere")), f"--data {faces / 'nothere'}: no such file or folder"),
            (with_("--expw", str(faces / "train")), "no label.lst there"),
            (with_("--model", str(faces / "notes.keras")), "is not a Keras model file"),
            (with_("--expw", str(faces / "bad")), "label.lst line 1 has 5 fields"),
            (with_("--detector", "blazeface") + ["--detections-cache", str(cache)], "holds detector mtcnn's faces")):
        assert message in _refused(main, argv, capsys)
    assert not (faces / "r.keras").exists() and not (faces / "r.ckpt").exists()
