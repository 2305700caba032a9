"""Inputs: walk files and folders, decode video frames (with sampling) and photos (EXIF orientation applied).

Knows nothing about faces.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_batch.native_logs import native_stderr_lines, write_back
from fer_batch.opencv_files import imread, video_capture
from fer_batch.types import Frame, SkippedFile

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".mts"})
HEIF_SUFFIXES = frozenset({".heic", ".heif"})   # iPhone photos; decoded by the optional pillow-heif package
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".avif"}) | HEIF_SUFFIXES
HEIF_MISSING = "HEIC/HEIF photos need the pillow-heif package: pip install 'fer-batch[heif]'"
MAX_IMAGE_PIXELS = 100_000_000
NOT_FOUND = "no such file or folder"   # a path given that does not exist (a typo): the CLI exits 1 for it
# written by `analyze --annotate` into its folder: walking a folder above it does not analyse the copies as inputs
ANNOTATED_MARKER = ".fer-batch-annotated"
ANNOTATED_SKIP_REASON = "folder of annotated copies written by fer-batch analyze --annotate, not analysed again"


class InputFailure(Exception):
    """An input that cannot be read; the message is one sentence for errors.csv."""

    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True)
class InputFile:
    path: Path      # where to read it
    source: str     # as shown in outputs: the path given joined with the path inside a walked folder
    kind: str       # "video" or "image"
    group: str      # the per-frame CSV it belongs to: the video's source, or the folder of an image


def kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _make_input(path: Path, source: str) -> InputFile | SkippedFile:
    kind = kind_of(path)
    if kind is None:
        return SkippedFile(source, "not a video or image file extension")
    group = source if kind == "video" else (os.path.dirname(source) or ".")
    return InputFile(path, source, kind, group)


def check_annotate_dir(paths: Sequence[str | os.PathLike], annotate_dir: str | os.PathLike | None) -> None:
    """ValueError when `--annotate` names a folder given to analyse, or one above it: its marker would make later
    walks skip the originals, and the copies would sit among them."""
    if not annotate_dir:
        return
    target = os.path.realpath(annotate_dir)
    for given in paths:
        real = os.path.realpath(given)
        if os.path.isdir(real) and (real == target or real.startswith(target.rstrip(os.sep) + os.sep)):
            raise ValueError(f"--annotate {os.fspath(annotate_dir)} would write the annotated copies into the folder "
                             f"being analysed ({os.fspath(given)}); give a folder below it "
                             f"({os.path.join(os.fspath(annotate_dir), 'annotated')}) or elsewhere")


def walk_inputs(paths: Sequence[str | os.PathLike], include_hidden: bool = False,
                annotate_dir: str | os.PathLike | None = None,
                outputs: Sequence[str | os.PathLike] = ()) -> tuple[list[InputFile], list[SkippedFile]]:
    """Files and folders (walked recursively, in sorted order) -> media inputs and skipped files.

    Below a given folder, folders of annotated copies (this run's `annotate_dir`, and any holding ANNOTATED_MARKER)
    are skipped, and this run's `outputs` (its CSV folder and report) are left out without a word, so that a run
    repeated into them walks what the first one walked; a folder given by name is walked whatever it holds.
    """
    inputs: list[InputFile] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()
    annotate_real = os.path.realpath(annotate_dir) if annotate_dir else None
    outputs_real = {os.path.realpath(output) for output in outputs}
    output_names = {os.path.basename(output) for output in outputs_real} | {
        os.path.basename(os.path.normpath(output)) for output in outputs}   # a link's name and its target's

    def is_output(path: Path) -> bool:
        return path.name in output_names and os.path.realpath(path) in outputs_real

    def annotated_copies(folder: Path) -> bool:
        return (folder / ANNOTATED_MARKER).is_file() or os.path.realpath(folder) == annotate_real

    @functools.lru_cache(maxsize=4096)
    def real_folder(folder: str) -> str:
        return os.path.realpath(folder)

    def add(item: InputFile | SkippedFile) -> None:
        # one directory entry however it was spelled (a/x.mp4, /abs/a/x.mp4, a/../a/x.mp4); two links to one file
        # stay two entries
        path = Path(item.path)
        key = os.path.join(real_folder(str(path.parent)), path.name)
        if key in seen:
            return
        seen.add(key)
        (inputs if isinstance(item, InputFile) else skipped).append(item)

    for given in paths:
        given_str = os.fspath(given)
        root = Path(given_str)
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if (include_hidden or not _hidden(d))
                                     and not is_output(Path(dirpath) / d))
                for name in [d for d in dirnames if annotated_copies(Path(dirpath) / d)]:
                    dirnames.remove(name)
                    add(SkippedFile(os.path.join(given_str, os.path.relpath(Path(dirpath) / name, root)),
                                    ANNOTATED_SKIP_REASON))
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    if not include_hidden and _hidden(name) or is_output(full):
                        continue
                    source = os.path.join(given_str, os.path.relpath(full, root))
                    add(_make_input(full, source))
                for name in dirnames:
                    full = Path(dirpath) / name
                    if full.is_symlink():
                        add(SkippedFile(os.path.join(given_str, os.path.relpath(full, root)),
                                        "symbolic link to a folder, not followed"))
        elif root.exists() or root.is_symlink():
            add(_make_input(root, given_str))
        else:
            skipped.append(SkippedFile(given_str, NOT_FOUND))
    return inputs, skipped


def read_image(path: Path) -> np.ndarray:
    """A photo as BGR uint8 with its EXIF orientation applied (16-bit, gray, RGBA, paletted and CMYK are converted)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if path.suffix.lower() in HEIF_SUFFIXES:
        _register_heif_opener()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below replaces it
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise InputFailure("decode", f"image is {width}x{height} pixels, "
                                                 f"over the {MAX_IMAGE_PIXELS // 1_000_000}-megapixel limit")
                img = ImageOps.exif_transpose(img)
                array = _pil_to_bgr(img)
    except InputFailure:
        raise
    except PermissionError:
        raise InputFailure("read", "permission denied") from None
    except Image.DecompressionBombError:  # PIL refuses before reading the size; OpenCV must not try either
        raise InputFailure("decode", f"image is over the {MAX_IMAGE_PIXELS // 1_000_000}-megapixel limit") from None
    except UnidentifiedImageError:
        array = None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputFailure("decode", f"image could not be decoded ({_one_line(exc)})") from None
    if array is None:  # formats PIL does not know but OpenCV might
        try:
            array = imread(path, cv2.IMREAD_COLOR)
        except cv2.error:
            array = None
        if array is None:
            raise InputFailure("decode", "not a readable image (unknown format or corrupt data)")
    return array


def _register_heif_opener() -> None:
    """Teach PIL to open HEIC/HEIF files, or fail the input with one sentence on what to install."""
    try:
        _heif_opener()
    except ImportError:
        raise InputFailure("decode", HEIF_MISSING) from None


@functools.cache
def _heif_opener() -> None:
    import pillow_heif   # an ImportError is not cached: installing the package mid-session works

    pillow_heif.register_heif_opener()


def _pil_to_bgr(img) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        gray = (arr / top * 255.0).clip(0, 255).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        gray = (arr / max(arr.max(initial=0), 1e-9) * 255.0).clip(0, 255).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)  # composite on white
        return cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_FFMPEG_PREFIX = re.compile(r"^\[[^\]]* @ (0x)?[0-9a-fA-F]+\]\s*")
