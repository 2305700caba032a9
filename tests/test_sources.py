import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_batch.sources import InputFailure, frames_of, read_image, walk_inputs


def write_video(path, n=30, fps=10.0, size=(160, 120)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(n):
        frame = np.full((size[1], size[0], 3), i * 8 % 256, np.uint8)
        writer.write(frame)
    writer.release()
    return path


def test_walk_is_recursive_sorted_and_skips_hidden_and_other_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    write_video(tmp_path / "b" / "clip.mp4")
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / ".hidden" / "x.jpg"), np.zeros((10, 10, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("hi")
    inputs, skipped = walk_inputs([tmp_path])
    assert [i.source for i in inputs] == [os.path.join(str(tmp_path), "a.jpg"), os.path.join(str(tmp_path), "b", "clip.mp4")]
    assert [i.kind for i in inputs] == ["image", "video"]
    assert [s.path for s in skipped] == [os.path.join(str(tmp_path), "notes.txt")]
    inputs, _ = walk_inputs([tmp_path], include_hidden=True)
    assert len(inputs) == 3


def test_walk_skips_folders_of_annotated_copies_below_a_given_folder(tmp_path):
    from fer_batch.sources import ANNOTATED_MARKER

    for folder in ("study/old-annotations", "study/this-run", "study/sub/marked", "study/plain"):
        (tmp_path / folder).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / folder / "a.jpg"), np.zeros((10, 10, 3), np.uint8))
    (tmp_path / "study" / "sub" / "marked" / ANNOTATED_MARKER).write_text("")
    inputs, skipped = walk_inputs([tmp_path / "study"], annotate_dir=tmp_path / "study" / "this-run")
    study = str(tmp_path / "study")
    assert [i.source for i in inputs] == [os.path.join(study, "old-annotations", "a.jpg"), os.path.join(study, "plain", "a.jpg")]
    assert sorted(s.path for s in skipped) == [os.path.join(study, "sub", "marked"), os.path.join(study, "this-run")]
    inputs, _ = walk_inputs([tmp_path / "study" / "sub" / "marked"])   # given by name: walked
    assert len(inputs) == 1


def test_source_is_given_path_joined_with_inner_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "videos" / "day1").mkdir(parents=True)
    write_video(tmp_path / "videos" / "day1" / "c.mp4")
    inputs, _ = walk_inputs(["videos"])
    assert inputs[0].source == os.path.join("videos", "day1", "c.mp4")
    assert inputs[0].group == inputs[0].source


def test_broken_symlink_and_loop_do_not_hang_or_crash(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "missing.mp4", tmp_path / "d" / "broken.mp4")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    inputs, skipped = walk_inputs([tmp_path])
    assert [i.path.name for i in inputs] == ["broken.mp4"]   # an input that fails when read, not a skip
    with pytest.raises(InputFailure, match="broken symbolic link"):
        list(frames_of(inputs[0]))
    reasons = {os.path.basename(s.path): s.reason for s in skipped}
    assert list(reasons) == ["loop"] and "not followed" in reasons["loop"]


def test_every_frame_and_sampling_with_exact_timestamps(tmp_path):
    path = write_video(tmp_path / "v.mp4", n=30, fps=10.0)
    inputs, _ = walk_inputs([path])
    every = list(frames_of(inputs[0]))
    assert [f.index for f in every] == list(range(30))
    np.testing.assert_allclose([f.time_s for f in every], np.arange(30) / 10.0, atol=1e-3)
    sampled = list(frames_of(inputs[0], fps=2.0))
    assert [f.index for f in sampled] == [0, 5, 10, 15, 20, 25]
    np.testing.assert_allclose([f.time_s for f in sampled], [0, 0.5, 1.0, 1.5, 2.0, 2.5], atol=1e-3)
    assert len(list(frames_of(inputs[0], max_frames=4))) == 4
    # a sampled frame is the same picture as in the every-frame decode
    assert np.array_equal(sampled[2].image, every[10].image)


def test_photo_has_index_0_and_no_time(tmp_path):
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((20, 30, 3), np.uint8))
    inputs, _ = walk_inputs([tmp_path / "p.png"])
    frames = list(frames_of(inputs[0]))
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].time_s is None
    assert frames[0].image.shape == (20, 30, 3)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").shape[:2] == (40, 20)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_image_modes_become_bgr_uint8(tmp_path, mode):
    arr = (np.arange(30 * 40) % 256).reshape(30, 40).astype(np.uint8)
    if mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 257)
        path = tmp_path / "x.png"
    elif mode == "CMYK":
        img = Image.new("CMYK", (40, 30), (0, 255, 255, 0))
        path = tmp_path / "x.jpg"
    else:
        img = Image.fromarray(arr).convert(mode)
        path = tmp_path / ("x.png")
    img.save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)


