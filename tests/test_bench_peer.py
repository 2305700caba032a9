"""`fer-batch bench` and the peer (`fer`) runner: what can be checked without the peer, and with it when installed."""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from fer_batch import bench
from fer_batch.peer import RUNNER, PeerUnavailable, default_peer_python, peer_photos, peer_video_fps

REQUIRED_KEYS = {"decode_fps", "every_frame_fps", "fps5_realtime_factor", "classifier_crops_per_s", "peak_rss_mb",
                 "peer_fps", "ratio_vs_peer", "peer_mtcnn_fps", "peer_note", "every_frame_frames_per_cpu_s",
                 "peer_frames_per_cpu_s", "ratio_vs_peer_cpu"}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from fer_batch.demo import write_demo_clip

    return write_demo_clip(tmp_path_factory.mktemp("clip") / "tiny.mp4", seconds=1.0, fps=10.0)


def test_peer_runner_imports_only_stdlib_cv2_fer_and_fers_mtcnn():
    allowed = set(sys.stdlib_module_names) | {"cv2", "fer", "torch", "facenet_pytorch", "__future__"}
    tree = ast.parse(RUNNER.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= allowed, imported - allowed


def test_bench_json_has_the_required_keys_and_a_null_peer_when_the_peer_python_is_missing(tmp_path, tiny_clip, monkeypatch):
    measure_crops = bench.classifier_crops_per_s
    monkeypatch.setattr(bench, "classifier_crops_per_s", lambda classifier: measure_crops(classifier, n=32))
    out = tmp_path / "bench.json"
    bench.run_bench(tiny_clip, out, tmp_path / "reports", max_frames=3, peer_python=tmp_path / "nowhere" / "python")
    result = json.loads(out.read_text())
    assert REQUIRED_KEYS <= result.keys()
    assert result["peer_fps"] is None and result["ratio_vs_peer"] is None and result["peer_mtcnn_fps"] is None
    assert "not installed" in result["peer_note"]
    assert result["every_frame_frames"] == 3 and result["every_frame_fps"] > 0 and result["decode_fps"] > 0
    assert result["fast_every_frame_fps"] > 0 and result["fast_ratio_vs_peer"] is None
    assert result["fast_fps5_realtime_factor"] > 0
    assert "--detect-every 5" in result["fast_settings"]
    md = (tmp_path / "reports" / "bench.md").read_text()
    assert "not installed" in md and "peer (`fer`, Haar)" in md


def test_peer_python_defaults_to_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_BATCH_PEER_PYTHON", str(tmp_path / "py"))
    assert default_peer_python() == tmp_path / "py"
    with pytest.raises(PeerUnavailable, match="not installed"):
        peer_video_fps(default_peer_python(), tmp_path / "clip.mp4")


def test_peer_scores_are_matched_and_scored_like_our_end_to_end_evaluation():
    from training.eval_peer_expw import score_answer

    def scores(top: str) -> dict:
        return {label: (0.9 if label == top else 0.01) for label in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}

    truth = {"a.jpg": [([0, 0, 100, 100], 3), ([200, 0, 300, 100], 0)], "b.jpg": [([0, 0, 50, 50], 6)]}
    answer = {"images": {
        "a.jpg": {"detected": [{"box": [5, 5, 100, 100], "scores": scores("happy")},
                               {"box": [400, 400, 450, 450], "scores": scores("sad")}],
                  "on_truth": [scores("happy"), scores("sad")]},
        "b.jpg": {"detected": [], "on_truth": [None]},
    }}
    result = score_answer(truth, answer, min_iou=0.4)
    assert (result["labelled_faces"], result["found_faces"]) == (3, 1)
    assert result["on_found"]["accuracy"] == 1.0
    assert result["on_labelled_boxes"]["accuracy"] == 0.5 and result["on_labelled_boxes"]["unscored"] == 1


@pytest.fixture(scope="module")
def peer_python() -> Path:
    found = default_peer_python()
    if found is None or not found.exists():
        pytest.skip("the peer's environment is absent (scripts/install_peer.sh makes it)")
    return found


def test_peer_analyses_every_frame_of_a_clip(peer_python, tiny_clip):
    result = peer_video_fps(peer_python, tiny_clip, max_frames=4)
    assert result["frames"] == 4 and result["fps"] > 0 and result["frames_per_cpu_s"] > 0 and result["detector"] == "haar"
    assert result["opencv"].startswith("4.")


def test_peer_scores_photos_and_given_boxes(peer_python, tmp_path):
    import cv2
    from skimage import data

    cv2.imwrite(str(tmp_path / "astronaut.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    answer = peer_photos(peer_python, tmp_path, {"astronaut.jpg": [[160, 40, 290, 200]]}, tmp_path / "scratch")
    image = answer["images"]["astronaut.jpg"]
    assert len(image["detected"]) >= 1 and len(image["detected"][0]["box"]) == 4
    assert set(image["on_truth"][0]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
