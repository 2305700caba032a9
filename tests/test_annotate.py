"""Where annotated copies put each face's label: inside the image and clear of the other faces' labels."""
from __future__ import annotations

import numpy as np

from fer_batch.annotate import COLOURS, draw_faces, label_layout, place_labels
from fer_batch.types import Faces


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(rect, height: int, width: int) -> bool:
    return 0 <= rect[0] and 0 <= rect[1] and rect[2] <= width and rect[3] <= height


def test_labels_of_faces_side_by_side_do_not_cover_each_other():
    boxes = [(100, 100, 160, 170), (170, 105, 230, 175), (240, 98, 300, 168)]  # a row of faces 10 px apart
    sizes = [(110, 16)] * 3                                                     # each tag wider than its face
    rects = place_labels(boxes, sizes, (480, 640))
    assert all(_inside(r, 480, 640) for r in rects)
    assert not any(_overlap(rects[i], rects[j]) for i in range(3) for j in range(i + 1, 3))
    assert rects[0] == (100, 84, 210, 100)  # the first keeps its place above its box
    assert [r[2] - r[0] for r in rects] == [110] * 3 and [r[3] - r[1] for r in rects] == [16] * 3


def test_labels_stay_inside_the_image_at_its_edges():
    boxes = [(0, 0, 50, 60), (600, 430, 640, 480)]  # top-left corner; bottom-right corner, tag wider than the room
    rects = place_labels(boxes, [(90, 16), (90, 16)], (480, 640))
    assert all(_inside(r, 480, 640) for r in rects)
    assert rects[0][1] == 0          # just inside the top of its box: there is no room above
    assert rects[1][2] == 640        # pulled left to fit


def test_each_face_gets_its_label_drawn_where_the_layout_puts_it_in_its_expression_colour():
    image = np.full((240, 320, 3), 255, np.uint8)
    probs = np.zeros((3, 7), np.float32)
    probs[0, 3], probs[1, 5], probs[2, 0] = 0.9, 0.8, 0.7   # happy, surprise, angry
    faces = Faces(boxes=np.array([[40, 60, 100, 130], [108, 62, 168, 132], [176, 58, 236, 128]], np.float32),
                  scores=np.ones(3, np.float32), probs=probs, track_ids=np.array([1, 2, 3]))
    layout = label_layout(faces, image.shape[:2])
    assert [text for text, _, _ in layout] == ["#1 happy 0.90", "#2 surprise 0.80", "#3 angry 0.70"]
    rects = [rect for _, _, rect in layout]
    assert not any(_overlap(rects[i], rects[j]) for i in range(3) for j in range(i + 1, 3))
    drawn = draw_faces(image, faces)
    assert (image == 255).all()  # the input is left as it was
    for (_, colour, (x1, y1, x2, y2)), label_id in zip(layout, (3, 5, 0)):
        assert colour == COLOURS[label_id]
        assert (drawn[y1:y2, x1] == colour).all()   # the tag's left edge, before its text, is unbroken
