"""training/fer_framing.py measures where the detector frames a face inside a small face image."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_batch.detect import create_detector
from training.fer_framing import framing, main


@pytest.fixture(scope="module")
def astronaut_face(astronaut_bgr) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo (BGR) and MTCNN's box on her face."""
    faces = create_detector("mtcnn").detect([astronaut_bgr])[0]
    assert len(faces.boxes) == 1
    return astronaut_bgr, faces.boxes[0]


def face_frame(image: np.ndarray, box: np.ndarray, zoom_out: float, turn: float = 0.0) -> np.ndarray:
    """A 48x48 gray frame on the square around the box, `zoom_out` times its side, turned by `turn` degrees."""
    (x1, y1, x2, y2), gray = box, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    centre, side = ((x1 + x2) / 2.0, (y1 + y2) / 2.0), max(x2 - x1, y2 - y1) * zoom_out
    matrix = cv2.getRotationMatrix2D(centre, turn, 48.0 / side)
    matrix[:, 2] += (24.0 - centre[0], 24.0 - centre[1])
    return cv2.warpAffine(gray, matrix, (48, 48), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def test_the_square_follows_how_the_face_is_framed(astronaut_face) -> None:
    image, box = astronaut_face
    tight, wide, turned = framing([face_frame(image, box, 1.0), face_frame(image, box, 1.6),
                                   face_frame(image, box, 1.0, turn=15.0)])
    assert tight is not None and wide is not None and turned is not None
    assert abs(tight["side"] - 1.0) < 0.15 and abs(tight["dx"]) < 0.08 and abs(tight["dy"]) < 0.08
    assert abs(wide["side"] - 1.0 / 1.6) < 0.1
    assert 0.2 < tight["eye_height"] < 0.6
    assert abs(turned["tilt"] - tight["tilt"]) > 8.0  # the turn shows up as eye tilt


def test_a_frame_without_a_face_is_not_found() -> None:
    assert framing([np.full((48, 48), 128, np.uint8)]) == [None]


def test_main_writes_the_report(astronaut_face, tmp_path) -> None:
    image, box = astronaut_face
    for label, zoom in (("happy", 1.0), ("neutral", 1.2)):
        (tmp_path / "data" / label).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / label / "0.png"), face_frame(image, box, zoom))
    (tmp_path / "data" / "sad").mkdir()
    cv2.imwrite(str(tmp_path / "data" / "sad" / "0.png"), np.full((48, 48), 90, np.uint8))
    assert main(["--data", str(tmp_path / "data"), "--faces", "3", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "framing.json").read_text())
    assert (result["faces"], result["found"]) == (3, 2)
    assert result["side"]["p10"] < result["side"]["p90"]
    assert "fer_framing.py --data" in (tmp_path / "out" / "framing.md").read_text()


def test_write_crops_reframes_faces_as_the_pipeline_cuts_them(astronaut_face, tmp_path) -> None:
    image, box = astronaut_face
    (tmp_path / "data" / "happy").mkdir(parents=True)
    (tmp_path / "data" / "sad").mkdir()
    wide_turned = face_frame(image, box, 1.5, turn=12.0)
    blank = np.full((48, 48), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "data" / "happy" / "0.png"), wide_turned)
    cv2.imwrite(str(tmp_path / "data" / "sad" / "0.jpg"), blank)
    assert main(["--data", str(tmp_path / "data"), "--write-crops", str(tmp_path / "crops")]) == 0
    reframed = cv2.imread(str(tmp_path / "crops" / "happy" / "0.png"), cv2.IMREAD_UNCHANGED)
    assert reframed.shape == (48, 48)
    before, after = framing([wide_turned, reframed])
    assert abs(before["side"] - 1 / 1.5) < 0.1 and abs(after["side"] - 1.0) < 0.15  # now framed on the box
    assert abs(after["tilt"]) < abs(before["tilt"]) - 6.0  # and levelled
    kept = cv2.imread(str(tmp_path / "crops" / "sad" / "0.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(kept, cv2.imread(str(tmp_path / "data" / "sad" / "0.jpg"), cv2.IMREAD_GRAYSCALE))


def test_main_asks_for_one_output(tmp_path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path)])