_FFMPEG_EXPLAINED = {"moov atom not found": "moov atom not found = the MP4/MOV index is missing, as in a recording "
                                            "stopped before it was saved"}


def _ffmpeg_reason(lines: list[str]) -> str:
    """FFmpeg's own words on why a container did not open, for the error's reason ("" when it said nothing)."""
    said = list(dict.fromkeys(_FFMPEG_PREFIX.sub("", line).strip() for line in lines))
    said = [text for text in said if text]
    if not said:
        return ""
    reason = "; ".join(_FFMPEG_EXPLAINED.get(text, text) for text in said)
    return "; FFmpeg: " + (reason if len(reason) <= 120 else reason[:117] + "...")


def check_readable(path: Path) -> None:
    """Raise InputFailure("read", ...) for a file that is gone, a broken link, unreadable or empty."""
    if not path.exists():
        raise InputFailure("read", "broken symbolic link: the file it points to does not exist" if path.is_symlink()
                           else "file no longer exists")
    if not os.access(path, os.R_OK):
        raise InputFailure("read", "permission denied")
    if path.stat().st_size == 0:
        raise InputFailure("read", "file is empty (0 bytes)")


def image_frames(item: InputFile) -> Iterator[Frame]:
    check_readable(item.path)
    yield Frame(item.source, 0, None, read_image(item.path))


MAX_FRAME_COUNT = 2**40   # more than any real video's frames; a header claiming more is not believed


@dataclass
class VideoInfo:
    fps: float
    frame_count: int
    width: int
    height: int


