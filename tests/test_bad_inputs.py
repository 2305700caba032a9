"""A batch that meets bad input: every failure is one row in errors.csv and in the report, the run goes on,
and the good inputs come out exactly as in a run without the bad ones. Everything here is generated."""
from __future__ import annotations

import html
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
BROKEN_FRAMES = range(12, 20)  # the stretch of broken_middle.avi that is overwritten
VFR_STEPS = [(10, 1536), (10, 512)]  # (frames, ticks at 10240 ticks/s): 0.15 s apart, then 0.05 s apart


# -- generators (also used by test_resume.py and test_hostile_names.py) ------------------------------
def face_photo(astronaut_bgr: np.ndarray, side: int = 200, flip: bool = False) -> np.ndarray:
    face = cv2.resize(astronaut_bgr[0:300, 100:400], (side, side), interpolation=cv2.INTER_AREA)
    return cv2.flip(face, 1) if flip else face


def face_frames(astronaut_bgr: np.ndarray, n: int, size: tuple[int, int] = (200, 150), side: int = 110):
    """n frames with the face moving left to right on a light background."""
    width, height = size
    face = face_photo(astronaut_bgr, side)
    for i in range(n):
        frame = np.full((height, width, 3), 225, np.uint8)
        x = int((width - side) * i / max(1, n - 1))
        frame[20:20 + side, x:x + side] = face
        yield frame


def write_video(path: Path, frames, fps: float = 10.0, fourcc: str = "mp4v") -> Path:
    frames = list(frames)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def jpeg_starts(data: bytes) -> list[int]:
    """Offsets of the JPEG start-of-image markers in an MJPG AVI (one per frame)."""
    return [m.start() for m in re.finditer(b"\xff\xd8\xff", data)]


def overwrite_frames(data: bytes, frames, filler) -> bytes:
    """An MJPG AVI with the JPEG data of `frames` replaced by `filler(n)` bytes; the container stays intact."""
    out = bytearray(data)
    starts = jpeg_starts(data)
    for k in frames:
        start, end = starts[k], (starts[k + 1] if k + 1 < len(starts) else len(data))
        length = end - start - 16  # leave the next chunk's header alone
        out[start:start + length] = filler(length)
    return bytes(out)


def restamp_mp4(data: bytes, steps: list[tuple[int, int]]) -> bytes:
    """An MP4 with its one-entry time-to-sample table replaced by `steps`: variable frame rate.

    OpenCV's muxer puts moov after mdat, so growing the boxes on the way to stts moves no sample offsets.
    """
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}

    def chain_to_stts(start: int, end: int, chain: list[int]) -> list[int] | None:
        while start < end:
            size, kind = struct.unpack(">I4s", data[start:start + 8])
            if kind == b"stts":
                return chain + [start]
            if kind in containers:
                found = chain_to_stts(start + 8, start + size, chain + [start])
                if found:
                    return found
            start += size
        return None

    chain = chain_to_stts(0, len(data), [])
    stts = chain[-1]
    old_size = struct.unpack(">I", data[stts:stts + 4])[0]
    body = b"stts" + struct.pack(">II", 0, len(steps)) + b"".join(struct.pack(">II", n, d) for n, d in steps)
    new_box = struct.pack(">I", len(body) + 4) + body
    out = bytearray(data[:stts] + new_box + data[stts + old_size:])
    for box in chain[:-1]:
        struct.pack_into(">I", out, box, struct.unpack(">I", out[box:box + 4])[0] + len(new_box) - old_size)
    return bytes(out)


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height pixels."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def save_pil(path: Path, bgr: np.ndarray, mode: str, **kwargs) -> Path:
    rgb = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if mode == "I;16":
        gray = np.asarray(rgb.convert("L"), np.uint16) * 257
        image = Image.fromarray(gray)
    elif mode == "RGBA":
        alpha = np.zeros(bgr.shape[:2], np.uint8)
        alpha[10:-10, 10:-10] = 255  # a transparent frame around the face
        image = Image.fromarray(np.dstack([np.asarray(rgb), alpha]), "RGBA")
    elif mode == "P":
        image = rgb.convert("P", palette=Image.ADAPTIVE, colors=256)
    else:
        image = rgb.convert(mode)
    image.save(path, **kwargs)
    return path


def exif_rotated(path: Path, bgr: np.ndarray) -> Path:
    """The photo stored turned a quarter to the left, with EXIF orientation 6 (turn right to display)."""
    stored = Image.fromarray(cv2.cvtColor(cv2.rotate(bgr, cv2.ROTATE_90_COUNTERCLOCKWISE), cv2.COLOR_BGR2RGB))
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(path, exif=exif, quality=95)
    return path


