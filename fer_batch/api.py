"""The Python API: `analyze(paths, **options)` runs the pipeline and returns an `Analysis`."""
from __future__ import annotations

import math
import numbers
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fer_batch.aggregate import (ERROR_COLUMNS, SKIPPED_COLUMNS, frames_dataframe, normalise_frame_types,
                                 summarise, summary_dataframe, track_summary, videos_by_second)
from fer_batch.options import AnalyzeOptions
from fer_batch.pipeline import InputOutcome
from fer_batch.provenance import run_settings
from fer_batch.sources import InputFile, check_annotate_dir, walk_inputs
from fer_batch.types import InputError, SkippedFile

REPORT_SUFFIXES = (".html", ".htm")   # an existing file of another kind is never replaced by a report


@dataclass
class Analysis:
    """The results of one batch: per-frame rows, one summary row per input, errors and skipped files
    (and, derived from the rows, one summary row per person tracked in a video: `tracks`)."""

    frames: pd.DataFrame
    summary: pd.DataFrame
    errors: pd.DataFrame
    skipped: pd.DataFrame
    thumbnails: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)      # source -> video/image
    groups: dict[str, str] = field(default_factory=dict)     # source -> per-frame CSV group
    settings: dict[str, object] = field(default_factory=dict)  # provenance.run_settings of the run that made it

    @property
    def ok(self) -> bool:
        """No input failed and every path given exists (as the command line's exit status 0)."""
        from fer_batch.sources import NOT_FOUND

        missing = len(self.skipped) > 0 and bool((self.skipped["reason"] == NOT_FOUND).any())
        return self.errors.empty and not missing

    @property
    def tracks(self) -> pd.DataFrame:
        return track_summary(self.frames)

    @property
    def by_second(self) -> pd.DataFrame:
        """All videos second by second (aggregate.videos_by_second)."""
        return videos_by_second(self.frames, [source for source, kind in self.kinds.items() if kind == "video"])

    def write_csvs(self, csv_dir: str | os.PathLike) -> None:
        from fer_batch.outputs import write_all_csvs

        write_all_csvs(self, csv_dir)

    def write_report(self, path: str | os.PathLike, smooth_s: float = 0.0, title: str = "fer-batch report") -> None:
        from fer_batch.report import write_report

        write_report(path, self.frames, self.summary, self.errors, self.skipped, self.thumbnails,
                     smooth_s=smooth_s, title=title, settings=self.settings, by_second=self.by_second)


class Collector:
    """Gathers finished inputs into an Analysis, and hands each one to an optional sink as it finishes."""

    def __init__(self, skipped: Sequence[SkippedFile], sink: Callable[[InputOutcome, pd.DataFrame], None] | None = None):
        self.frame_parts: list[pd.DataFrame] = []
        self.summary_rows: list[dict] = []
        self.errors: list[InputError] = []
        self.skipped = list(skipped)
        self.thumbnails: dict[tuple[str, int], np.ndarray] = {}
        self.kinds: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self.sink = sink

    def add(self, outcome: InputOutcome) -> None:
        item = outcome.item
        frames = frames_dataframe(outcome.results)
        self.kinds[item.source] = item.kind
        self.groups[item.source] = item.group
        if outcome.error is not None:
            self.add_error(outcome.error)
        elif outcome.problems:
            self.add_error(InputError(item.source, "decode", f"partly decoded: {'; '.join(outcome.problems[:3])}"
                                      + (f" (and {len(outcome.problems) - 3} more)" if len(outcome.problems) > 3 else "")))
        if outcome.results or outcome.error is None:
            self.frame_parts.append(frames)
            self.summary_rows.append(summarise(item.source, item.kind, frames, outcome.duration_s))
            for key, (_, image) in outcome.thumbnails.items():
                self.thumbnails[(item.source, key)] = image
        if self.sink is not None:
            self.sink(outcome, frames)

    def add_error(self, error: InputError) -> None:
        reason = " ".join(error.reason.split())  # one line in errors.csv and the report, whatever a decoder said
        self.errors.append(InputError(error.input, error.stage, reason))

    def analysis(self) -> Analysis:
        frames = (normalise_frame_types(pd.concat(self.frame_parts, ignore_index=True))
                  if self.frame_parts else frames_dataframe([]))
        errors = pd.DataFrame([(e.input, e.stage, e.reason) for e in self.errors], columns=list(ERROR_COLUMNS))
        skipped = pd.DataFrame([(s.path, s.reason) for s in self.skipped], columns=list(SKIPPED_COLUMNS))
        return Analysis(frames, summary_dataframe(self.summary_rows), errors, skipped, self.thumbnails,
                        self.kinds, self.groups)


