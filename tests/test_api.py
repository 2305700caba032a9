"""The Python API's arguments: a wrong type or value is one ValueError sentence before any work (as the command line
refuses it), and paths may be given as Path objects or a generator (such as Path.glob)."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

import fer_batch


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_bgr) -> Path:
    path = tmp_path_factory.mktemp("api") / "photos" / "astronaut.jpg"
    path.parent.mkdir()
    cv2.imwrite(str(path), cv2.resize(astronaut_bgr, (256, 256)))
    return path


@pytest.mark.parametrize("arguments, message", [
    ({"fps": "5"}, "option fps must be a number"),
    ({"start_s": "1:30"}, "option start_s must be a number"),
    ({"start_s": None}, "option start_s must be a number, not None"),
    ({"max_frames": 1.5}, "option max_frames must be a whole number or None"),
    ({"batch_size": "8"}, "option batch_size must be a whole number"),
    ({"min_face": None}, "option min_face must be a whole number"),
    ({"flip_tta": "no"}, "option flip_tta must be True or False"),
    ({"annotate_dir": 5}, "option annotate_dir must be a string"),
    ({"backend": "ray", "workers": 1.5}, "option workers must be a whole number"),
    ({"backend": "ray", "cpus_per_worker": "2"}, "option cpus_per_worker must be a number"),
    ({"every_frame": True}, "unknown option"),
    ({"smooth": -1}, "smooth must be 0 or more seconds"),
    ({"smooth": "1"}, "smooth must be 0 or more seconds"),
    ({"fps": True}, "option fps must be a number"),
    ({"segment_s": 30}, "--segment-seconds needs --backend ray"),
])
def test_bad_options_are_one_value_error_sentence(photo, tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        fer_batch.analyze(photo, csv_dir=tmp_path / "csv", **arguments)
    assert not (tmp_path / "csv").exists()


@pytest.mark.parametrize("paths", [None, 5, [5], [None]])
def test_paths_that_are_not_paths_are_a_value_error(paths):
    with pytest.raises(ValueError, match="paths must be"):
        fer_batch.analyze(paths)


def test_an_unusable_report_or_csv_path_is_refused_before_any_work(photo, tmp_path):
    with pytest.raises(ValueError, match="is a folder; give the report's file name"):
        fer_batch.analyze(photo, csv_dir=tmp_path / "csv", out=tmp_path)
    with pytest.raises(ValueError, match="csv_dir .* is a file"):
        fer_batch.analyze(photo, csv_dir=photo)
    kept = photo.read_bytes()
    with pytest.raises(ValueError, match="is an existing file that is not a web page"):
        fer_batch.analyze(photo, csv_dir=tmp_path / "csv", out=photo)   # the report would have replaced the photo
    assert photo.read_bytes() == kept
    (tmp_path / "results").write_text("<!DOCTYPE html><html>an earlier report, named without .html</html>")
    from fer_batch.api import check_report_path

    check_report_path(tmp_path / "results")   # replaced by a run again
    assert not (tmp_path / "csv").exists()


def test_path_options_and_a_generator_of_paths_are_taken(photo, tmp_path):
    """annotate_dir as a Path used to stop the run at the journal (not JSON), after the model had loaded."""
    result = fer_batch.analyze(photo.parent.glob("*.jpg"), csv_dir=tmp_path / "csv", annotate_dir=tmp_path / "ann",
                               detector="haar", max_side=256, fps=1)
    assert result.ok and len(result.summary) == 1
    assert (tmp_path / "csv" / "summary.csv").is_file()
    assert list((tmp_path / "ann").rglob("*.jpg"))
    assert result.settings["annotate_dir"] == str(tmp_path / "ann")
    assert isinstance(result.settings["fps"], float)   # run.json says 1.0, as after `--fps 1` on the command line