def test_zero_byte_and_garbage_files_fail_clearly(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "junk.mp4").write_bytes(os.urandom(5000))
    inputs, _ = walk_inputs([tmp_path])
    for item in inputs:
        with pytest.raises(InputFailure) as info:
            list(frames_of(item))
        assert info.value.reason and "\n" not in info.value.reason


def _tag_rotation(path, out):
    """A copy of an OpenCV-written MP4 whose track header asks players to turn it 90 degrees, as phones record
    portrait video: the frames are stored sideways and the container's display matrix turns them upright."""
    import struct

    data = bytearray(path.read_bytes())
    tkhd = data.find(b"tkhd")
    assert tkhd > 0 and data[tkhd + 4] == 0                      # a version-0 track header
    matrix = tkhd + 4 + 4 + 20 + 8 + 8                            # after the times, ids, duration, layer and volume
    assert struct.unpack(">9i", data[matrix:matrix + 36]) == (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    out.write_bytes(bytes(data))
    return out


def test_video_recorded_in_portrait_comes_out_upright(tmp_path):
    upright = np.full((120, 200, 3), 40, np.uint8)
    upright[:30] = 230                                            # a bright band along the top of the picture
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # how the phone stores it: 120 wide, 200 tall
    writer = cv2.VideoWriter(str(tmp_path / "stored.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (120, 200))
    for _ in range(5):
        writer.write(stored)
    writer.release()
    tagged = _tag_rotation(tmp_path / "stored.mp4", tmp_path / "portrait.mp4")
    inputs, _ = walk_inputs([tagged])
    frames = list(frames_of(inputs[0]))
    assert len(frames) == 5 and frames[0].image.shape == (120, 200, 3)
    assert np.abs(frames[0].image.astype(int) - upright).mean() < 8  # upright, not sideways


def test_iphone_heic_and_avif_photos_are_read(tmp_path, astronaut_bgr):
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import features

    pillow_heif.register_heif_opener()
    rgb = Image.fromarray(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB))
    rgb.save(tmp_path / "IMG_0001.HEIC", quality=90)
    names = ["IMG_0001.HEIC"]
    if features.check("avif"):
        rgb.save(tmp_path / "photo.avif", quality=90)
        names.append("photo.avif")
    inputs, skipped = walk_inputs([tmp_path])
    assert [i.source.split(os.sep)[-1] for i in inputs] == sorted(names) and not skipped
    for item in inputs:
        (frame,) = frames_of(item)
        assert frame.image.shape == astronaut_bgr.shape
        assert np.abs(frame.image.astype(int) - astronaut_bgr).mean() < 6
    truncated = tmp_path / "cut.heic"
    truncated.write_bytes((tmp_path / "IMG_0001.HEIC").read_bytes()[:3000])     # a copy cut short
    with pytest.raises(InputFailure, match="could not be decoded"):
        read_image(truncated)


def test_heic_without_pillow_heif_fails_with_what_to_install(tmp_path, monkeypatch):
    import sys

    from fer_batch import sources

    (tmp_path / "IMG_0002.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)   # import pillow_heif now raises ImportError
    sources._heif_opener.cache_clear()
    try:
        with pytest.raises(InputFailure) as failure:
            read_image(tmp_path / "IMG_0002.heic")
    finally:
        sources._heif_opener.cache_clear()
    assert failure.value.reason == "HEIC/HEIF photos need the pillow-heif package: pip install 'fer-batch[heif]'"


@pytest.mark.parametrize("fps, start_s, end_s", [
    (2.0, 0.51, None),   # a whole decode samples 0.52 s for the multiple 0.5: inside the stretch
    (2.0, 0.5, 1.5), (5.0, 0.13, 3.0), (3.0, 1.01, 2.02), (30.0, 0.3, 1.0), (None, 0.55, 2.0), (7.0, 0.3, None),
])
def test_a_stretch_gives_exactly_the_whole_decode_s_frames_in_it(tmp_path, fps, start_s, end_s):
    from fer_batch.options import AnalyzeOptions

    item = walk_inputs([write_video(tmp_path / "pal.mp4", n=100, fps=25.0)])[0][0]
    window = AnalyzeOptions(start_s=start_s, end_s=end_s).video_window()
    whole = [(f.index, f.time_s) for f in frames_of(item, fps)
             if start_s <= f.time_s + 1e-6 and (end_s is None or f.time_s + 1e-6 < end_s)]
    assert [(f.index, f.time_s) for f in frames_of(item, fps, None, [], window)] == whole and whole


def test_a_video_cut_short_says_so(tmp_path):
    """Its header still lists every frame; the frames after the cut cannot be read. Without the note the run
    ended early with nothing in errors.csv."""
    path = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(200):
        writer.write(np.full((240, 320, 3), i, np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    problems: list[str] = []
    frames = list(frames_of(walk_inputs([cut])[0][0], 5.0, None, problems))
    assert 10 < len(frames) < 30
    assert any(p.startswith("the video stops after frame ") and p.endswith(
        "of the 200 its header lists: cut short or damaged") for p in problems), problems
    intact: list[str] = []
    assert len(list(frames_of(walk_inputs([path])[0][0], 5.0, None, intact))) == 40 and intact == []


def test_a_file_given_under_several_spellings_is_one_input_and_links_to_it_stay_inputs(tmp_path, monkeypatch):
    (tmp_path / "study" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "study" / "a" / "x.jpg"), np.zeros((10, 10, 3), np.uint8))
    os.symlink("a", tmp_path / "study" / "alias")                          # a second name for the folder
    os.symlink("x.jpg", tmp_path / "study" / "a" / "y.jpg")                # a second name for the file
    monkeypatch.chdir(tmp_path)
    given = ["study/a", "study/a/x.jpg", str(tmp_path / "study" / "a" / "x.jpg"), "study/a/../a/x.jpg",
             "./study/a/x.jpg", "study/alias/x.jpg"]
    inputs, skipped = walk_inputs(given)
    assert [i.source for i in inputs] == ["study/a/x.jpg", "study/a/y.jpg"]   # the first spelling is kept
    assert skipped == []


def test_opencv_reads_files_whose_names_are_not_utf8(tmp_path):
    """cv2.imread and cv2.VideoCapture crashed the process (SIGSEGV) on such a name: one file ended the batch."""
    from fer_batch.opencv_files import imread, opencv_can_take, video_capture, video_writer
    from fer_batch.sources import open_video

    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = (0, 0, 255)
    photo = tmp_path / os.fsdecode(b"caf\xe9.png")
    ok, encoded = cv2.imencode(".png", image)
    photo.write_bytes(encoded.tobytes())
    assert not opencv_can_take(photo) and opencv_can_take(tmp_path / "café.png")
    assert np.array_equal(imread(photo), image)
    assert imread(tmp_path / os.fsdecode(b"missing\xe9.png")) is None

    folder = tmp_path / os.fsdecode(b"vid\xe9os")
    folder.mkdir()
    writer = video_writer(folder / "plain.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for level in range(0, 250, 25):
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    video = (folder / "plain.mp4").rename(tmp_path / os.fsdecode(b"r\xe9union.mp4"))
    folder.rmdir()
    capture = video_capture(video)
    levels = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        levels.append(int(frame.mean()))
    capture.release()
    assert len(levels) == 10 and levels == sorted(levels)
    capture, info = open_video(video)
    capture.release()
    assert (info.frame_count, info.width, info.height) == (10, 64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([photo.name, video.name])   # nothing written here
    assert not list(Path(tempfile.gettempdir()).glob("fer-batch-video-*"))   # nor a link left in the temporary folder


def test_a_photo_named_as_a_video_gets_no_negative_length(tmp_path):
    """OpenCV reports a frame count of -9.2e18 for it: the summary said the video was -3.7e17 s long."""
    from fer_batch.sources import open_video

    ok, encoded = cv2.imencode(".jpg", np.full((60, 80, 3), 128, np.uint8))
    (tmp_path / "photo.mp4").write_bytes(encoded.tobytes())
    capture, info = open_video(tmp_path / "photo.mp4")
    capture.release()
    assert info.frame_count == 0   # not known
    frames = list(frames_of(walk_inputs([tmp_path])[0][0], fps=None))
    assert len(frames) == 1 and frames[0].image.shape == (60, 80, 3)


def test_a_run_s_outputs_below_a_walked_folder_are_left_out_also_through_a_link(tmp_path):
    """The report path may be a link to a file of another name: it was walked (and listed as skipped)."""
    (tmp_path / "study" / "csv").mkdir(parents=True)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "final.html").write_text("<!DOCTYPE html>")
    (tmp_path / "study" / "report.html").symlink_to(tmp_path / "r" / "final.html")
    (tmp_path / "study" / "csv" / "summary.csv").write_text("x")
    Image.new("RGB", (8, 8)).save(tmp_path / "study" / "a.png")
    inputs, skipped = walk_inputs([tmp_path / "study"],
                                  outputs=[tmp_path / "study" / "csv", tmp_path / "study" / "report.html"])
    assert [item.path.name for item in inputs] == ["a.png"] and skipped == []
    inputs, skipped = walk_inputs([tmp_path / "study"])
    assert sorted(Path(entry.path).name for entry in skipped) == ["report.html", "summary.csv"]