def build_stages(options: AnalyzeOptions):
    """The detector and classifier for `options` (raises DetectorUnavailable / ModelLoadError before any work)."""
    from fer_batch.classify import load_model
    from fer_batch.detect import DEFAULT_DETECTOR, create_detector

    kwargs = {"min_face": options.min_face, "device": options.device}
    if options.min_score is not None:
        kwargs["min_score"] = options.min_score
    if options.max_side is not None:
        kwargs["max_side"] = options.max_side
    detector = create_detector(options.detector or DEFAULT_DETECTOR, **kwargs)
    classifier = load_model(options.model, batch_size=options.batch_size, device=options.device,
                            flip_tta=options.flip_tta, zoom_tta=options.zoom_tta)
    return detector, classifier


def run_batch(inputs: Sequence[InputFile], collector: Collector, options: AnalyzeOptions, stages=None,
              progress: Callable[[str, int], None] | None = None, finished: Mapping[str, InputOutcome] | None = None,
              on_finished: Callable[[InputOutcome], None] | None = None) -> Analysis:
    """Analyse `inputs` into `collector`, in input order.

    `finished` holds outcomes of an earlier, interrupted run (by source): those inputs are not analysed again but
    replayed in their place. `on_finished` is called with each newly analysed input after the collector took it.
    """
    from fer_batch.pipeline import Pipeline

    finished = finished or {}
    report = progress or (lambda kind, n: None)
    waiting = deque(inputs)

    def replay_until(source: str | None) -> None:
        while waiting and waiting[0].source != source:
            item = waiting.popleft()
            if item.source in finished:
                collector.add(finished[item.source])
                report("files", 1)

    def done(outcome: InputOutcome) -> None:
        replay_until(outcome.item.source)
        waiting.popleft()
        collector.add(outcome)
        if on_finished is not None:
            on_finished(outcome)
        report("files", 1)

    todo = [item for item in inputs if item.source not in finished]
    replay_until(todo[0].source if todo else None)   # what comes before the first input to analyse, at once
    if todo and options.backend == "ray":
        from fer_batch.ray_backend import RayRunner

        (stages or RayRunner(options)).run(todo, done, on_frames=lambda n: report("frames", n))
    elif todo:
        detector, classifier = stages or build_stages(options)
        pipeline = Pipeline(detector, classifier, options, on_frames=lambda n: report("frames", n))
        pipeline.run(todo, done)
    replay_until(None)
    return collector.analysis()


def analyze_into(inputs: Sequence[InputFile], skipped: Sequence[SkippedFile], options: AnalyzeOptions,
                 csv_dir: str | os.PathLike, out: str | os.PathLike | None = None, smooth: float = 0.0,
                 resume: bool = False, progress: Callable[[str, int], None] | None = None,
                 on_start: Callable[[int, int, bool], None] | None = None) -> Analysis:
    """Analyse `inputs` under `csv_dir`'s lock and journal: each input's CSV as soon as it is finished, summary,
    errors and the report (when `out` is given) at the end.

    Before any work, and before the journal or an earlier run's outputs are touched, this raises state.RunLocked
    (another run writes there), state.ResumeRefused (options changed since the interrupted run), DetectorUnavailable
    or ModelLoadError, and with the Ray backend BackendUnavailable (a cluster that cannot be joined or used). Then
    `on_start(finished, discarded, resumable)` is told how many inputs an interrupted run had finished that this run
    resumes from, and, starting afresh, how many of an interrupted run's finished inputs are dropped and whether
    --resume would have kept them (the same options).
    """
    from fer_batch.outputs import IncrementalCsvWriter
    from fer_batch.state import RunState

    with RunState(csv_dir) as state:
        resumed = state.resumable(options, inputs) if resume else None
        finished = resumed or {}
        todo = [item for item in inputs if item.source not in finished]
        stages = start_stages(options, todo) if todo else None
        try:
            state.begin(options, inputs, resuming=resumed is not None)   # after the refusals, which leave the journal be
            if on_start is not None:
                on_start(len(finished), state.discarded, state.discarded_resumable)
            writer = IncrementalCsvWriter(csv_dir, fresh=not resume)
            collector = Collector(skipped, sink=writer.add)
            analysis = run_batch(inputs, collector, options, stages, progress, finished=finished,
                                 on_finished=state.record)
        finally:
            if options.backend == "ray" and stages is not None:
                stages.close()
        analysis.settings = run_settings(options)
        writer.finish(analysis)
        if out is not None:
            analysis.write_report(Path(out), smooth_s=smooth)
        state.mark_complete()
    return analysis


