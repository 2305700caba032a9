import numpy as np

from fer_batch.track import IouTracker, iou_matrix


def test_iou_matrix_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 50 / 150, 0.0])


def test_same_face_keeps_its_id_while_moving():
    tracker = IouTracker()
    ids = [tracker.update(np.array([[100 + 8 * i, 50, 180 + 8 * i, 130]]), i * 0.2)[0] for i in range(20)]
    assert set(ids) == {1}


def test_two_faces_keep_separate_ids_when_order_of_detections_swaps():
    tracker = IouTracker()
    left, right = np.array([10, 10, 60, 60]), np.array([300, 10, 350, 60])
    first = tracker.update(np.stack([left, right]), 0.0)
    second = tracker.update(np.stack([right + 3, left + 3]), 0.2)
    assert first.tolist() == [1, 2]
    assert second.tolist() == [2, 1]


def test_fast_motion_at_low_sampling_rate_is_followed_by_centre_distance():
    tracker = IouTracker()
    a = tracker.update(np.array([[0, 0, 100, 100]]), 0.0)
    b = tracker.update(np.array([[45, 0, 145, 100]]), 0.5)  # IoU 0.38 > 0.3
    c = tracker.update(np.array([[100, 0, 200, 100]]), 1.0)  # IoU 0.0 with last box, but predicted by velocity
    assert a[0] == b[0] == c[0]


def test_face_that_leaves_for_longer_than_the_gap_gets_a_new_id():
    tracker = IouTracker(max_gap_s=1.0)
    box = np.array([[10, 10, 60, 60]])
    assert tracker.update(box, 0.0)[0] == 1
    assert len(tracker.update(np.zeros((0, 4)), 0.5)) == 0
    assert tracker.update(box, 0.9)[0] == 1      # back within the gap
    assert tracker.update(np.zeros((0, 4)), 1.5).size == 0
    assert tracker.update(box, 3.0)[0] == 2      # gone for 2.1 s


def test_new_face_appearing_gets_next_id_and_old_keeps_its_own():
    tracker = IouTracker()
    tracker.update(np.array([[10, 10, 60, 60]]), 0.0)
    ids = tracker.update(np.array([[12, 10, 62, 60], [400, 300, 450, 350]]), 0.2)
    assert ids.tolist() == [1, 2]


def test_at_one_frame_a_second_a_still_face_keeps_its_track():
    """At --fps 1 a 29.97 frames/s video's sampled frames are 1.001 s apart: with a fixed 1 s limit every frame
    started a new track (summary.csv's `tracks` then counted frames, not people)."""
    from fer_batch.pipeline import InputOutcome, ResultAssembler
    from fer_batch.sources import InputFile
    from fer_batch.track import max_track_gap_s
    from fer_batch.types import Faces

    assert max_track_gap_s(None) == max_track_gap_s(5.0) == 1.0 and max_track_gap_s(1.0) == 2.5
    assert max_track_gap_s(0.25) == 10.0

    def track_ids(fps: float | None) -> list[int]:
        assembler = ResultAssembler(fps)
        outcome = InputOutcome(InputFile(None, "clip.mp4", "video", "clip.mp4"))
        for k in range(4):
            faces = Faces(np.array([[100.0, 50, 180, 130]]), np.array([0.99]))
            assembler.add(outcome, 30 * k, k * 1.001, faces, lambda i: np.zeros((8, 8, 3), np.uint8))
        return [int(r.faces.track_ids[0]) for r in outcome.results]

    assert track_ids(1.0) == [1, 1, 1, 1]
    assert track_ids(5.0) == [1, 2, 3, 4]   # at 5 frames/s a 1 s gap is a lost face, as before
