"""MTCNN from the `mtcnn` package (weights ship inside it), run on TensorFlow."""
from __future__ import annotations


import cv2
import numpy as np

from fer_batch.detect.base import Detector, DetectorUnavailable, faces_from_arrays
from fer_batch.native_logs import import_tensorflow
from fer_batch.types import Faces

# Smallest face MTCNN looks for, in the pixels it sees. mtcnn 1.0.0 counts its pyramid levels as if this
# were 20, so a larger value makes the last levels smaller than PNet's 12 pixels and it then finds nothing;
# a smaller one costs a larger pyramid. min_face is applied afterwards, in frame pixels, by the base class.
MTCNN_SMALLEST_FACE = 20


class MTCNNDetector(Detector):
    name = "mtcnn"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        try:
            import_tensorflow()
            from mtcnn import MTCNN
        except ImportError as exc:
            raise DetectorUnavailable(
                f"the mtcnn detector needs the mtcnn package, which cannot be imported ({exc}): pip install mtcnn"
            ) from None
        self._mtcnn = MTCNN()

    def _detect_scaled(self, images: list[np.ndarray], scales: list[float]) -> list[Faces]:
        results: list[Faces | None] = [None] * len(images)
        # mtcnn pads a batch to its largest image, so only frames of one shape (a video's) go together
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            rgb = [cv2.cvtColor(images[i], cv2.COLOR_BGR2RGB) for i in indices]
            rows = self._mtcnn.detect_faces(rgb, box_format="xyxy", output_type="numpy", min_face_size=MTCNN_SMALLEST_FACE)
            rows = np.asarray(rows, np.float32).reshape(-1, 16)
            for batch_index, i in enumerate(indices):
                results[i] = _faces_from_rows(rows[rows[:, 0] == batch_index])
        return results


def _faces_from_rows(rows: np.ndarray) -> Faces:
    """mtcnn rows: image id, x1, y1, x2, y2, score, then 5 landmark x's and 5 landmark y's."""
    landmarks = np.stack([rows[:, 6:11], rows[:, 11:16]], axis=-1)
    return faces_from_arrays(rows[:, 1:5], rows[:, 5], landmarks)
