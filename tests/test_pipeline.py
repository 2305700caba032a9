"""End to end through the real detector and the shipped model, on inputs generated here."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_batch.aggregate import FRAME_COLUMNS, SUMMARY_COLUMNS, TRACK_COLUMNS
from fer_batch.export import ROOT_FOLDER
from fer_batch.labels import LABELS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def face_clip(path, face, seconds=2.0, fps=10.0, gap=None, size=(480, 270)):
    """A clip with the face moving left to right; no face during `gap` = (start_s, end_s)."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    n = int(seconds * fps)
    for i in range(n):
        t = i / fps
        frame = np.full((height, width, 3), 230, np.uint8)
        if gap is None or not gap[0] <= t < gap[1]:
            side = 180
            x = 20 + int((width - side - 40) * i / max(1, n - 1))
            frame[40:40 + side, x:x + side] = cv2.resize(face, (side, side))
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def face(astronaut_bgr):
    return astronaut_bgr[0:300, 100:400].copy()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, face, astronaut_bgr):
    root = tmp_path_factory.mktemp("inputs")
    (root / "videos").mkdir()
    (root / "photos" / "group").mkdir(parents=True)
    face_clip(root / "videos" / "moving.mp4", face, seconds=3.0, gap=(1.0, 2.0))
    blank = cv2.VideoWriter(str(root / "videos" / "blank.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for _ in range(10):
        blank.write(np.full((240, 320, 3), 128, np.uint8))
    blank.release()
    cv2.imwrite(str(root / "photos" / "astronaut.jpg"), astronaut_bgr)
    two = np.full((400, 800, 3), 240, np.uint8)
    two[50:350, 50:350] = face
    two[50:350, 450:750] = cv2.flip(face, 1)
    cv2.imwrite(str(root / "photos" / "group" / "two.png"), two)
    cv2.imwrite(str(root / "photos" / "empty.png"), np.full((200, 200, 3), 90, np.uint8))
    (root / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not media")
    return root


@pytest.fixture(scope="module")
def analysis(batch, tmp_path_factory):
    import fer_batch

    out = tmp_path_factory.mktemp("out")
    result = fer_batch.analyze([batch], csv_dir=out / "csv", out=out / "report.html", fps=5.0)
    return result, out


def test_frame_table_has_the_exact_schema(analysis):
    result, out = analysis
    assert list(result.frames.columns) == list(FRAME_COLUMNS)
    assert list(result.summary.columns) == list(SUMMARY_COLUMNS)
    faces = result.frames[result.frames["face"].notna()]
    np.testing.assert_allclose(faces[list(LABELS)].sum(axis=1), 1.0, atol=1e-3)
    assert (faces["expression"] == faces[list(LABELS)].idxmax(axis=1)).all()


def test_video_rows_sampled_tracked_and_gaps_kept(analysis, batch):
    result, _ = analysis
    frames = result.frames
    moving = frames[frames["source"] == os.path.join(str(batch), "videos", "moving.mp4")]
    assert moving["frame"].tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28]
    np.testing.assert_allclose(moving["time_s"], np.arange(15) * 0.2, atol=1e-3)
    with_face = moving[moving["time_s"].lt(1.0) | moving["time_s"].ge(2.0)]
    gap = moving[moving["time_s"].ge(1.0) & moving["time_s"].lt(2.0)]
    assert with_face["face"].notna().mean() >= 0.8
    assert gap["face"].isna().all()  # rows kept with empty face columns
    # one track before the gap, a new one after it (gone for 1 s = the tracker's max gap)
    before = with_face[with_face["time_s"] < 1.0]["track_id"].dropna().unique()
    assert len(before) == 1
    # boxes are on the face: x grows as the face moves right
    xs = with_face["x"].dropna().astype(float).to_numpy()
    assert np.all(np.diff(xs) > 0)


def test_blank_video_has_a_row_per_sampled_frame_and_no_faces(analysis, batch):
    result, _ = analysis
    blank = result.frames[result.frames["source"] == os.path.join(str(batch), "videos", "blank.mp4")]
    assert len(blank) == 5 and blank["face"].isna().all()
    row = result.summary.set_index("source").loc[os.path.join(str(batch), "videos", "blank.mp4")]
    assert row["faces"] == 0 and row["frames_analysed"] == 5


def test_photos_two_faces_empty_photo_and_broken_file(analysis, batch):
    result, _ = analysis
    frames = result.frames
    two = frames[frames["source"] == os.path.join(str(batch), "photos", "group", "two.png")]
    assert sorted(two["face"].tolist()) == [0, 1]
    assert two["time_s"].isna().all() and (two["frame"] == 0).all()
    assert two["x"].iloc[0] < 400 <= two["x"].iloc[1]
    empty = frames[frames["source"] == os.path.join(str(batch), "photos", "empty.png")]
    assert len(empty) == 1 and empty["face"].isna().all()
    assert result.errors["input"].tolist() == [os.path.join(str(batch), "photos", "broken.jpg")]
    assert result.errors["stage"].iloc[0] == "decode"
    assert result.skipped["path"].tolist() == [os.path.join(str(batch), "notes.txt")]


def test_csvs_written_per_video_and_per_image_folder(analysis, batch):
    result, out = analysis
    csv = out / "csv"
    rel = Path(ROOT_FOLDER, str(batch).lstrip("/"))   # an absolute input path is mirrored under a root folder
    assert (csv / rel / "videos" / "moving.mp4.csv").is_file()
    assert (csv / rel / "photos" / "images.csv").is_file()
    assert (csv / rel / "photos" / "group" / "images.csv").is_file()
    video = pd.read_csv(csv / rel / "videos" / "moving.mp4.csv")
    assert list(video.columns) == list(FRAME_COLUMNS)
    assert len(video) == len(result.frames[result.frames["source"].str.endswith("moving.mp4")])
    errors = pd.read_csv(csv / "errors.csv")
    assert list(errors.columns) == ["input", "stage", "reason"] and len(errors) == 1
    summary = pd.read_csv(csv / "summary.csv")
    assert len(summary) == 5
    assert (out / "report.html").stat().st_size > 100_000


def test_tracks_csv_has_a_row_per_person_per_video(analysis, batch):
    result, out = analysis
    tracks = pd.read_csv(out / "csv" / "tracks.csv")
    assert list(tracks.columns) == list(TRACK_COLUMNS)
    moving = os.path.join(str(batch), "videos", "moving.mp4")
    assert set(tracks["source"]) == {moving}  # the blank video has no face, photos have no tracks
    summary = result.summary.set_index("source")
    assert len(tracks) == summary.loc[moving, "tracks"] >= 2  # the face leaves for 1 s and comes back
    rows = result.frames[result.frames["source"] == moving]
    for _, track in tracks.iterrows():
        own = rows[rows["track_id"] == track["track_id"]]
        assert track["faces"] == len(own)
        assert (track["first_frame"], track["last_frame"]) == (own["frame"].min(), own["frame"].max())
        assert track["dominant_expression"] in own["expression"].mode().tolist()
    before, after = tracks.iloc[0], tracks.iloc[-1]
    assert before["end_s"] < 1.0 <= 2.0 <= after["start_s"]


def test_results_are_deterministic(analysis, batch, tmp_path):
    import fer_batch

    first, _ = analysis
    again = fer_batch.analyze([batch / "videos"], fps=5.0)
    mine = first.frames[first.frames["source"].str.contains("videos")].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, again.frames)


def test_cli_exit_status_and_outputs(batch, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "fer_batch", "analyze", "--quiet", "--max-frames", "2", "--out", str(tmp_path / "r.html")]
    ok = subprocess.run(cmd + [str(batch / "videos")], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "r_csv" / "summary.csv").is_file()
    some_failed = subprocess.run(cmd + [str(batch / "photos")], env=env, capture_output=True, text=True)
    assert some_failed.returncode == 1
    usage = subprocess.run(cmd + [str(tmp_path / "does-not-exist")], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "no videos or images" in usage.stderr
    typo = subprocess.run(cmd + [str(batch / "videos"), str(tmp_path / "typo.mp4")], env=env, capture_output=True, text=True)
    assert typo.returncode == 1 and f"fer-batch: no such file or folder: {tmp_path / 'typo.mp4'}" in typo.stderr
    assert (tmp_path / "r_csv" / "summary.csv").read_text().count("\n") == 3   # the two videos were analysed
    bad_option = subprocess.run(cmd + ["--fps", "-1", str(batch / "videos")], env=env, capture_output=True, text=True)
    assert bad_option.returncode == 2


def test_the_api_is_not_ok_when_a_path_given_does_not_exist(batch, tmp_path):
    import fer_batch

    photos = sorted((batch / "photos").glob("*.jpg"))[:1]
    assert fer_batch.analyze(photos).ok
    typo = fer_batch.analyze([*photos, tmp_path / "typo.jpg"])
    assert not typo.ok and typo.errors.empty and len(typo.summary) == 1
    with pytest.raises(ValueError, match="at least one file or folder"):
        fer_batch.analyze([])


def test_annotate_writes_copies(batch, tmp_path):
    import fer_batch

    fer_batch.analyze([batch / "photos" / "group"], annotate_dir=str(tmp_path / "ann"))
    written = list((tmp_path / "ann").rglob("*.jpg"))
    assert len(written) == 1
    assert cv2.imread(str(written[0])).shape == (400, 800, 3)


def test_annotated_videos_play_in_real_time(batch, tmp_path):
    """They were written at 5 frames/s whatever was sampled: --every-frame on 30 fps footage played 6x too slow."""
    import fer_batch

    blank = batch / "videos" / "blank.mp4"   # 1 s at 10 frames/s
    for fps, rate, frames in ((2.0, 2.0, 2), (None, 10.0, 10), (50.0, 10.0, 10)):
        folder = tmp_path / f"ann-{fps}"
        fer_batch.analyze([blank], annotate_dir=str(folder), fps=fps, detector="haar")
        copy = cv2.VideoCapture(str(next(folder.rglob("*.annotated.mp4"))))
        assert copy.get(cv2.CAP_PROP_FPS) == pytest.approx(rate) and copy.get(cv2.CAP_PROP_FRAME_COUNT) == frames
        copy.release()


def test_annotated_copies_into_the_analysed_folder_are_refused(batch, tmp_path):
    import fer_batch

    study = tmp_path / "study"
    shutil.copytree(batch / "photos" / "group", study)
    for target in (study, tmp_path):
        with pytest.raises(ValueError, match="--annotate .* into the folder being analysed"):
            fer_batch.analyze([study], annotate_dir=str(target))
    assert not (study / ".fer-batch-annotated").exists() and not (tmp_path / ".fer-batch-annotated").exists()
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-m", "fer_batch", "analyze", str(study), "--annotate", str(study),
                           "--out", str(tmp_path / "r.html")], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("fer-batch: --annotate") and "Traceback" not in done.stderr


def test_run_json_and_the_report_say_what_made_the_results(analysis, tmp_path):
    """run.json beside the CSVs and the report's last section: the version, the model by content, the options."""
    import hashlib
    import json

    import fer_batch
    from fer_batch.classify import SHIPPED_MODEL
    from fer_batch.report import render_report

    result, out = analysis
    settings = json.loads((out / "csv" / "run.json").read_text())
    assert settings == result.settings
    assert settings["fer_batch"] == fer_batch.__version__ and settings["model"] == "shipped"
    assert settings["model_sha256"] == hashlib.sha256(SHIPPED_MODEL.read_bytes()).hexdigest()
    assert (settings["detector"], settings["fps"], settings["start_s"], settings["flip_tta"]) == ("mtcnn", 5.0, 0.0, True)
    assert "quiet" not in settings and "backend" not in settings   # they change nothing in the results
    assert (settings["min_score"], settings["max_side"]) == (0.5, 640)   # defaults spelled out, as the README gives them
    assert settings["include_hidden"] is False
    import cv2
    import tensorflow as tf

    assert settings["libraries"]["opencv"] == cv2.__version__ and settings["libraries"]["tensorflow"] == tf.__version__
    page = (out / "report.html").read_text()
    assert '<section id="settings">' in page and settings["model_sha256"] in page
    every_frame = render_report(result.frames, result.summary, result.errors, result.skipped, {},
                                settings={**settings, "fps": None, "model": "<mine>.keras"})
    assert "<th scope=\"row\">fps</th><td>every frame</td>" in every_frame and "&lt;mine&gt;.keras" in every_frame
    assert f"opencv {cv2.__version__}, tensorflow {tf.__version__}" in every_frame
    stretch = render_report(result.frames, result.summary, result.errors, result.skipped, {},
                            settings={**settings, "start_s": 1.0})
    assert "--start/--end chose a stretch" in stretch and "--start/--end chose a stretch" not in page
    capped = render_report(result.frames, result.summary, result.errors, result.skipped, {},
                           settings={**settings, "max_frames": 12})
    assert "(whole videos; --max-frames analysed at most 12 frames of each)" in capped and "--max-frames" not in page
    copy = tmp_path / "other.keras"
    copy.write_bytes(SHIPPED_MODEL.read_bytes()[:-1] + b"x")
    from fer_batch.provenance import model_identity

    assert model_identity(str(copy))["model_sha256"] != settings["model_sha256"]


def test_videos_by_second_csv_covers_every_analysed_second_of_the_videos(analysis):
    from fer_batch.aggregate import BY_SECOND_COLUMNS

    result, out = analysis
    table = pd.read_csv(out / "csv" / "videos_by_second.csv")
    assert list(table.columns) == list(BY_SECOND_COLUMNS)
    videos = result.frames[result.frames["source"].map(result.kinds) == "video"]
    assert table["second"].tolist() == sorted(set(videos["time_s"].astype(float).floordiv(1).astype(int)))
    assert table["faces"].sum() == videos["face"].notna().sum() > 0
    assert table["videos_analysed"].max() == 2 and table["videos_with_face"].max() == 1   # blank.mp4 has no face


def test_video_times_are_seconds_or_clock_times():
    from fer_batch.cli import parse_video_time

    assert [parse_video_time(t) for t in ("90", "90.5", "1:30", "01:02:03.5", "0:00")] == [90.0, 90.5, 90.0, 3723.5, 0.0]
    for bad in ("1:60", "1:60:00", "-5", "x", "1::2", ":30", "nan", "inf", ""):
        with pytest.raises(ValueError):
            parse_video_time(bad)


def test_video_times_in_messages_read_back_as_given():
    from fer_batch.cli import parse_video_time
    from fer_batch.options import as_given

    assert [as_given(t) for t in (10.0, 90.0, 3723.5)] == ["10", "1:30 (90 s)", "1:02:03.5 (3723.5 s)"]
    for seconds in (0.0, 0.25, 59.5, 60.0, 90.5, 3599.75, 3600.0, 7384.125):
        assert parse_video_time(as_given(seconds).split(" (")[0]) == seconds


def test_cli_start_and_end(batch, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "fer_batch", "analyze", "--quiet", "--out", str(tmp_path / "r.html"), str(batch / "videos" / "moving.mp4")]
    ok = subprocess.run(cmd + ["--start", "0:01", "--end", "2"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    rows = pd.read_csv(next((tmp_path / "r_csv").rglob("moving.mp4.csv")))
    assert list(rows["time_s"].round(3)) == [1.0, 1.2, 1.4, 1.6, 1.8]
    for args, message in ((["--start", "1:75"], "--start '1:75' is not a time"), (["--start", "2", "--end", "1"], "--end must be after --start")):
        refused = subprocess.run(cmd + args, env=env, capture_output=True, text=True)
        assert refused.returncode == 2 and message in refused.stderr


def test_start_and_end_give_the_whole_run_s_frames_in_that_stretch(analysis, batch):
    """--start 0.5 --end 2.5 on a 3 s clip sampled at 5 frames/s: the frames a whole-video run samples in
    [0.6, 2.4] (0.5 is off its grid), with the same indices, times, boxes and probabilities; photos unaffected."""
    import fer_batch

    whole, _ = analysis
    clip, photo = str(batch / "videos" / "moving.mp4"), str(batch / "photos" / "astronaut.jpg")
    windowed = fer_batch.analyze([clip, photo], start_s=0.5, end_s=2.5, fps=5.0)
    expected = whole.frames[(whole.frames["source"] == clip) & (whole.frames["time_s"] > 0.5)
                            & (whole.frames["time_s"] < 2.5)]
    got = windowed.frames[windowed.frames["source"] == clip]
    assert list(got["time_s"].round(3).unique()) == [0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4]
    exact = ["frame", "time_s", "face", "x", "y", "w", "h"]
    pd.testing.assert_frame_equal(got[exact].reset_index(drop=True), expected[exact].reset_index(drop=True))
    np.testing.assert_allclose(got[list(LABELS)].to_numpy(float), expected[list(LABELS)].to_numpy(float), atol=1e-4)
    assert windowed.summary.set_index("source").loc[photo, "faces"] == whole.summary.set_index("source").loc[photo, "faces"]


def test_a_start_past_a_video_s_end_fails_that_video_with_its_length(batch):
    import fer_batch

    clip, photo = str(batch / "videos" / "moving.mp4"), str(batch / "photos" / "astronaut.jpg")
    result = fer_batch.analyze([clip, photo], start_s=10.0)
    assert result.errors.to_dict("records") == [
        {"input": clip, "stage": "decode", "reason": "the video is 3.00 s long, so --start 10 leaves nothing to analyse"}]
    assert result.summary.set_index("source").loc[photo, "faces"] == 1


def test_annotated_copies_inside_the_analysed_folder_are_not_analysed_again(batch, tmp_path):
    """`analyze study --annotate study/annotated`, run twice (or a later run on `study`), used to count every face
    twice: the annotated copies were walked as inputs."""
    import fer_batch
    from fer_batch.sources import ANNOTATED_SKIP_REASON

    study = tmp_path / "study"
    shutil.copytree(batch / "photos" / "group", study)
    first = fer_batch.analyze([study], annotate_dir=str(study / "annotated"))
    again = fer_batch.analyze([study], annotate_dir=str(study / "annotated"))
    later = fer_batch.analyze([study])
    for result in (first, again, later):
        assert list(result.summary["source"]) == [str(study / "two.png")]
    copies = [str(p) for p in (study / "annotated").rglob("*.jpg")]
    assert len(copies) == 1 and copies[0].endswith("two.png.jpg")
    assert later.skipped.to_dict("records") == [{"path": str(study / "annotated"), "reason": ANNOTATED_SKIP_REASON}]
    asked_for = fer_batch.analyze([study / "annotated"])   # given by name, the folder is analysed
    assert list(asked_for.summary["source"]) == copies


def test_demo_command_writes_report_and_csvs(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-m", "fer_batch", "demo", "--quiet", "--out", "demo.html"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(tmp_path / "demo_csv" / "summary.csv")
    assert len(summary) == 2 and (summary["faces"] > 0).all()
    clip = pd.read_csv(tmp_path / "demo_csv" / "fer-batch-demo" / "clip.mp4.csv")
    # the face leaves the clip for one second in the middle: those rows have no face
    gone = clip[(clip["time_s"] >= 2.0) & (clip["time_s"] < 3.0)]
    assert len(gone) >= 4 and gone["face"].isna().all()
    assert (tmp_path / "demo.html").stat().st_size > 100_000
    again = subprocess.run([sys.executable, "-m", "fer_batch", "demo", "--quiet", "--out", "demo.html"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr   # its own earlier inputs are written again


def test_demo_refuses_a_folder_of_the_user_s_files_and_says_so_in_one_line(tmp_path):
    """`--inputs` a folder of one's own: the demo replaced its clip.mp4 and analysed everything else in it."""
    env = dict(os.environ, PYTHONPATH=REPO)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "clip.mp4").write_bytes(b"my own recording")
    (tmp_path / "afile").write_text("x")
    for folder, says in ((mine, "holds files of its own"), (tmp_path / "afile", "is a file"),
                         (tmp_path / "afile" / "below", "cannot write the demo inputs into")):
        done = subprocess.run([sys.executable, "-m", "fer_batch", "demo", "--quiet", "--inputs", str(folder),
                               "--out", str(tmp_path / "demo.html")], cwd=tmp_path, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert (mine / "clip.mp4").read_bytes() == b"my own recording" and not (tmp_path / "demo.html").exists()


def test_a_stretch_without_a_sampling_instant_says_so(batch):
    import fer_batch

    clip = str(batch / "videos" / "moving.mp4")
    result = fer_batch.analyze([clip], start_s=0.1, end_s=0.2, fps=1.0)
    assert result.errors.to_dict("records") == [{"input": clip, "stage": "decode", "reason":
        "no frame is sampled between --start and --end at --fps 1: the stretch is shorter than one sampling step"}]


def test_each_input_is_done_as_soon_as_its_frames_are_analysed(tmp_path, astronaut_bgr):
    """Finished inputs used to wait (unjournalled, unwritten) until 65 had finished or the decoder fell behind,
    so a run killed near the end of a few long videos lost all of them."""
    from collections import Counter

    from fer_batch.api import build_stages
    from fer_batch.options import AnalyzeOptions
    from fer_batch.pipeline import Pipeline
    from fer_batch.sources import walk_inputs
    from test_bad_inputs import face_frames, write_video

    for i in range(3):
        write_video(tmp_path / f"v{i}.mp4", face_frames(astronaut_bgr, 30))
    options = AnalyzeOptions(detector="blazeface", fps=None)   # every frame: 30 a video, in batches of 8
    inputs, _ = walk_inputs([tmp_path])
    pipeline = Pipeline(*build_stages(options), options)
    analysed: Counter = Counter()
    process = pipeline._process

    def counting(batch):
        analysed.update(outcome.item.source for outcome, _ in batch)
        process(batch)

    pipeline._process = counting
    done: list[tuple[str, int]] = []
    pipeline.run(inputs, lambda outcome: done.append((outcome.item.source, analysed[inputs[-1].source])))
    assert [source for source, _ in done] == [item.source for item in inputs]
    assert done[0][1] == 0 and done[1][1] < 30   # the first two were done before the last video was analysed
    assert analysed[inputs[-1].source] == 30


def test_an_earlier_version_s_demo_folder_is_taken_and_a_look_stops_early(tmp_path):
    from fer_batch.demo import demo_folder_problem

    (tmp_path / "old" / "photos").mkdir(parents=True)
    (tmp_path / "old" / "clip.mp4").write_bytes(b"x")
    (tmp_path / "old" / "photos" / "astronaut.jpg").write_bytes(b"x")
    assert demo_folder_problem(tmp_path / "old") is None   # exactly what the demo wrote before it marked its folder
    (tmp_path / "old" / "photos" / "astronaut.jpg").unlink()
    assert "holds files of its own" in demo_folder_problem(tmp_path / "old")   # a clip.mp4 alone may be the user's
    many = tmp_path / "many"
    many.mkdir()
    for n in range(2000):
        (many / f"{n}.jpg").write_bytes(b"")
    assert "holds files of its own" in demo_folder_problem(many)