def run_cli(*args: str, cwd: Path | None = None, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(prefix or []), sys.executable, "-m", "fer_batch", "analyze", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True)


def read_csvs(csv_dir: Path) -> dict[str, bytes]:
    """Every CSV under csv_dir (not the state folder) by relative path."""
    return {str(p.relative_to(csv_dir)): p.read_bytes() for p in sorted(csv_dir.rglob("*.csv"))
            if ".fer-batch" not in p.parts}


def problem_rows(report: Path) -> list[tuple[str, str, str]]:
    """(input, stage, reason) rows of the report's failed-inputs table, as text."""
    page = report.read_text(encoding="utf-8")
    section = page[page.index('<section id="problems">'):]
    section = section[:section.index("<h2>Skipped files")]
    cells = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", section, flags=re.S)
    return [tuple(html.unescape(c) for c in row) for row in cells]


# -- the corpus -------------------------------------------------------------------------------------------
GOOD_IMAGES = ["face.jpg", "with space.jpg", "café ñ.png", "new\nline.jpg", "gray16.png", "gray.jpg",
               "rgba.png", "palette.png", "cmyk.jpg", "exif_rotated.jpg"]
GOOD_VIDEOS = ["clip.mp4", "intact.avi", "vfr.mp4"]
BAD = {  # name -> stage
    "empty.jpg": "read", "empty.mp4": "read", "text.mp4": "decode", "random.jpg": "decode",
    "truncated.mp4": "decode", "truncated.jpg": "decode", "no_frames.avi": "decode", "broken_middle.avi": "decode",
    "claims_100000x100000.png": "decode", "claims_30000x30000.png": "decode", "claims_12000x9000.png": "decode", "gone.mp4": "read",
}
SKIPPED = ["loop", "notes.txt"]


