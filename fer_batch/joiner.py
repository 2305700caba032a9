"""The driver's side of a distributed run: units' results, arriving in any order, put back together into one
InputOutcome per input and handed on in input order, as the local pipeline hands them on.

A segment that seeked is taken only when the first frame it read at its start is the frame the segment before
it read past its end (index, time, undecodable frames before it, image digest): then its frames are those of a
whole-video decode. Otherwise (variable frame rate, a damaged stretch) it is analysed again, decoded from the
video's start, and so are that video's later segments. Faces are tracked here, over each video's frames in order.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from fer_batch.pipeline import InputOutcome, ResultAssembler
from fer_batch.sources import NO_FRAME_DECODED, InputFile, WindowEdges
from fer_batch.types import InputError
from fer_batch.units import UnitResult, WorkUnit


class _Parts:
    """One input's parts (one, or one per segment) as they arrive, and how many leading ones are accepted."""

    def __init__(self, count: int):
        self.outcomes: list[InputOutcome | None] = [None] * count
        self.edges: list[WindowEdges | None] = [None] * count
        self.units: list[WorkUnit | None] = [None] * count
        self.accepted = 0

    @property
    def complete(self) -> bool:
        return self.accepted == len(self.outcomes)


class Joiner:
    def __init__(self, inputs: Sequence[InputFile], units: Sequence[WorkUnit],
                 on_done: Callable[[InputOutcome], None], on_frames: Callable[[int], None] | None = None,
                 fps: float | None = None):
        self._inputs = list(inputs)
        self._position = {item.source: i for i, item in enumerate(self._inputs)}
        self._parts: dict[str, _Parts] = {}
        for unit in units:
            for item in unit.items:
                self._parts.setdefault(item.source, _Parts(unit.segments))
        self._read_from_start: set[str] = set()
        self._finished: dict[int, InputOutcome] = {}
        self._next = 0
        self._on_done = on_done
        self._on_frames = on_frames or (lambda n: None)
        self._fps = fps   # the sampling rate, which sets how long a track may go unseen

    @property
    def done(self) -> bool:
        return self._next == len(self._inputs)

    def prepare(self, unit: WorkUnit) -> WorkUnit:
        """The unit as it should be run: decoded from the start when its video's seeking proved inexact."""
        if unit.window is not None and unit.window.seek and unit.items[0].source in self._read_from_start:
            return unit.read_from_start()
        return unit

    def add(self, result: UnitResult) -> list[WorkUnit]:
        """Take one unit's results; the units to analyse again (segments whose seeking proved inexact)."""
        unit = result.unit
        again: list[WorkUnit] = []
        for outcome in result.outcomes:
            parts = self._parts[outcome.item.source]
            parts.outcomes[unit.segment] = outcome
            parts.edges[unit.segment] = result.edges
            parts.units[unit.segment] = unit
            again += self._accept(outcome.item.source, parts)
        return again

    def fail(self, unit: WorkUnit, reason: str) -> None:
        """The unit could not be analysed at all: each of its inputs fails there (keeping earlier segments' frames)."""
        self.add(UnitResult(unit, [InputOutcome(item, error=InputError(item.source, "worker", reason))
                                   for item in unit.items]))

    def _accept(self, source: str, parts: _Parts) -> list[WorkUnit]:
        while not parts.complete and parts.outcomes[parts.accepted] is not None:
            k = parts.accepted
            unit = parts.units[k]
            before = parts.outcomes[k - 1] if k else None
            checked = (unit.window is None or not unit.window.seek or k == 0 or before.error is not None
                       or parts.outcomes[k].error is not None)
            if not checked and (parts.edges[k - 1] is None or parts.edges[k] is None
                                or parts.edges[k - 1].end != parts.edges[k].start):
                parts.outcomes[k] = None
                self._read_from_start.add(source)
                return [unit.read_from_start()]
            parts.accepted += 1
            self._on_frames(len(parts.outcomes[k].results))
        if parts.complete:
            position = self._position[source]
            self._finished[position] = _assemble(self._inputs[position], parts.outcomes, self._fps)
            del self._parts[source]
            self._emit()
        return []

    def _emit(self) -> None:
        while self._next in self._finished:
            self._on_done(self._finished.pop(self._next))
            self._next += 1


def _assemble(item: InputFile, parts: list[InputOutcome], fps: float | None) -> InputOutcome:
    """One input's outcome from its parts in order, as far as the first that failed (a local run stops there too)."""
    outcome = InputOutcome(item, duration_s=parts[0].duration_s)
    assembler = ResultAssembler(fps)
    for part in parts:
        for result in part.results:
            assembler.add(outcome, result.index, result.time_s, result.faces, result.thumbnails.__getitem__)
        outcome.problems.extend(part.problems)
        if part.error is not None:
            outcome.error = part.error
            break
    if item.kind == "video":
        if outcome.duration_s is None and outcome.results:
            outcome.duration_s = outcome.results[-1].time_s
        if len(parts) > 1 and not outcome.results and outcome.error is None:
            outcome.error = InputError(item.source, "decode", NO_FRAME_DECODED)
    return outcome
