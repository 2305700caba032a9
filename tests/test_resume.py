"""Crashes: a run SIGKILLed half-way and resumed gives the CSVs of an uninterrupted run; a second run into the
same output folder is refused while the first is alive; the journal itself, without the pipeline."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_batch.aggregate import ERROR_COLUMNS, FRAME_COLUMNS, SKIPPED_COLUMNS, SUMMARY_COLUMNS, TRACK_COLUMNS
from fer_batch.export import ROOT_FOLDER
from fer_batch.options import AnalyzeOptions
from fer_batch.pipeline import InputOutcome
from fer_batch.sources import walk_inputs
from fer_batch.state import ResumeRefused, RunLocked, RunState, interrupts_deferred
from fer_batch.types import Faces, FrameResult, InputError
from test_bad_inputs import ENV, face_frames, face_photo, read_csvs, run_cli, write_video

OPTIONS = ["--detector", "haar", "--fps", "5"]  # the light detector: these runs are about files, not faces
CSV_HEADERS = {"summary.csv": SUMMARY_COLUMNS, "tracks.csv": TRACK_COLUMNS, "errors.csv": ERROR_COLUMNS,
               "skipped.csv": SKIPPED_COLUMNS}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, astronaut_bgr) -> Path:
    root = tmp_path_factory.mktemp("resume") / "inputs"
    (root / "sub").mkdir(parents=True)
    write_video(root / "a_clip.mp4", face_frames(astronaut_bgr, 20))  # first: its CSV is written at once
    (root / "b_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    cv2.imwrite(str(root / "c_face.jpg"), face_photo(astronaut_bgr))
    write_video(root / "d_long.mp4", face_frames(astronaut_bgr, 200))
    cv2.imwrite(str(root / "e_face.png"), face_photo(astronaut_bgr, 160, flip=True))
    cv2.imwrite(str(root / "sub" / "f_face.jpg"), face_photo(astronaut_bgr, 240))
    (root / "notes.txt").write_text("not media")
    return root


@pytest.fixture(scope="module")
def clean(inputs, tmp_path_factory) -> Path:
    """An uninterrupted run: the reference."""
    out = tmp_path_factory.mktemp("clean")
    done = run_cli("--quiet", *OPTIONS, "--out", str(out / "report.html"), str(inputs))
    assert done.returncode == 1, done.stderr  # b_broken.jpg
    return out / "report_csv"


def journal_entries(csv_dir: Path) -> list[dict]:
    path = csv_dir / ".fer-batch" / "journal.jsonl"
    if not path.is_file():
        return []
    lines = []
    for line in path.read_bytes().split(b"\n")[1:]:
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return [line for line in lines if "source" in line]   # not the {"complete": true} that ends a finished run


def test_killed_run_resumes_to_the_csvs_of_an_uninterrupted_run(inputs, clean, tmp_path):
    csv = tmp_path / "report_csv"
    command = [sys.executable, "-m", "fer_batch", "analyze", "--quiet", *OPTIONS, "--out", str(tmp_path / "report.html"),
               str(inputs)]
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while len(journal_entries(csv)) < 2:
            assert first.poll() is None, "the run ended before two inputs were journalled: " + first.stderr.read().decode()
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # frozen mid-batch, still holding the lock

        second = run_cli("--quiet", *OPTIONS, "--out", str(tmp_path / "report.html"), str(inputs))
        assert second.returncode == 2
        assert second.stderr.startswith("fer-batch: another fer-batch run") and f"process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()  # SIGKILL, also for a stopped process
        first.wait()
    finished = RunState(csv).finished_sources()
    assert 2 <= len(finished) < 6

    # what a reader sees after the kill: whole CSVs or nothing, never a partial or temporary file
    visible = [p for p in csv.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(csv).parts)]
    assert visible and all(p.suffix == ".csv" for p in visible)
    for path in visible:
        columns = list(pd.read_csv(path, nrows=0).columns)
        assert columns == list(CSV_HEADERS.get(path.name, FRAME_COLUMNS))
    assert not (tmp_path / "report.html").exists()

    refused = run_cli("--quiet", "--detector", "haar", "--fps", "2", "--resume", "--out", str(tmp_path / "report.html"),
                      str(inputs))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("fer-batch: cannot resume") and "(fps 5 -> 2)" in refused.stderr
    assert "detector" not in refused.stderr   # haar was given both times

    touched = finished[0]  # a changed file (new modification time) is analysed again
    stat = os.stat(touched)
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    resumed = run_cli(*OPTIONS, "--resume", "--out", str(tmp_path / "report.html"), str(inputs))
    assert resumed.returncode == 1, resumed.stderr
    kept = len(finished) - 1 - sum(source.endswith("b_broken.jpg") for source in finished[1:])   # a failure: again
    assert f"{kept} of 6 input(s) already finished" in resumed.stderr
    assert len(journal_entries(csv)) == len(finished) + (6 - kept)  # only the others were analysed again

    assert read_csvs(csv) == read_csvs(clean)  # byte for byte: per-frame CSVs, summary, errors, skipped
    assert (tmp_path / "report.html").stat().st_size > 100_000
    assert not [p for p in csv.rglob("*.tmp")]


def test_an_input_that_failed_is_tried_again_on_resume(tmp_path, astronaut_bgr):
    """Its cause fixed without a new size or modification time (a permission, say): the journalled failure was
    replayed, so the resumed run never analysed it."""
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.jpg"), face_photo(astronaut_bgr))
    ok, good = cv2.imencode(".jpg", face_photo(astronaut_bgr, 180))
    photo = folder / "b_face.jpg"
    photo.write_bytes(b"\0" * len(good))   # unreadable, of the good photo's size
    stat = os.stat(photo)
    command = ["--quiet", *OPTIONS, "--csv-dir", str(tmp_path / "csv"), str(folder)]
    assert run_cli(*command).returncode == 1
    photo.write_bytes(good.tobytes())
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    resumed = run_cli(*command, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    summary = pd.read_csv(tmp_path / "csv" / "summary.csv")
    assert summary["source"].tolist() == [str(folder / "a_face.jpg"), str(photo)] and (summary["faces"] == 1).all()
    assert pd.read_csv(tmp_path / "csv" / "errors.csv").empty


def _sigint_as_usual() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job would inherit it ignored


def test_ctrl_c_says_how_to_resume_and_a_fresh_start_says_what_it_drops(inputs, clean, tmp_path):
    csv = tmp_path / "report_csv"
    command = [sys.executable, "-m", "fer_batch", "analyze", *OPTIONS, "--out", str(tmp_path / "report.html"),
               str(inputs)]
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_sigint_as_usual)
    try:
        while len(journal_entries(csv)) < 2:
            assert first.poll() is None, "the run ended before two inputs were journalled: " + first.stderr.read()
            time.sleep(0.02)
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()
    # what --resume keeps: the failed b_broken.jpg is analysed again
    finished = len({entry["source"] for entry in journal_entries(csv) if entry["error"] is None})
    assert first.returncode == 130 and "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"fer-batch: interrupted; {finished} of 6 input(s) finished") and "--resume" in last

    env = dict(ENV, FER_BATCH_RETINAFACE_WEIGHTS=str(tmp_path / "no-such-weights.h5"))
    refused = subprocess.run([*command[:4], "--detector", "retinaface", "--out", str(tmp_path / "report.html"),
                              str(inputs)], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "retinaface" in refused.stderr
    assert len({entry["source"] for entry in journal_entries(csv)
                if entry["error"] is None}) == finished   # a refused run leaves the journal alone

    afresh = run_cli("--quiet", *OPTIONS, "--out", str(tmp_path / "report.html"), str(inputs))
    assert afresh.returncode == 1
    assert afresh.stderr.startswith(f"fer-batch: starting afresh in {csv}: the interrupted run there had finished "
                                    f"{finished} input(s)") and "(--resume would have kept them)" in afresh.stderr
    assert read_csvs(csv) == read_csvs(clean)
    again = run_cli("--quiet", *OPTIONS, "--out", str(tmp_path / "report.html"), str(inputs))
    assert again.returncode == 1 and "starting afresh" not in again.stderr   # the run before it had finished


def test_a_report_that_cannot_be_written_is_named_and_the_csvs_stay(inputs, clean, tmp_path):
    import resource

    def small_files_only() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # an oversized write fails with EFBIG, as a full disk would
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    report = tmp_path / "report.html"
    full = subprocess.run(
        [sys.executable, "-m", "fer_batch", "analyze", "--quiet", *OPTIONS, "--out", str(report), str(inputs)],
        env=ENV, capture_output=True, text=True, preexec_fn=small_files_only)
    assert full.returncode == 2 and "Traceback" not in full.stderr
    assert full.stderr.startswith(f"fer-batch: cannot write {report} (File too large)")
    assert "--resume" in full.stderr and not report.exists()
    assert read_csvs(tmp_path / "report_csv") == read_csvs(clean)   # every CSV was written before the report

    resumed = run_cli("--quiet", *OPTIONS, "--resume", "--out", str(report), str(inputs))
    assert resumed.returncode == 1 and report.stat().st_size > 1_000_000


def test_same_inputs_and_options_give_identical_csv_bytes(inputs, clean, tmp_path):
    again = run_cli("--quiet", *OPTIONS, "--out", str(tmp_path / "again.html"), str(inputs))
    assert again.returncode == 1, again.stderr
    first, second = read_csvs(clean), read_csvs(tmp_path / "again_csv")
    assert len(first) == 9 and first == second  # 4 per-frame CSVs (2 videos, 2 image folders) and 5 tables


def test_a_later_run_into_the_folder_leaves_its_own_csvs_only(inputs, clean, tmp_path):
    csv = tmp_path / "report_csv"
    shutil.copytree(clean, csv)   # a first run over the whole folder
    (csv / "my notes.csv").write_text("mine\n")
    done = run_cli("--quiet", *OPTIONS, "--out", str(tmp_path / "report.html"), str(inputs / "c_face.jpg"))
    assert done.returncode == 0, done.stderr
    tables = set(CSV_HEADERS) | {"videos_by_second.csv"}
    per_frame = [p for p in csv.rglob("*.csv") if p.name not in tables and p.name != "my notes.csv"]
    assert [p.name for p in per_frame] == ["images.csv"]
    assert set(pd.read_csv(per_frame[0])["source"]) == {str(inputs / "c_face.jpg")}
    assert (csv / "my notes.csv").read_text() == "mine\n"   # not written by fer-batch: kept
    assert not [d for d in csv.rglob("*") if d.is_dir() and not any(d.iterdir())]   # sub/ went with its CSV
    listed = (csv / ".fer-batch" / "outputs.txt").read_text().splitlines()
    assert listed == [per_frame[0].relative_to(csv.resolve()).as_posix()]

    from fer_batch.outputs import IncrementalCsvWriter

    interrupted = tmp_path / "interrupted"
    shutil.copytree(clean, interrupted)
    (interrupted / "my notes.csv").write_text("mine\n")
    IncrementalCsvWriter(interrupted, fresh=True)   # a new run's start: nothing of the earlier run is left to mix in
    assert sorted(p.name for p in interrupted.iterdir()) == [".fer-batch", "my notes.csv"]


def test_photos_between_videos_are_written_once_when_the_batch_leaves_their_folder(tmp_path):
    from fer_batch.api import Collector
    from fer_batch.outputs import IncrementalCsvWriter

    folder = tmp_path / "in"
    (folder / "later").mkdir(parents=True)
    for name in ("a.jpg", "b.mp4", "c.jpg", "d.mp4", "e.jpg", "f.mp4", "later/g.mp4"):
        (folder / name).write_bytes(b"x")
    items = walk_inputs([folder])[0]
    assert [item.path.name for item in items] == ["a.jpg", "b.mp4", "c.jpg", "d.mp4", "e.jpg", "f.mp4", "g.mp4"]
    writer = IncrementalCsvWriter(tmp_path / "csv", fresh=True)
    collector = Collector([], sink=writer.add)
    images_csv = tmp_path / "csv" / ROOT_FOLDER / folder.relative_to("/") / "images.csv"
    for item in items[:-1]:
        collector.add(fake_outcome(item))
        assert not images_csv.exists()   # the folder's videos do not rewrite its photos' CSV each time
    assert (tmp_path / "csv" / ROOT_FOLDER / folder.relative_to("/") / "f.mp4.csv").is_file()
    collector.add(fake_outcome(items[-1]))
    assert sorted(set(pd.read_csv(images_csv)["source"])) == [str(folder / n) for n in ("a.jpg", "c.jpg", "e.jpg")]
    written = images_csv.stat().st_ino
    writer.finish(collector.analysis())
    assert images_csv.stat().st_ino == written   # not written again at the end


# -- the journal on its own ----------------------------------------------------------------------------
def fake_outcome(item, error: InputError | None = None) -> InputOutcome:
    rng = np.random.default_rng(len(item.source))
    two = Faces(rng.random((2, 4)).astype(np.float32) * 100, rng.random(2).astype(np.float32),
                probs=rng.dirichlet(np.ones(7), 2).astype(np.float32),
                track_ids=np.array([1, 2]) if item.kind == "video" else None)
    none = Faces.empty()
    none.probs = np.zeros((0, 7), np.float32)
    results = [FrameResult(item.source, 0, 0.0 if item.kind == "video" else None, two),
               FrameResult(item.source, 3, 0.3 if item.kind == "video" else None, none)]
    thumbs = {1: (0.9, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))}
    return InputOutcome(item, results, 1.25 if item.kind == "video" else None, error, ["1 undecodable frame(s)"], thumbs)


@pytest.fixture
def two_inputs(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"a")
    (tmp_path / "in" / "b.mp4").write_bytes(b"b")
    return walk_inputs([tmp_path / "in"])[0]


def test_journal_replays_outcomes_exactly(tmp_path, two_inputs):
    from fer_batch.aggregate import frames_dataframe

    options = AnalyzeOptions()
    with RunState(tmp_path / "csv") as state:
        assert state.start(options, two_inputs, resume=True) == {}  # nothing to resume: a fresh start
        originals = [fake_outcome(two_inputs[0]), fake_outcome(two_inputs[1], InputError(two_inputs[1].source, "detect", "x"))]
        for outcome in originals:
            state.record(outcome)
    with RunState(tmp_path / "csv") as state:
        replayed = state.start(options, two_inputs, resume=True)
    assert list(replayed) == [two_inputs[0].source]   # the failed input is tried again, its cause perhaps fixed
    for original in originals[:1]:
        back = replayed[original.item.source]
        pd.testing.assert_frame_equal(frames_dataframe(back.results), frames_dataframe(original.results))
        assert (back.duration_s, back.error, back.problems) == (original.duration_s, original.error, original.problems)
        assert back.thumbnails.keys() == original.thumbnails.keys()
        assert np.array_equal(back.thumbnails[1][1], original.thumbnails[1][1])


def test_torn_last_line_changed_files_and_fresh_runs(tmp_path, two_inputs):
    options = AnalyzeOptions()
    with RunState(tmp_path / "csv") as state:
        state.start(options, two_inputs, resume=False)
        state.record(fake_outcome(two_inputs[0]))
        state.record(fake_outcome(two_inputs[1]))
    journal = tmp_path / "csv" / ".fer-batch" / "journal.jsonl"
    journal.write_bytes(journal.read_bytes()[:-30])  # killed while appending the second line
    with RunState(tmp_path / "csv") as state:
        assert list(state.start(options, two_inputs, resume=True)) == [two_inputs[0].source]
        state.record(fake_outcome(two_inputs[1]))  # lands on a line of its own
    with RunState(tmp_path / "csv") as state:
        assert len(state.start(options, two_inputs, resume=True)) == 2
    os.utime(two_inputs[0].path, ns=(0, 10**18))
    with RunState(tmp_path / "csv") as state:
        assert list(state.start(options, two_inputs, resume=True)) == [two_inputs[1].source]
    with RunState(tmp_path / "csv") as state:
        with pytest.raises(ResumeRefused, match="fps"):
            state.start(AnalyzeOptions(fps=1.0), two_inputs, resume=True)
        assert state.start(AnalyzeOptions(fps=1.0), two_inputs, resume=False) == {}  # without resume: afresh
        assert state.finished_sources() == []
        assert not list((tmp_path / "csv" / ".fer-batch" / "parts").iterdir())


def test_resume_knows_the_model_by_its_content_not_its_path_or_time(tmp_path, two_inputs):
    from fer_batch.classify import SHIPPED_MODEL

    first = tmp_path / "a" / "model.keras"
    first.parent.mkdir()
    shutil.copy(SHIPPED_MODEL, first)
    with RunState(tmp_path / "csv") as state:
        state.start(AnalyzeOptions(model=str(first)), two_inputs, resume=False)
        state.record(fake_outcome(two_inputs[0]))
    moved = tmp_path / "b.keras"
    shutil.copy(first, moved)
    os.utime(moved, ns=(0, 10**18))
    with RunState(tmp_path / "csv") as state:   # the same content elsewhere, touched: resumed
        assert list(state.start(AnalyzeOptions(model=str(moved)), two_inputs, resume=True)) == [two_inputs[0].source]
    moved.write_bytes(moved.read_bytes()[:-1] + b"x")
    with RunState(tmp_path / "csv") as state:   # other content: refused
        with pytest.raises(ResumeRefused, match="model_sha256"):
            state.start(AnalyzeOptions(model=str(moved)), two_inputs, resume=True)


def test_resume_compares_the_detector_settings_a_run_used_not_how_they_were_spelled(tmp_path, two_inputs):
    from fer_batch.detect import DEFAULT_DETECTOR

    csv = tmp_path / "csv"
    with RunState(csv) as state:
        state.start(AnalyzeOptions(), two_inputs, resume=False)    # detector, threshold and image size by default
        state.record(fake_outcome(two_inputs[0]))
    spelled = AnalyzeOptions(detector=DEFAULT_DETECTOR, min_score=0.5, max_side=640)
    with RunState(csv) as state:
        assert list(state.start(spelled, two_inputs, resume=True)) == [two_inputs[0].source]
    journal = csv / ".fer-batch" / "journal.jsonl"
    header, *rest = journal.read_text().splitlines()
    older = json.loads(header)
    older["options"].update(detector=None, min_score=None, max_side=None)   # as journals recorded them before
    journal.write_text("\n".join([json.dumps(older), *rest]) + "\n")
    with RunState(csv) as state:
        assert list(state.start(AnalyzeOptions(), two_inputs, resume=True)) == [two_inputs[0].source]
    with RunState(csv) as state:
        with pytest.raises(ResumeRefused) as refused:
            state.start(AnalyzeOptions(detector="blazeface"), two_inputs, resume=True)
    assert f"(detector {DEFAULT_DETECTOR} -> blazeface)" in str(refused.value)
    assert "the earlier run there" in str(refused.value)


def test_a_ctrl_c_while_an_input_is_journalled_waits_until_its_part_and_line_are_written():
    # Ctrl-C handled as in a terminal (a background job, such as CI's, starts with it ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_waits_for_the_journal()
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_waits_for_the_journal() -> None:
    written = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
            written.append("part")
            written.append("line")
    assert written == ["part", "line"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    with interrupts_deferred():  # no Ctrl-C: nothing is raised
        written.append("next")
    assert written[-1] == "next"
    with pytest.raises(KeyboardInterrupt):  # outside the block a Ctrl-C interrupts at once, as before
        signal.raise_signal(signal.SIGINT)
        written.append("never")
    assert "never" not in written


def test_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom fer_batch.state import RunState\n"
                               "RunState(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)",
                               str(tmp_path)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=f"process {holder.pid}"):
            RunState(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    state = RunState(tmp_path)
    state.acquire()  # the kernel dropped the dead process's lock
    state.release()


def test_stale_temporaries_are_removed_when_the_lock_is_taken(tmp_path):
    (tmp_path / "sub").mkdir()
    stale = [tmp_path / ".summary.csv.a1B2c3_d.tmp", tmp_path / "sub" / ".clip.mp4.annotated.mp4.part.mp4"]
    kept = [tmp_path / "summary.csv", tmp_path / ".notes.tmp", tmp_path / "sub" / "x.tmp"]
    for path in stale + kept:
        path.write_text("x")
    with RunState(tmp_path):
        pass
    assert [p.exists() for p in stale] == [False, False]
    assert all(p.exists() for p in kept)