def open_video(path: Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    check_readable(path)
    try:
        with native_stderr_lines() as ffmpeg_says:
            cap = video_capture(path)
    except OSError as exc:   # the link that opens a file whose name is not UTF-8
        raise InputFailure("read", f"OpenCV cannot open this file by its name, which is not UTF-8, and a link to it "
                                   f"could not be made ({exc.strerror or exc})") from None
    # fd 2 is the process's: other threads' lines (a progress bar) may have landed there too, and go back out
    ffmpeg_lines = [line for line in ffmpeg_says if _FFMPEG_PREFIX.match(line)]
    write_back([line for line in ffmpeg_says if not _FFMPEG_PREFIX.match(line)])
    if not cap.isOpened():
        cap.release()
        raise InputFailure("decode", "not a readable video (OpenCV could not open the container"
                           + _ffmpeg_reason(ffmpeg_lines) + ")")
    write_back(ffmpeg_lines)
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)   # a photo opened as a video gave -9.2e18; 0 is "not known"
    info = VideoInfo(fps if fps and math.isfinite(fps) and fps > 0 else 0.0,
                     int(count) if math.isfinite(count) and 0 < count < MAX_FRAME_COUNT else 0,
                     int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0))
    return cap, info


@dataclass(frozen=True)
class TimeWindow:
    """A stretch of a video, [start_s, end_s) in container time: a frame belongs to it when
    start_s <= time_s + 1e-6 < end_s (the sampler's own tolerance, so consecutive windows share no frame).

    With `seek`, decoding jumps to a little before `start_s`; the frame indices that then follow are OpenCV's,
    computed from container time, which equal a full decode's counted indices when the frame rate is constant
    (WindowEdges lets a caller check that). Without `seek`, the video is read from its first frame, the
    frames before `start_s` grabbed but not decoded into images: slower, and exactly a full decode.
    """

    start_s: float
    end_s: float | None = None   # None = to the end of the video
    seek: bool = True


@dataclass(frozen=True)
class EdgeFrame:
    """The first frame a decoder read at or after a window edge: where it is, and what it looked like."""

    index: int
    time_s: float
    failures_before: int        # undecodable frames right before it
    digest: str | None          # of the decoded image; None when it could not be decoded


@dataclass
class WindowEdges:
    """What a windowed decode saw at its edges. A window's `start` must equal the previous window's `end`
    for its frames to be those a decode of the whole video gives."""

    start: EdgeFrame | None = None
    end: EdgeFrame | None = None


NO_FRAME_DECODED = "the video opened but no frame could be decoded"
_TOLERANCE_S = 1e-6


def video_frames(item: InputFile, fps: float | None = None, max_frames: int | None = None,
                 problems: list[str] | None = None, window: TimeWindow | None = None,
                 edges: WindowEdges | None = None) -> Iterator[Frame]:
    """Sampled frames of a video: with `fps`, the first frame at or after each multiple of 1/fps seconds; else every frame.

    Skipped frames are grabbed, not decoded into images. Timestamps come from the container (exact for
    variable frame rate). A broken stretch is stepped over: decoding goes on after it, and a note goes to `problems`.
    With `window`, only the frames of that stretch (the same frames, indices and times a whole-video decode
    gives there, when its start is a multiple of 1/fps); `edges` is told what was seen at its edges.
    """
    cap, info = open_video(item.path)
    try:
        yield from _sample(cap, info, item.source, fps, max_frames, problems, window, edges)
    finally:
        cap.release()


def _seek_before(cap: cv2.VideoCapture, info: VideoInfo, start_s: float) -> int:
    """Jump to a second before `start_s` (seeking is not frame-exact everywhere); the index of the next frame."""
    if info.fps <= 0:
        return 0
    first = int(start_s * info.fps) - int(math.ceil(info.fps)) - 1
    if first > 0 and cap.set(cv2.CAP_PROP_POS_FRAMES, first):
        return first
    return 0


def _image_digest(image: np.ndarray | None) -> str | None:
    if image is None:
        return None
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()


