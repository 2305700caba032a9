"""The `fer-batch` command. Parses options into AnalyzeOptions and calls the API; no logic of its own."""
from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from fer_batch.detect import DETECTORS
from fer_batch.options import FAST_FLAGS

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report a Ctrl-C

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Facial-expression analytics for folders of videos and photos.")

DetectorName = Enum("DetectorName", {name: name for name in DETECTORS}, type=str)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"


class Backend(str, Enum):
    local = "local"
    ray = "ray"


def _fail(message: str) -> None:
    typer.echo(f"fer-batch: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _check_report_path(out: Path) -> None:
    """Refuse, before any work, a report path that could not be written at the end."""
    from fer_batch.api import check_report_path

    try:
        check_report_path(out, "--out")
    except ValueError as exc:
        _fail(str(exc))


def _resume_hint(csv_dir: Path) -> str:
    from fer_batch.state import interrupted_run_finished

    if not interrupted_run_finished(csv_dir):
        return ""
    return f"; the finished inputs are kept in {csv_dir}: run the same command with --resume to go on from there"


def parse_video_time(text: str) -> float:
    """Seconds from "90", "90.5", "1:30" or "1:02:03.5"; ValueError for anything else."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(text)
    *whole, seconds = parts
    value = float(seconds)
    if not (math.isfinite(value) and value >= 0) or (whole and value >= 60):
        raise ValueError(text)
    for k, part in enumerate(reversed(whole), start=1):
        if not part.isdigit() or (k == 1 and len(whole) == 2 and int(part) >= 60):
            raise ValueError(text)
        value += int(part) * 60 ** k
    return value


def _video_time(option: str, text: str) -> float:
    try:
        return parse_video_time(text)
    except ValueError:
        _fail(f"{option} {text!r} is not a time: give seconds (90 or 90.5) or [h:]mm:ss (1:30, 1:02:03.5)")


def run_analysis(paths: list[Path], out: Optional[Path], csv_dir: Optional[Path], smooth: float, options,
                 resume: bool = False, dry_run: bool = False) -> int:
    """Analyse (or with `dry_run`, plan) and say what happened; the exit status. A Ctrl-C while the analysis runs
    says how to resume; one before it (loading modules, walking folders) exits 130 too, not with click's Abort."""
    try:
        return _run_analysis(paths, out, csv_dir, smooth, options, resume, dry_run)
    except KeyboardInterrupt:
        typer.echo("fer-batch: stopped (Ctrl-C)", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _run_analysis(paths: list[Path], out: Optional[Path], csv_dir: Optional[Path], smooth: float, options,
                  resume: bool, dry_run: bool) -> int:
    from fer_batch.api import analyze_into, check_report_replaces_nothing, check_smooth, default_csv_dir
    from fer_batch.classify import ModelLoadError
    from fer_batch.console import ProgressBars, summary_screen
    from fer_batch.detect.base import DetectorUnavailable
    from fer_batch.options import BackendUnavailable
    from fer_batch.sources import NOT_FOUND, check_annotate_dir, walk_inputs
    from fer_batch.state import ResumeRefused, RunLocked, interrupted_run_finished

    try:
        options.validate()
        check_smooth(smooth, "--smooth")
    except ValueError as exc:
        _fail(str(exc))
    try:
        check_annotate_dir(paths, options.annotate_dir)
    except ValueError as exc:
        _fail(str(exc))
    if out is not None:
        try:   # before the walk, which leaves the report path out
            check_report_replaces_nothing(out, "--out")
        except ValueError as exc:
            _fail(str(exc))
    outputs = [path for path in (csv_dir if csv_dir is not None else default_csv_dir(out), out) if path is not None]
    inputs, skipped = walk_inputs(paths, include_hidden=options.include_hidden, annotate_dir=options.annotate_dir,
                                  outputs=outputs)
    missing = [entry.path for entry in skipped if entry.reason == NOT_FOUND]
    for path in missing:
        typer.echo(f"fer-batch: no such file or folder: {path}", err=True)
    if not inputs:
        _fail("no videos or images found in " + ", ".join(str(p) for p in paths)
              + (f" ({len(skipped) - len(missing)} other file(s) skipped)" if len(skipped) > len(missing) else ""))
    if dry_run:
        from fer_batch.dry_run import format_plan, plan_inputs
        from fer_batch.export import printable

        planned = plan_inputs(inputs, options)
        typer.echo(printable(format_plan(planned, skipped)))   # stdout may refuse a name's bytes that are not UTF-8
        return EXIT_SOME_FAILED if missing or any(row.problem for row in planned) else EXIT_OK
    if out is not None:
        _check_report_path(out)
    if csv_dir is None and out is not None:
        csv_dir = default_csv_dir(out)
    if csv_dir is None:
        _fail("nothing to write: give --out or --csv-dir")

    bars = ProgressBars(len(inputs), options.quiet)

    def announce(finished: int, discarded: int, resumable: bool) -> None:
        if resume and not options.quiet:
            typer.echo(f"resuming in {csv_dir}: {finished} of {len(inputs)} input(s) already finished", err=True)
        if discarded:
            typer.echo(f"fer-batch: starting afresh in {csv_dir}: the interrupted run there had finished {discarded} "
                       "input(s), which this run analyses again"
                       + (" (--resume would have kept them)" if resumable else " (with other options)"), err=True)
        bars.open()

    try:
        with bars:
            analysis = analyze_into(inputs, skipped, options, csv_dir, out, smooth, resume, bars.update, announce)
    except (RunLocked, ResumeRefused, DetectorUnavailable, ModelLoadError, BackendUnavailable, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {exc.filename or 'into ' + str(csv_dir)} ({exc.strerror or exc})" + _resume_hint(csv_dir))
    except KeyboardInterrupt:
        finished = interrupted_run_finished(csv_dir)
        typer.echo(f"fer-batch: interrupted; {finished} of {len(inputs)} input(s) finished" + _resume_hint(csv_dir),
                   err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if not options.quiet:
        typer.echo(summary_screen(analysis, out, csv_dir), err=True)
    return EXIT_OK if analysis.ok and not missing else EXIT_SOME_FAILED


@app.command()
def analyze(
    paths: list[Path] = typer.Argument(..., help="Video and image files, and folders (walked recursively)."),
    out: Optional[Path] = typer.Option(Path("report.html"), "--out", "-o", help="The interactive HTML report."),
    csv_dir: Optional[Path] = typer.Option(None, "--csv-dir", help="Folder for the CSVs [default: <report name>_csv beside the report]."),
    fps: float = typer.Option(5.0, "--fps", help="Frames per second of video time to analyse."),
    every_frame: bool = typer.Option(False, "--every-frame", help="Analyse every frame (overrides --fps)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Analyse at most this many frames per video (previews)."),
    start: Optional[str] = typer.Option(None, "--start", metavar="TIME", help="Analyse each video from this time on: seconds (90, 90.5) or [h:]mm:ss (1:30) [default: its start]."),
    end: Optional[str] = typer.Option(None, "--end", metavar="TIME", help="... and up to this time, same forms [default: its end]."),
    detector: DetectorName = typer.Option(None, "--detector", help="Face detector [default: the measured best offline one]."),
    min_face: int = typer.Option(20, "--min-face", help="Ignore faces whose box is smaller than this many pixels."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Detection-score threshold [default: the detector's]."),
    max_side: Optional[int] = typer.Option(None, "--max-side", help="Longest side of the image the detector sees [default: the detector's]."),
    model: Optional[Path] = typer.Option(None, "--model", help="A retrained .keras model [default: the shipped one]."),
    detect_every: Optional[int] = typer.Option(None, "--detect-every", help="Run the face detector on every k-th "
                                               "analysed video frame; boxes in between are interpolated (their "
                                               "det_score is empty) [default: 1]."),
    fast: bool = typer.Option(False, "--fast", help=f"Shorthand for {FAST_FLAGS}: many times the frames/s on video, "
                              "lower recall on small faces (README, Benchmarks)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Face crops classified per batch."),
    device: Device = typer.Option(Device.auto, "--device", help="Where TensorFlow runs the classifier."),
    flip_tta: Optional[bool] = typer.Option(None, "--flip-tta/--no-flip-tta", help="Average each face's probabilities "
                                            "with its mirror image's [default: on]."),
    zoom_tta: bool = typer.Option(False, "--zoom-tta/--no-zoom-tta", help="Also average in the centre of each "
                                  "face crop scaled back up (twice the classifier's work; README, Expression model)."),
    align: Optional[bool] = typer.Option(None, "--align/--no-align", help="Turn each face crop so the eyes are level, "
                                         "from the detector's landmarks (mtcnn, blazeface; haar gives none) [default: on]."),
    smooth: float = typer.Option(0.0, "--smooth", help="Smooth timelines in the report over this many seconds (display only)."),
    annotate: Optional[Path] = typer.Option(None, "--annotate", help="Write copies of the inputs with boxes and labels here."),
    include_hidden: bool = typer.Option(False, "--include-hidden", help="Also analyse hidden files and folders."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in the same CSV folder: "
                                "inputs it finished (same path, size and time) are not analysed again."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be analysed (kind, duration, about how "
                                 "many frames) and skipped, from the files and video headers; load no model, write nothing."),
    backend: Backend = typer.Option(Backend.local, "--backend", help="Where the work runs: this process, or a Ray "
                                    "cluster (pip install 'fer-batch[ray]'); the outputs are the same."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray: the cluster to join (e.g. HEAD:6379) "
                                          "[default: a local Ray instance, started and stopped by the run]."),
    segment_seconds: float = typer.Option(300.0, "--segment-seconds", help="Ray: analyse videos longer than "
                                          "this in segments of this many seconds, in parallel."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Ray: analysing workers, each loading the "
                                          "model once [default: one per GPU of the cluster, else one per CPU]."),
    cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", help="Ray: CPUs each worker asks for and "
                                          "uses for TensorFlow when it has no GPU."),
) -> None:
    """Walk, detect, classify, track and aggregate: per-frame CSVs, summary.csv, tracks.csv, videos_by_second.csv, errors.csv, run.json and an HTML report."""
    from fer_batch.options import FAST_SETTINGS, AnalyzeOptions

    if fast:
        if detector is not None or detect_every is not None or flip_tta is not None or align is not None:
            _fail(f"--fast means {FAST_FLAGS}; give either --fast or those options")
        detector, detect_every, flip_tta, align = (DetectorName(FAST_SETTINGS["detector"]), FAST_SETTINGS["detect_every"],
                                                   FAST_SETTINGS["flip_tta"], FAST_SETTINGS["align"])
    detect_every = 1 if detect_every is None else detect_every
    flip_tta = True if flip_tta is None else flip_tta
    align = True if align is None else align
    options = AnalyzeOptions(
        fps=None if every_frame else fps, max_frames=max_frames,
        start_s=_video_time("--start", start) if start is not None else 0.0,
        end_s=_video_time("--end", end) if end is not None else None, detector=detector.value if detector else None,
        min_face=min_face, min_score=min_score, max_side=max_side, model=str(model) if model else None,
        detect_every=detect_every, batch_size=batch_size, device=device.value, flip_tta=flip_tta,
        zoom_tta=zoom_tta, align=align, annotate_dir=str(annotate) if annotate else None, include_hidden=include_hidden, quiet=quiet,
        backend=backend.value, address=address, segment_s=segment_seconds, workers=workers,
        cpus_per_worker=cpus_per_worker)
    raise typer.Exit(run_analysis(paths, out, csv_dir, smooth, options, resume=resume, dry_run=dry_run))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-report.html"), "--out", "-o", help="Where to write the demo report."),
    folder: Path = typer.Option(Path("fer-batch-demo"), "--inputs", help="Where to write the demo inputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
) -> None:
    """Build a short demo clip and photo from a face photo that scikit-image ships, and analyse them."""
    from fer_batch.demo import write_demo_inputs
    from fer_batch.options import AnalyzeOptions

    try:
        write_demo_inputs(folder)
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write the demo inputs into {folder}: {exc.strerror or exc}")
    if not quiet:
        typer.echo(f"demo inputs written to {folder}/", err=True)
    raise typer.Exit(run_analysis([folder], out, None, 0.0, AnalyzeOptions(fps=5.0, quiet=quiet)))


@app.command()
def bench(
    video: Optional[Path] = typer.Argument(None, help="The video to measure on [default: a generated 20 s clip]."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
    reports: Path = typer.Option(Path("reports"), "--reports", help="Where the Markdown summary is written."),
    name: str = typer.Option("bench", "--name", help="File name of the summary, without .md."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Analyse at most this many frames every-frame."),
    peer: bool = typer.Option(True, "--peer/--no-peer", help="Also time the `fer` package when it is installed."),
    peer_python: Optional[Path] = typer.Option(
        None, "--peer-python",
        help="The peer's Python, made by scripts/install_peer.sh "
             "(default: $FER_BATCH_PEER_PYTHON, else .peer-venv/bin/python)."),
) -> None:
    """Measure decode, end-to-end and classifier throughput and peak memory (and the peer's, when installed)."""
    from fer_batch.bench import check_bench, markdown, run_bench

    try:
        check_bench(video, json_path, reports, name, max_frames)
    except ValueError as exc:
        _fail(str(exc))
    result = run_bench(video, json_path, reports, max_frames=max_frames, with_peer=peer, peer_python=peer_python, name=name)
    typer.echo(markdown(result))


def main() -> None:
    app(prog_name="fer-batch")


if __name__ == "__main__":
    main()
