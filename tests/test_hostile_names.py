"""Hostile file names through the real CLI: markup in names stays text in the report (checked in headless
Chromium), spreadsheet formulas in names are neutralised in the CSVs, and output paths derived from input paths
never leave their output folders. Also: a model with code in it is refused with one line."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from fer_batch.export import PARENT_FOLDER
from test_bad_inputs import ENV, face_frames, face_photo, run_cli, write_video

IMG_NAME = "<img src=x onerror=alert(1)>.jpg"
SCRIPT_NAME = '"><script>alert(1)</script>.png'  # the "/" makes it a folder and a file
BROKEN_NAME = "<svg onload=alert(3)>.mp4"
FORMULA_NAMES = ["=cmd.jpg", "+sum.png", "@at.jpg"]
WAIT_FOR_PLOTS = """
new Promise(function (resolve, reject) {
  var started = Date.now();
  (function poll() {
    var figs = Array.prototype.slice.call(document.querySelectorAll(%s));
    if (figs.every(function (f) { return f.dataset.state === "rendered"; })) { resolve(figs.length); }
    else if (Date.now() - started > 60000) { reject(new Error("plots never rendered")); }
    else { setTimeout(poll, 50); }
  })();
})
"""


def snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture(scope="module")
def run(tmp_path_factory, astronaut_bgr) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    names = root / "names"
    (names / '"><script>alert(1)<').mkdir(parents=True)
    (names / "sub").mkdir()
    (root / "elsewhere").mkdir()
    cv2.imwrite(str(names / IMG_NAME), face_photo(astronaut_bgr))
    cv2.imwrite(str(names / SCRIPT_NAME), face_photo(astronaut_bgr, 180, flip=True))
    (names / BROKEN_NAME).write_text("<script>alert(4)</script> is not a video")
    for n, name in enumerate(FORMULA_NAMES):
        cv2.imwrite(str(names / name), face_photo(astronaut_bgr, 160 + 20 * n))
    cv2.imwrite(str(names / "x.jpg"), face_photo(astronaut_bgr, 150))
    write_video(names / "clip.mp4", face_frames(astronaut_bgr, 6))
    write_video(root / "elsewhere" / "clip.mp4", face_frames(astronaut_bgr, 6))
    cv2.imwrite(str(root / "elsewhere" / "y.jpg"), face_photo(astronaut_bgr, 170))
    before = snapshot(root)
    args = [IMG_NAME, SCRIPT_NAME, BROKEN_NAME, *FORMULA_NAMES,
            "sub/../x.jpg", "sub/../clip.mp4", "../elsewhere/y.jpg", str(root / "names" / ".." / "elsewhere" / "clip.mp4")]
    done = run_cli("--quiet", "--detector", "haar", "--fps", "5", "--out", "../out/report.html", "--csv-dir", "../out/csv",
                   "--annotate", "../out/annotated", "--", *args, cwd=names)
    return {"root": root, "out": root / "out", "done": done, "created": snapshot(root) - before}


def test_the_run_finishes_with_one_failure(run):
    assert run["done"].returncode == 1, run["done"].stderr
    errors = list(csv.reader(io.StringIO((run["out"] / "csv" / "errors.csv").read_text(encoding="utf-8"))))
    assert [row[0] for row in errors[1:]] == [BROKEN_NAME]


def test_outputs_stay_inside_their_folders(run):
    out = run["out"]
    assert run["created"] and all(p == out or out in p.parents for p in run["created"]), \
        sorted(str(p) for p in run["created"] if out not in p.parents and p != out)
    annotated = {str(p.relative_to(out / "annotated")) for p in (out / "annotated").rglob("*") if p.is_file()}
    up = PARENT_FOLDER   # what a '..' in an input path becomes
    assert f"sub/{up}/x.jpg.jpg" in annotated and f"{up}/elsewhere/y.jpg.jpg" in annotated
    assert f"sub/{up}/clip.mp4.annotated.mp4" in annotated
    per_video = {str(p.relative_to(out / "csv")) for p in (out / "csv").rglob("*.mp4.csv")}
    assert f"sub/{up}/clip.mp4.csv" in per_video and len(per_video) == 2  # and the one given by absolute path, re-rooted


def test_formula_cells_are_neutralised_end_to_end(run):
    csv_dir = run["out"] / "csv"
    for table in (csv_dir / "summary.csv", csv_dir / "images.csv"):
        cells = [row[0] for row in csv.reader(io.StringIO(table.read_text(encoding="utf-8")))][1:]
        for name in FORMULA_NAMES:
            assert "'" + name in cells, (table.name, cells)
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_report_shows_hostile_names_as_text_and_runs_none_of_them(run, browser):
    browser.open(run["out"] / "report.html")
    browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#overview .fig"))
    browser.evaluate("document.querySelectorAll('details.input').forEach(d => { d.open = true; }); 0")
    browser.evaluate(WAIT_FOR_PLOTS % json.dumps("details.input .fig"))
    text = browser.evaluate("document.body.innerText")
    for name in (IMG_NAME, SCRIPT_NAME, BROKEN_NAME):
        assert name in text
    shown = browser.evaluate("Array.from(document.querySelectorAll('summary .name'), s => s.textContent)")
    assert IMG_NAME in shown and SCRIPT_NAME in shown
    assert browser.evaluate("document.querySelectorAll('[onerror], [onload], img[src=x], svg[onload]').length") == 0
    code = "Array.from(document.scripts).filter(s => s.type !== 'application/json')"  # JSON blocks hold names as data
    assert browser.evaluate(code + ".filter(s => s.textContent.includes('alert(')).length") == 0
    browser.settle()
    assert browser.dialogs == []
    assert browser.console_errors == []


def test_model_with_a_lambda_layer_is_refused_in_one_line(tmp_path, astronaut_bgr):
    build = ("import sys, keras\n"
             "inputs = keras.Input((48, 48, 1))\n"
             "x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)\n"
             "x = keras.layers.Flatten()(x)\n"
             "keras.Model(inputs, keras.layers.Dense(7, activation='softmax')(x)).save(sys.argv[1])\n")
    model = tmp_path / "lambda.keras"
    subprocess.run([sys.executable, "-c", build, str(model)], env=ENV, check=True, capture_output=True)
    cv2.imwrite(str(tmp_path / "face.jpg"), face_photo(astronaut_bgr))
    done = run_cli("--detector", "haar", "--model", str(model), "--out", str(tmp_path / "r.html"),
                   str(tmp_path / "face.jpg"))
    assert done.returncode == 2
    ours = [line for line in done.stderr.splitlines() if line.startswith("fer-batch:")]
    assert len(ours) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "Lambda" in ours[0] and str(model) in ours[0]
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r_csv" / "summary.csv").exists()


def test_file_names_that_are_not_utf8_are_analysed_and_written_as_escapes(tmp_path, astronaut_bgr, browser):
    """A Latin-1 name (café as bytes 63 61 66 e9) stopped the whole run when the CSVs were written, losing every
    result; its byte is now written `\\xe9` in the CSVs and the report, and the file is analysed like any other."""
    folder = tmp_path / "latin1"
    folder.mkdir()
    photo, video = os.fsdecode(b"caf\xe9.jpg"), os.fsdecode(b"r\xe9union.mp4")
    assert cv2.imwrite(str(folder / "ok.jpg"), face_photo(astronaut_bgr))
    ok, encoded = cv2.imencode(".jpg", face_photo(astronaut_bgr, 180))
    (folder / photo).write_bytes(encoded.tobytes())
    write_video(tmp_path / "plain.mp4", face_frames(astronaut_bgr, 4))
    (tmp_path / "plain.mp4").rename(folder / video)
    out = tmp_path / "out"
    done = run_cli("--quiet", "--csv-dir", str(out / "csv"), "--out", str(out / "report.html"), str(folder))
    assert done.returncode == 0, done.stderr
    summary = (out / "csv" / "summary.csv").read_bytes().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(summary)))
    assert sorted(row["source"] for row in rows) == sorted(f"{folder}/{name}" for name in
                                                           ("caf\\xe9.jpg", "ok.jpg", "r\\xe9union.mp4"))
    assert all(int(row["faces"]) >= 1 for row in rows)
    per_frame = [p for p in (out / "csv").rglob("*.csv") if p.name.endswith(".mp4.csv") or p.name == "images.csv"]
    assert len(per_frame) == 2 and all(p.name.isascii() for p in per_frame)   # the video's CSV name made portable
    for path in per_frame:
        path.read_bytes().decode("utf-8")
    browser.open(out / "report.html")
    browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#overview .fig"))
    shown = browser.evaluate("Array.from(document.querySelectorAll('summary .name'), s => s.textContent)")
    assert sorted(shown) == sorted(row["source"] for row in rows)
    ticks = browser.evaluate("Array.from(document.querySelectorAll('#overview [data-fig=shares] .ytick text'),"
                             " t => t.textContent)")
    assert any("caf\\xe9.jpg" in tick for tick in ticks), ticks
    browser.settle()
    assert browser.console_errors == []