def start_stages(options: AnalyzeOptions, todo: Sequence[InputFile]):
    """What analyses `todo`, made before any work so that what cannot be used raises first: the local detector and
    classifier (build_stages), or with the Ray backend a started ray_backend.RayRunner, which the caller closes."""
    if options.backend != "ray":
        return build_stages(options)
    from fer_batch.ray_backend import RayRunner

    runner = RayRunner(options)
    runner.start(todo)
    return runner


def check_smooth(smooth: float, name: str = "smooth") -> None:
    """ValueError unless `smooth` is a number of seconds, 0 or more."""
    if not (isinstance(smooth, numbers.Real) and not isinstance(smooth, bool) and math.isfinite(smooth) and smooth >= 0):
        raise ValueError(f"{name} must be 0 or more seconds, not {smooth!r}")


def default_csv_dir(out: str | os.PathLike | None) -> Path | None:
    """Where the CSVs go when only a report path is given: `<report stem>_csv` beside it."""
    return None if out is None else Path(out).with_name(Path(out).stem + "_csv")


def check_report_replaces_nothing(out: str | os.PathLike, name: str = "out") -> None:
    """ValueError for a report path that is a folder, or an existing file that is not a web page (a photo or video
    given to analyse, say), which the report would replace. Reads the file system only."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{name} {out} is a folder; give the report's file name, e.g. {out / 'report.html'}")
    if (out.exists() or out.is_symlink()) and out.suffix.lower() not in REPORT_SUFFIXES and not _is_web_page(out):
        raise ValueError(f"{name} {out} is an existing file that is not a web page (.html), which the report would "
                         f"replace; give a new file name, e.g. {out.with_suffix('.html')}")


def _is_web_page(path: Path) -> bool:
    """Whether the file starts as a web page does (an earlier report written under a name without .html)."""
    try:
        with open(path, "rb") as page:
            return page.read(15).lower() == b"<!doctype html>"
    except OSError:
        return False


def check_report_path(out: str | os.PathLike, name: str = "out") -> None:
    """ValueError, before any work, for a report path that could not be written at the end (its folder is made),
    or that check_report_replaces_nothing refuses."""
    check_report_replaces_nothing(out, name)
    check_output_file(out, name)


def check_output_file(out: str | os.PathLike, name: str) -> None:
    """ValueError, before any work, for a file path that could not be written at the end: a folder, or in a folder
    that cannot be made or written (the folder is made)."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{name} {out} is a folder; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{name} {out}: cannot create its folder {exc.filename or out.parent} "
                         f"({exc.strerror or exc})") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {out}: the folder {out.parent} is not writable")


def analyze(paths: str | os.PathLike | Iterable[str | os.PathLike], *, csv_dir: str | os.PathLike | None = None,
            out: str | os.PathLike | None = None, smooth: float = 0.0, resume: bool = False, **options) -> Analysis:
    """Analyse videos and photos (files or folders, walked recursively).

    Options are those of `AnalyzeOptions` (fps, max_frames, start_s, end_s, detector, min_face, min_score, model, batch_size,
    device, ..., and backend="ray" with address, segment_s, workers, cpus_per_worker to run on a Ray cluster). With `csv_dir` the CSVs are written (each input's as soon as it is finished) under a lock, with
    a journal that `resume=True` continues from after a crash (see `analyze_into`); with `out` the HTML report too.
    Bad arguments raise ValueError before any work.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    try:
        paths = list(paths)
    except TypeError:
        raise ValueError(f"paths must be a file or folder, or a list of them, not {type(paths).__name__}") from None
    wrong = [path for path in paths if not isinstance(path, (str, os.PathLike))]
    if wrong:
        raise ValueError(f"paths must be files or folders (str or os.PathLike), not {wrong[0]!r}")
    opts = AnalyzeOptions.from_kwargs(**options)
    opts.validate()
    if len(paths) == 0:
        raise ValueError("analyze needs at least one file or folder")
    if resume and csv_dir is None:
        raise ValueError("resume needs csv_dir: the journal of the interrupted run lives there")
    check_smooth(smooth)
    if csv_dir is not None and Path(csv_dir).exists() and not Path(csv_dir).is_dir():
        raise ValueError(f"csv_dir {os.fspath(csv_dir)} is a file; give a folder for the CSVs")
    check_annotate_dir(paths, opts.annotate_dir)
    if out is not None:
        check_report_path(out)   # before the walk, which leaves the report path out
    inputs, skipped = walk_inputs(paths, include_hidden=opts.include_hidden, annotate_dir=opts.annotate_dir,
                                  outputs=[path for path in (csv_dir, out) if path is not None])
    if csv_dir is not None:
        return analyze_into(inputs, skipped, opts, csv_dir, out, smooth, resume)
    analysis = run_batch(inputs, Collector(skipped), opts)
    analysis.settings = run_settings(opts)
    if out is not None:
        analysis.write_report(Path(out), smooth_s=smooth)
    return analysis