def without_read_override() -> list[str] | None:
    """A command prefix under which file modes stop reads: none for a normal user; for root, setpriv dropping
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (root reads any file otherwise); None when that is impossible."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


PREFIX = without_read_override()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, astronaut_bgr) -> Path:
    root = tmp_path_factory.mktemp("bad") / "corpus"
    root.mkdir()
    face = face_photo(astronaut_bgr)
    cv2.imwrite(str(root / "face.jpg"), face)
    cv2.imwrite(str(root / "with space.jpg"), face_photo(astronaut_bgr, 180))
    cv2.imwrite(str(root / "café ñ.png"), face_photo(astronaut_bgr, flip=True))
    cv2.imwrite(str(root / "new\nline.jpg"), face_photo(astronaut_bgr, 220, flip=True))
    save_pil(root / "gray16.png", face, "I;16")
    save_pil(root / "gray.jpg", face, "L")
    save_pil(root / "rgba.png", face, "RGBA")
    save_pil(root / "palette.png", face, "P")
    save_pil(root / "cmyk.jpg", face, "CMYK")
    exif_rotated(root / "exif_rotated.jpg", face)

    write_video(root / "clip.mp4", face_frames(astronaut_bgr, 16))
    write_video(root / "intact.avi", face_frames(astronaut_bgr, 30), fourcc="MJPG")
    intact = (root / "intact.avi").read_bytes()
    assert len(jpeg_starts(intact)) == 30
    (root / "broken_middle.avi").write_bytes(overwrite_frames(intact, BROKEN_FRAMES, os.urandom))
    (root / "no_frames.avi").write_bytes(overwrite_frames(intact, range(30), lambda n: bytes(n)))
    steady = write_video(root.parent / "steady.mp4", face_frames(astronaut_bgr, sum(n for n, _ in VFR_STEPS)))
    (root / "vfr.mp4").write_bytes(restamp_mp4(steady.read_bytes(), VFR_STEPS))

    (root / "empty.jpg").write_bytes(b"")
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is a shopping list, not a video\n")
    (root / "random.jpg").write_bytes(np.random.default_rng(1).bytes(4000))
    clip = (root / "clip.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(clip[:len(clip) // 2])
    jpeg = (root / "face.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    png_claiming(root / "claims_100000x100000.png", 100_000, 100_000)
    png_claiming(root / "claims_30000x30000.png", 30_000, 30_000)
    png_claiming(root / "claims_12000x9000.png", 12_000, 9_000)
    if PREFIX is not None:
        shutil.copy(root / "face.jpg", root / "locked.jpg")
        os.chmod(root / "locked.jpg", 0)
        BAD["locked.jpg"] = "read"

    (root / "notes.txt").write_text("not media")
    os.symlink(root / "missing.mp4", root / "gone.mp4")
    os.symlink(root, root / "loop")
    return root


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory) -> dict:
    """The whole corpus through the CLI, and the good inputs alone (same folder, so the same sources)."""
    out = tmp_path_factory.mktemp("bad-out")
    everything = run_cli("--quiet", "--fps", "5", "--out", str(out / "all.html"), "--csv-dir", str(out / "all"),
                         str(corpus), prefix=PREFIX)
    good = [str(corpus / name) for name in sorted(GOOD_IMAGES + GOOD_VIDEOS)]
    alone = run_cli("--quiet", "--fps", "5", "--out", str(out / "good.html"), "--csv-dir", str(out / "good"), *good)
    return {"all": everything, "good": alone, "out": out}


def test_exit_status_is_1_when_some_inputs_failed_and_0_when_none_did(runs):
    assert runs["all"].returncode == 1, runs["all"].stderr
    assert runs["good"].returncode == 0, runs["good"].stderr
    assert "Traceback" not in runs["all"].stderr


def test_each_failure_is_one_row_of_errors_csv_with_a_one_sentence_reason(runs, corpus):
    errors = pd.read_csv(runs["out"] / "all" / "errors.csv", keep_default_na=False)
    assert list(errors.columns) == ["input", "stage", "reason"]
    assert sorted(errors["input"]) == sorted(str(corpus / name) for name in BAD)
    stages = dict(zip(errors["input"], errors["stage"]))
    assert {name: stages[str(corpus / name)] for name in BAD} == BAD
    for reason in errors["reason"]:
        assert reason and "\n" not in reason and "\r" not in reason and len(reason) < 200
        assert "Traceback" not in reason
    reasons = {os.path.basename(i): r for i, r in zip(errors["input"], errors["reason"])}
    assert "empty" in reasons["empty.jpg"] and "empty" in reasons["empty.mp4"]
    for name in ("claims_100000x100000.png", "claims_30000x30000.png", "claims_12000x9000.png"):
        assert "megapixel limit" in reasons[name]
    assert "no frame could be decoded" in reasons["no_frames.avi"]
    assert reasons["broken_middle.avi"].startswith("partly decoded")
    assert "FFmpeg: moov atom not found = the MP4/MOV index is missing" in reasons["truncated.mp4"]
    assert "moov atom" not in runs["all"].stderr   # FFmpeg's own line goes to errors.csv, not the --quiet terminal
    assert reasons["gone.mp4"].startswith("broken symbolic link")
    if PREFIX is not None:
        assert reasons["locked.jpg"] == "permission denied"


def test_each_failure_is_listed_in_the_report(runs, corpus):
    listed = problem_rows(runs["out"] / "all.html")
    errors = pd.read_csv(runs["out"] / "all" / "errors.csv", keep_default_na=False)
    assert sorted(listed) == sorted(errors.itertuples(index=False, name=None))


def test_links_loops_and_other_files_are_skipped_not_followed(runs, corpus):
    skipped = pd.read_csv(runs["out"] / "all" / "skipped.csv", keep_default_na=False)
    reasons = {os.path.basename(p): r for p, r in zip(skipped["path"], skipped["reason"])}
    assert sorted(reasons) == sorted(SKIPPED)
    assert "not followed" in reasons["loop"]


def test_good_inputs_come_out_byte_for_byte_as_without_the_bad_ones(runs, corpus):
    with_bad, alone = read_csvs(runs["out"] / "all"), read_csvs(runs["out"] / "good")
    images_csv = next(k for k in alone if k.endswith("images.csv"))
    assert with_bad[images_csv] == alone[images_csv]  # failed photos add no rows
    for name in GOOD_VIDEOS:
        key = next(k for k in alone if k.endswith(name + ".csv"))
        assert with_bad[key] == alone[key], name
    summary_all = pd.read_csv(runs["out"] / "all" / "summary.csv").set_index("source")
    summary_good = pd.read_csv(runs["out"] / "good" / "summary.csv").set_index("source")
    pd.testing.assert_frame_equal(summary_all.loc[summary_good.index], summary_good)


def test_every_good_input_is_analysed_and_has_its_face(runs, corpus):
    summary = pd.read_csv(runs["out"] / "good" / "summary.csv").set_index("source")
    assert sorted(summary.index) == sorted(str(corpus / n) for n in GOOD_IMAGES + GOOD_VIDEOS)
    assert (summary["frames_analysed"] >= 1).all()
    assert (summary.loc[[str(corpus / n) for n in GOOD_IMAGES], "faces"] == 1).all(), summary["faces"]
    assert (summary.loc[[str(corpus / n) for n in GOOD_VIDEOS], "faces"] >= 5).all(), summary["faces"]


def test_odd_names_round_trip_through_the_csv(runs, corpus):
    images = pd.read_csv(next((runs["out"] / "all").rglob("images.csv")), keep_default_na=False)
    for name in ("with space.jpg", "café ñ.png", "new\nline.jpg"):
        assert (images["source"] == str(corpus / name)).sum() == 1


def test_exif_rotated_photo_is_analysed_upright(runs, corpus):
    images = pd.read_csv(next((runs["out"] / "all").rglob("images.csv"))).set_index("source")
    upright, rotated = images.loc[str(corpus / "face.jpg")], images.loc[str(corpus / "exif_rotated.jpg")]
    for column in ("x", "y", "w", "h"):
        assert abs(upright[column] - rotated[column]) <= 6, column
    assert upright["expression"] == rotated["expression"]


def test_frames_before_and_after_a_broken_stretch_are_analysed_as_in_the_intact_video(runs, corpus):
    csv = runs["out"] / "all"
    broken = pd.read_csv(next(csv.rglob("broken_middle.avi.csv")))
    intact = pd.read_csv(next(csv.rglob("intact.avi.csv")))
    assert not set(broken["frame"]) & set(BROKEN_FRAMES)
    common = sorted(set(broken["frame"]) & set(intact["frame"]))
    assert min(common) < BROKEN_FRAMES[0] and max(common) > BROKEN_FRAMES[-1]
    assert [f for f in intact["frame"] if f not in BROKEN_FRAMES] == common
    columns = [c for c in broken.columns if c not in ("source", "track_id")]
    pd.testing.assert_frame_equal(broken[broken["frame"].isin(common)][columns].reset_index(drop=True),
                                  intact[intact["frame"].isin(common)][columns].reset_index(drop=True))
    assert broken["face"].notna().all()


def test_variable_frame_rate_video_keeps_its_own_timestamps(runs, corpus):
    video = pd.read_csv(next((runs["out"] / "all").rglob("vfr.mp4.csv")))
    stamps, t = [], 0.0
    for count, ticks in VFR_STEPS:
        for _ in range(count):
            stamps.append(t)
            t += ticks / 10240
    # at --fps 5: the first frame at or after each multiple of 0.2 s
    expected, next_time = [], 0.0
    for index, stamp in enumerate(stamps):
        if stamp + 1e-6 >= next_time:
            expected.append((index, round(stamp, 6)))
            next_time = (np.floor(stamp / 0.2 + 1e-6) + 1) * 0.2
    assert list(zip(video["frame"], video["time_s"].round(6))) == expected
    assert expected[:4] == [(0, 0.0), (2, 0.3), (3, 0.45), (4, 0.6)]  # uneven steps: really variable


def test_usage_errors_exit_2_with_one_line_and_no_traceback(tmp_path, corpus):
    (tmp_path / "only-notes").mkdir()
    (tmp_path / "only-notes" / "notes.txt").write_text("x")
    (tmp_path / "text.keras").write_text("not a zip archive")
    photo = str(corpus / "face.jpg")
    out = ["--out", str(tmp_path / "r.html")]
    cases = {
        "bad option": run_cli("--fps", "0", *out, photo),
        "nothing to analyse": run_cli(*out, str(tmp_path / "only-notes")),
        "missing detector file": subprocess.run(
            [sys.executable, "-m", "fer_batch", "analyze", "--detector", "haar", *out, photo],
            env=dict(ENV, FER_BATCH_HAAR_CASCADE=str(tmp_path / "nope.xml")), capture_output=True, text=True),
        "missing model": run_cli("--detector", "haar", "--model", str(tmp_path / "nope.keras"), *out, photo),
        "model not an archive": run_cli("--detector", "haar", "--model", str(tmp_path / "text.keras"), *out, photo),
        "model a photo": run_cli("--detector", "haar", "--model", photo, *out, photo),
        "report path a folder": run_cli("--out", str(tmp_path / "only-notes"), photo),
        "report path an input": run_cli("--out", photo, "--csv-dir", str(tmp_path / "c"), photo),
        "report path an input, dry run": run_cli("--out", photo, "--dry-run", photo),
    }
    for case, done in cases.items():
        assert done.returncode == 2, (case, done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.startswith("fer-batch:")]
        assert len(lines) == 1 and "Traceback" not in done.stderr, (case, done.stderr)
    assert "nope.xml" in cases["missing detector file"].stderr
    assert "nope.keras" in cases["missing model"].stderr and "does not exist" in cases["missing model"].stderr
    assert "text.keras is not a Keras model file" in cases["model not an archive"].stderr
    assert "face.jpg is not a Keras model file" in cases["model a photo"].stderr
    assert "is a folder" in cases["report path a folder"].stderr and not (tmp_path / "only-notes_csv").exists()
    assert not (tmp_path / "r.html").exists()
    for case in ("report path an input", "report path an input, dry run"):
        assert "face.jpg is an existing file that is not a web page (.html)" in cases[case].stderr
    assert (corpus / "face.jpg").read_bytes()[:3] == b"\xff\xd8\xff" and not (tmp_path / "c").exists()


def test_a_run_repeated_into_outputs_inside_its_input_folder_walks_what_the_first_walked(tmp_path, astronaut_bgr):
    """The second run found the first one's report and CSVs in the folder and listed them in skipped.csv."""
    folder = tmp_path / "study"
    folder.mkdir()
    cv2.imwrite(str(folder / "face.jpg"), face_photo(astronaut_bgr))
    for run in range(2):
        done = run_cli("--quiet", "--out", str(folder / "out" / "report.html"), str(folder))
        assert done.returncode == 0, done.stderr
        csvs = read_csvs(folder / "out" / "report_csv")
        assert csvs["skipped.csv"] == b"path,reason\n", (run, csvs["skipped.csv"])
        assert csvs["summary.csv"].count(b"\n") == 2   # the header and face.jpg
    shutil.copytree(folder / "out", folder / "copy")   # a copy is no output of this run: walked like any folder
    done = run_cli("--quiet", "--out", str(folder / "out" / "report.html"), str(folder))
    assert b"copy/report.html" in read_csvs(folder / "out" / "report_csv")["skipped.csv"]