def _sample(cap: cv2.VideoCapture, info: VideoInfo, source: str, fps: float | None, max_frames: int | None,
            problems: list[str] | None, window: TimeWindow | None = None,
            edges: WindowEdges | None = None) -> Iterator[Frame]:
    step = 1.0 / fps if fps else 0.0
    start_s = window.start_s if window is not None else 0.0
    end_s = window.end_s if window is not None else None
    seeking = window is not None and window.seek and start_s > 0
    # a whole decode samples the first frame at or after each multiple of `step`; read from the video's start, the
    # frames before the window move that on exactly as there (a seeked segment starts on a multiple)
    next_time = math.floor(start_s / step + 1e-6) * step if step and seeking else 0.0
    index = (_seek_before(cap, info, start_s) if seeking else 0) - 1
    emitted = 0
    failures_in_a_row = 0
    max_failures = 25
    last_time = -1.0
    last_read = -1
    while max_frames is None or emitted < max_frames:
        if not cap.grab():
            index += 1
            failures_in_a_row += 1
            if info.frame_count and index < info.frame_count - 1 and failures_in_a_row < max_failures:
                continue
            if (problems is not None and last_time + _TOLERANCE_S >= start_s  # it stopped in this window
                    and info.frame_count - (last_read + 1) > max(5, 0.02 * info.frame_count)):
                problems.append(f"the video stops after frame {last_read} ({max(last_time, 0.0):.2f} s) of the "
                                f"{info.frame_count} its header lists: cut short or damaged")
            break
        index += 1
        last_read = index
        failures_before, failures_in_a_row = failures_in_a_row, 0
        time_s = _frame_time(cap, index, info.fps, last_time)
        last_time = time_s
        if end_s is not None and time_s + _TOLERANCE_S >= end_s:
            if edges is not None:
                ok, image = cap.retrieve()
                edges.end = EdgeFrame(index, round(time_s, 6), failures_before, _image_digest(image if ok else None))
            break
        if time_s + _TOLERANCE_S < start_s:  # before the window: its notes and frames belong to an earlier one
            if step and time_s + _TOLERANCE_S >= next_time:
                next_time = next_sample_time(time_s, step)   # the frame a whole decode samples
            continue
        if failures_before and problems is not None and index < info.frame_count:
            problems.append(f"{failures_before} undecodable frame(s) before frame {index}")
        if step and time_s + _TOLERANCE_S < next_time:
            continue
        ok, image = cap.retrieve()
        if edges is not None and edges.start is None:  # the window's first frame (segments start on the grid)
            edges.start = EdgeFrame(index, round(time_s, 6), failures_before, _image_digest(image if ok else None))
        if not ok or image is None:
            if problems is not None:
                problems.append(f"frame {index} could not be decoded")
            continue
        if step:
            next_time = next_sample_time(time_s, step)
        emitted += 1
        yield Frame(source, index, round(time_s, 6), image)
    if emitted == 0 and window is None and (max_frames is None or max_frames > 0):
        raise InputFailure("decode", NO_FRAME_DECODED)


def next_sample_time(time_s: float, step: float) -> float:
    """After sampling a frame at `time_s`: the multiple of `step` the next sampled frame must be at or after."""
    return (math.floor(time_s / step + 1e-6) + 1) * step


def header_sample_count(info: VideoInfo, fps: float | None, start_s: float = 0.0, end_s: float | None = None,
                        max_frames: int | None = None) -> int | None:
    """How many frames `_sample` takes from a video whose frames are where its header says (frame_count frames at
    a constant rate, all decodable); None when the header gives no rate or count."""
    if not info.fps or not info.frame_count:
        return None
    step = 1.0 / fps if fps else 0.0
    next_time, count = 0.0, 0
    for index in range(info.frame_count):
        time_s = index / info.fps
        if (end_s is not None and time_s + _TOLERANCE_S >= end_s) or (max_frames and count >= max_frames):
            break
        sampled = not step or time_s + _TOLERANCE_S >= next_time
        if sampled and step:
            next_time = next_sample_time(time_s, step)
        count += sampled and time_s + _TOLERANCE_S >= start_s
    return count


def _frame_time(cap: cv2.VideoCapture, index: int, fps: float, last_time: float) -> float:
    msec = cap.get(cv2.CAP_PROP_POS_MSEC)
    if msec is not None and math.isfinite(msec) and (msec > 0 or index == 0) and msec / 1000.0 > last_time:
        return msec / 1000.0
    if fps > 0:
        return max(index / fps, last_time + 1e-6)
    return max(last_time + 1e-6, 0.0)


def frames_of(item: InputFile, fps: float | None = None, max_frames: int | None = None,
              problems: list[str] | None = None, window: TimeWindow | None = None,
              edges: WindowEdges | None = None) -> Iterator[Frame]:
    if item.kind == "video":
        return video_frames(item, fps, max_frames, problems, window, edges)
    return image_frames(item)
