"""--device: one TensorFlow device for the classifier and the TensorFlow detectors, GPU when TensorFlow sees one."""
from __future__ import annotations

import cv2
import pytest

from fer_batch.api import build_stages
from fer_batch.devices import DeviceUnavailable, tensorflow_device
from fer_batch.detect import create_detector
from fer_batch.native_logs import import_tensorflow
from fer_batch.options import AnalyzeOptions
from test_bad_inputs import face_photo, run_cli

GPUS_HERE = import_tensorflow().config.list_physical_devices("GPU")


def test_auto_means_the_gpu_when_tensorflow_sees_one():
    assert tensorflow_device("auto", gpus=["GPU:0"]) == "/GPU:0"
    assert tensorflow_device("auto", gpus=[]) == "/CPU:0"
    assert tensorflow_device("gpu", gpus=["GPU:0", "GPU:1"]) == "/GPU:0"
    assert tensorflow_device("cpu", gpus=["GPU:0"]) == "/CPU:0"
    assert tensorflow_device("auto") == ("/GPU:0" if GPUS_HERE else "/CPU:0")   # what TensorFlow sees here
    with pytest.raises(DeviceUnavailable, match="TensorFlow sees no GPU"):
        tensorflow_device("gpu", gpus=[])
    with pytest.raises(ValueError, match="--device must be one of auto, cpu, gpu"):
        tensorflow_device("tpu")


def test_mtcnn_runs_where_the_classifier_runs():
    # the mtcnn package pins its networks to the CPU unless given a device: with a GPU the detector, most of the
    # work, would stay on the CPU
    detector, classifier = build_stages(AnalyzeOptions())
    assert detector.device == "auto" and detector._mtcnn.device == classifier.device == tensorflow_device("auto")
    on_cpu = create_detector("mtcnn", device="cpu")
    assert on_cpu._mtcnn.device == "/CPU:0"
    with pytest.raises(ValueError, match="--device must be one of"):
        create_detector("haar", device="tpu")


@pytest.mark.skipif(bool(GPUS_HERE), reason="this machine has a GPU")
def test_device_gpu_without_a_gpu_is_one_sentence(tmp_path, astronaut_bgr):
    cv2.imwrite(str(tmp_path / "face.jpg"), face_photo(astronaut_bgr))
    result = run_cli("--device", "gpu", "--out", str(tmp_path / "report.html"), str(tmp_path / "face.jpg"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "fer-batch: --device gpu was asked for, but TensorFlow sees no GPU on this machine."
    assert not (tmp_path / "report_csv" / "summary.csv").exists()