def test_a_real_decompression_bomb_is_refused_without_decoding_it(tmp_path):
    """A valid 20000x10000 PNG (600 MB decoded, under 1 MB on disk): refused with little memory used."""
    width, height = 20_000, 10_000
    packer = zlib.compressobj(1)
    row = b"\0" * (1 + 3 * width)
    body = io.BytesIO()
    for _ in range(height):
        body.write(packer.compress(row))
    body.write(packer.flush())
    path = png_claiming(tmp_path / "bomb.png", width, height)
    data = path.read_bytes()
    idat_start = data.index(b"IDAT") - 4
    idat_end = data.index(b"IEND") - 4
    payload = body.getvalue()
    chunk = struct.pack(">I", len(payload)) + b"IDAT" + payload + struct.pack(">I", zlib.crc32(b"IDAT" + payload))
    path.write_bytes(data[:idat_start] + chunk + data[idat_end:])
    probe = ("import sys\n"
             "from pathlib import Path\n"
             "from fer_batch.sources import InputFailure, read_image\n"
             "try:\n"
             "    read_image(Path(sys.argv[1])); print('decoded')\n"
             "except InputFailure as exc:\n"
             "    print(exc.stage, exc.reason)\n"
             # VmHWM belongs to this process's own memory map; ru_maxrss would carry over the forking
             # pytest process's peak (with TensorFlow loaded by earlier tests) across fork and exec
             "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
             "print(int(hwm.split()[1]) // 1024)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], env=ENV, capture_output=True, text=True)
    verdict, peak_mb = done.stdout.strip().splitlines()
    assert verdict == "decode image is over the 100-megapixel limit", done.stderr
    assert int(peak_mb) < 400  # decoding it would take 600 MB


def test_unreadable_files_are_read_errors(tmp_path, corpus):
    """Mode 000 stops reads for a normal user; as root the probe runs without the capabilities that override it."""
    if PREFIX is None:
        pytest.skip("running as root without setpriv: file modes cannot stop reading")
    shutil.copy(corpus / "face.jpg", tmp_path / "locked.jpg")
    shutil.copy(corpus / "clip.mp4", tmp_path / "locked.mp4")
    os.chmod(tmp_path / "locked.jpg", 0)
    os.chmod(tmp_path / "locked.mp4", 0)
    probe = ("import sys\n"
             "from fer_batch.sources import InputFailure, frames_of, walk_inputs\n"
             "for item in walk_inputs([sys.argv[1]])[0]:\n"
             "    try:\n"
             "        list(frames_of(item)); print('read', item.source)\n"
             "    except InputFailure as exc:\n"
             "        print(exc.stage, exc.reason)\n")
    done = subprocess.run([*PREFIX, sys.executable, "-c", probe, str(tmp_path)], env=ENV, capture_output=True, text=True)
    assert done.stdout.splitlines() == ["read permission denied", "read permission denied"], done.stderr
