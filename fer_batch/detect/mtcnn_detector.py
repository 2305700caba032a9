"""MTCNN from the `mtcnn` package (weights ship inside it), run on TensorFlow."""
from __future__ import annotations


import cv2
import numpy as np

from fer_batch.devices import tensorflow_device
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
        stages = MTCNN().stages
        for stage in stages:
            if hasattr(stage, "_model"):
                stage._model = _compiled(stage._model)
        # mtcnn runs on the CPU unless told otherwise, even where TensorFlow sees a GPU
        self._mtcnn = MTCNN(stages=[_TensorInput(stage) for stage in stages], device=tensorflow_device(self.device))

    def _detect_scaled(self, images: list[np.ndarray], scales: list[float]) -> list[Faces]:
        # One image per call. Given several, mtcnn runs RNet and ONet on the proposals of all of them at once, and a
        # frame's scores then change in the last digits with its batch-mates: enough to flip a close suppression and
        # move a box by pixels, so results would depend on how frames happened to be batched.
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Faces:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rows = self._mtcnn.detect_faces([rgb], box_format="xyxy", output_type="numpy", min_face_size=MTCNN_SMALLEST_FACE)
        return _faces_from_rows(np.asarray(rows, np.float32).reshape(-1, 16))


def _faces_from_rows(rows: np.ndarray) -> Faces:
    """mtcnn rows: image id, x1, y1, x2, y2, score, then 5 landmark x's and 5 landmark y's."""
    landmarks = np.stack([rows[:, 6:11], rows[:, 11:16]], axis=-1)
    return faces_from_arrays(rows[:, 1:5], rows[:, 5], landmarks)


def _compiled(network):
    """The network as one TensorFlow graph instead of op by op: the same kernels, so the same bits (boxes and scores
    measured identical on 423 frames and photos), and about 3x the frames/s on video. reduce_retracing keeps one
    trace for the image pyramid's many sizes."""
    import tensorflow as tf

    graph = tf.function(network, reduce_retracing=True)

    def call(batch):
        if batch.shape[0] == 0:
            # mtcnn reads an InvalidArgumentError from an empty batch as "no faces"; raised here, the graph does not
            # also log an aborted rendezvous for every frame without a face
            raise tf.errors.InvalidArgumentError(None, None, "no face proposals")
        return graph(batch)

    return call


class _TensorInput:
    """A stage given the normalised image as one tensor: mtcnn hands every stage a numpy array, which TensorFlow
    copies again for each level of the image pyramid. Same values, same bits; 5-14% less detector time in two A/B
    runs (scripts/mtcnn_tensor_ab.py -> reports/mtcnn-tensor-input.md)."""

    def __init__(self, stage) -> None:
        self.stage = stage

    def __call__(self, *, images_normalized, **kwargs):
        import tensorflow as tf

        return self.stage(images_normalized=tf.convert_to_tensor(images_normalized), **kwargs)
