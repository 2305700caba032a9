"""`--backend ray`: a batch's units (photos, videos, segments of long videos; units.py) analysed by Ray actors
that load the detector and classifier once, on a GPU each where the cluster has them; the driver joins their
results (joiner.py) and hands them to the same collector and writers as a local run.

Imported only for that backend: the local path never imports Ray. Every node needs `pip install "fer-batch[ray]"`
(the same version as the driver) and must see the inputs (and a --model file) at the paths the driver sees them.
"""
from __future__ import annotations

import logging
import os
import platform
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

from fer_batch.options import AnalyzeOptions, BackendUnavailable

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError
except ImportError as exc:  # pragma: no cover - exercised where Ray is absent
    raise BackendUnavailable(f"--backend ray needs Ray, which cannot be imported ({exc}): "
                             "pip install 'fer-batch[ray]'") from None

from fer_batch.joiner import Joiner
from fer_batch.pipeline import InputOutcome
from fer_batch.sources import InputFile
from fer_batch.state import interrupts_deferred
from fer_batch.units import UnitAnalyzer, UnitResult, WorkUnit, plan_units
from fer_batch.native_logs import import_tensorflow, is_start_up_noise, native_stderr_lines, write_back

ACTOR_RESTARTS = 4        # Ray restarts an actor whose process died this many times (reloading its model)...
TASK_RETRIES = 2          # ...and runs the unit it was analysing again this many times
UNIT_TRIES = 2            # then the driver gives the unit to a worker this many times before it fails
STARTUP_TIMEOUT_S = 900.0  # for the first actor to load its model (a cold node may also install packages)
LOCAL_OBJECT_STORE_BYTES = 1 << 30
WORKER_MEMORY_BYTES = 1 << 30  # a worker with TensorFlow, MTCNN and the model takes 0.7-0.9 GB on CPU
CONNECT_TIMEOUT_S = 10.0  # for the cluster's port to answer at all


class AnalyzerActor:
    """The Ray actor: one worker's UnitAnalyzer. Its only argument is small, so Ray can always restart it."""

    def __init__(self, options: AnalyzeOptions):
        from fer_batch.classify import ModelLoadError

        self.error: Exception | None = None
        self.analyzer: UnitAnalyzer | None = None
        try:
            if options.model and not Path(options.model).exists():
                raise ModelLoadError(f"model file {options.model} does not exist on Ray node {platform.node()}: "
                                     "every node must see it at the same path.")
            if not ray.get_gpu_ids():
                _limit_tensorflow_threads(options.cpus_per_worker)
            self.analyzer = UnitAnalyzer(options)
        except Exception as exc:  # DetectorUnavailable, ModelLoadError, ...: the driver raises it as a local run would
            self.error = exc

    def ready(self) -> dict:
        import fer_batch

        return {"error": self.error, "node": platform.node(), "pid": os.getpid(), "version": fer_batch.__version__}

    def analyze(self, unit: WorkUnit) -> UnitResult:
        return self.analyzer.analyze(unit)


def _limit_tensorflow_threads(cpus: float) -> None:
    tf = import_tensorflow()

    threads = max(1, int(cpus))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def check_reachable(address: str) -> None:
    """BackendUnavailable at once when nothing answers at `address` (HOST:PORT, or ray://HOST:PORT), or something
    that is not a Ray cluster (its GCS and Ray Client servers speak gRPC): Ray itself keeps retrying such an address
    for many minutes, printing warnings. Other forms ("auto") are left to Ray, and so is the answer of a cluster
    that uses TLS (RAY_USE_TLS)."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    deadline = time.monotonic() + CONNECT_TIMEOUT_S   # one for connecting and answering
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S)
        connection.settimeout(max(0.5, deadline - time.monotonic()))
    except OSError as exc:
        raise BackendUnavailable(f"could not join the Ray cluster at {address} (nothing answers at {host}:{port}: "
                                 f"{exc.strerror or exc}); is `ray start --head` running there, on that port?") from None
    with connection:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "false", ""):
            answer = _http2_answer(connection)
            if answer is not None:
                raise BackendUnavailable(f"could not join the Ray cluster at {address} (what answers at {host}:{port} "
                                         f"is not a Ray cluster: {answer}); is that the port of `ray start --head`?")


# an HTTP/2 client's first bytes: the connection preface, then an empty SETTINGS frame
HTTP2_GREETING = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4


def _http2_answer(connection: socket.socket) -> str | None:
    """None when the server on `connection` answers an HTTP/2 greeting with the SETTINGS frame every HTTP/2 (so
    gRPC) server sends first; otherwise what it did instead."""
    try:
        connection.sendall(HTTP2_GREETING)
        reply = b""
        while len(reply) < 9:
            chunk = connection.recv(9 - len(reply))
            if not chunk:
                return "it closed the connection" if not reply else f"it answered {reply[:20]!r}"
            reply += chunk
    except socket.timeout:
        return f"it sent nothing back within {CONNECT_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"the connection failed: {exc.strerror or exc}"
    if reply[3] == HTTP2_SETTINGS and reply[5:9] == bytes(4):
        return None
    return f"it answered {reply!r}, not in HTTP/2 as Ray's gRPC servers do"


# Ray's native warnings while it retries a cluster that does not let it in: the one sentence of start_failure says it
RAY_CONNECT_RETRY = re.compile(r"gcs_client\.cc.*Failed to get cluster ID|rpc_client\.h.*Failed to connect to")
RAY_TOKEN_REFUSED = re.compile(r"Unauthenticated|InvalidAuthToken")


def start_failure(address: str | None, exc: BaseException, refused_token: bool) -> str:
    """The sentence for a Ray start-up or join that failed with `exc` (`refused_token`: the cluster said this
    process's authentication token is missing or wrong)."""
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if refused_token:
        hint = ("; the cluster refused this process's authentication token: give it the token of the cluster "
                "(RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, or ~/.ray/auth_token) as in the environment of its `ray start`")
    elif address and os.environ.get("RAY_AUTH_MODE") != "token":
        hint = ("; a cluster with token authentication needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or "
                "~/.ray/auth_token) in this environment")
    else:
        hint = ""
    return f"could not start or join {where} ({reason}){hint}"


@contextmanager
def ray_session(options: AnalyzeOptions) -> Iterator[None]:
    """Joins the cluster at `options.address`, or starts a local Ray instance; disconnects or stops it afterwards.
    A process already connected to Ray (a user's own script) stays connected."""
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # Ray's C++ side logs retries as warnings on stderr
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    if options.address:
        check_reachable(options.address)
    lines: list[str] = []
    failure: BaseException | None = None
    try:
        # a Ctrl-C inside Ray's start-up (its CoreWorker half made) crashed the process at exit: it waits for the end
        with native_stderr_lines() as lines, interrupts_deferred():
            if options.address:
                ray.init(address=options.address, **quiet)
            else:
                ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE_BYTES, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        failure = exc
    except BaseException:   # the Ctrl-C held during start-up: stop what it started now, not at interpreter exit
        ray.shutdown()
        raise
    finally:   # Ray's retry warnings are left out when the one sentence below says what they say
        write_back([line for line in lines if not is_start_up_noise(line)
                    and not (failure is not None and RAY_CONNECT_RETRY.search(line))])
    if failure is not None:
        refused_token = any(RAY_TOKEN_REFUSED.search(line) for line in lines)
        raise BackendUnavailable(start_failure(options.address, failure, refused_token)) from None
    try:
        yield
    finally:
        ray.shutdown()


def actor_plan(options: AnalyzeOptions, units: int) -> tuple[int, dict]:
    """How many actors, and the resources each asks for: a GPU each where the cluster has them, and the memory
    one needs, so that Ray never starts more on a node than its memory holds (the others wait, unused)."""
    from fer_batch.classify import ModelLoadError

    total = ray.cluster_resources()
    gpus = int(total.get("GPU", 0)) if options.device != "cpu" else 0
    if options.device == "gpu" and not gpus:
        raise ModelLoadError("--device gpu was asked for, but the Ray cluster has no GPU.")
    needed = {"CPU": options.cpus_per_worker, "memory": WORKER_MEMORY_BYTES, **({"GPU": 1} if gpus else {})}
    if not any(all(node["Resources"].get(name, 0) >= amount for name, amount in needed.items())
               for node in ray.nodes() if node.get("Alive")):
        raise BackendUnavailable(f"no node of the Ray cluster has the {options.cpus_per_worker:g} CPU(s), "
                                 f"{WORKER_MEMORY_BYTES / 2**30:g} GiB of memory{' and GPU' if gpus else ''} "
                                 "a worker asks for")
    resources = {"num_cpus": options.cpus_per_worker, "memory": WORKER_MEMORY_BYTES}
    if gpus:
        count = options.workers or gpus
        resources["num_gpus"] = 1
    else:
        count = options.workers or max(1, int(total.get("CPU", 1) // options.cpus_per_worker))
    return max(1, min(count, units)), resources


class RayRunner:
    """Runs a batch's inputs on Ray; `run` calls `on_done` once per input, in input order, like Pipeline.run."""

    def __init__(self, options: AnalyzeOptions):
        # workers have their own working directory: they are given absolute paths (outputs keep `source`)
        self.options = replace(options, model=str(Path(options.model).absolute()) if options.model else None)
        self._session: ExitStack | None = None
        self._pool: _ActorPool | None = None
        self._units: list[WorkUnit] = []

    def start(self, items: Sequence[InputFile]) -> None:
        """Join or start Ray and wait for a worker to load the detector and model, so that a cluster, detector or
        model that cannot be used raises (BackendUnavailable, DetectorUnavailable, ModelLoadError) before any work;
        `run` then analyses the same `items`, and `close` ends the session when `run` is not reached."""
        self._units = plan_units([replace(item, path=item.path.absolute()) for item in items], self.options)
        self._session = ExitStack()
        try:
            self._session.enter_context(ray_session(self.options))
            count, resources = actor_plan(self.options, len(self._units))
            self._pool = _ActorPool(self.options, count, resources)
            self._session.callback(self._pool.close)
            self._pool.wait_until_ready()
        except BaseException:
            self.close()
            raise

    def run(self, items: Sequence[InputFile], on_done: Callable[[InputOutcome], None],
            on_frames: Callable[[int], None] | None = None) -> None:
        if self._session is None:
            self.start(items)
        try:
            self._pool.run(self._units, Joiner(items, self._units, on_done, on_frames, fps=self.options.fps))
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers, and a local Ray instance (or leave the cluster)."""
        if self._session is not None:
            session, self._session = self._session, None
            session.close()


class _ActorPool:
    """Actors that pull units one at a time (so a unit that kills its worker costs no other unit a retry)."""

    def __init__(self, options: AnalyzeOptions, count: int, resources: dict):
        self._options = options
        self._actor_class = ray.remote(AnalyzerActor).options(
            max_restarts=ACTOR_RESTARTS, max_task_retries=TASK_RETRIES, **resources)
        self._spares = count  # replacements for actors that died for good
        self._actors = [self._actor_class.remote(options) for _ in range(count)]
        self._starting = {actor.ready.remote(): actor for actor in self._actors}
        self._any_ready = False
        self._idle: list = []   # actors ready before `run`

    def wait_until_ready(self) -> None:
        """Until one actor has loaded the detector and model (raising what it met), or none is left to start."""
        while not self._any_ready and self._starting:
            ref = self._next_ready(list(self._starting))
            actor = self._starting.pop(ref)
            if self._started(ref, actor):
                self._idle.append(actor)

    def run(self, units: Sequence[WorkUnit], joiner: Joiner) -> None:
        pending: deque[WorkUnit] = deque(units)
        idle: list = self._idle
        running: dict = {}
        tries: dict[int, int] = {}
        while pending or running:
            while idle and pending:
                unit = joiner.prepare(pending.popleft())
                actor = idle.pop()
                running[actor.analyze.remote(unit)] = (unit, actor)
            if not running and not self._starting:
                for unit in pending:
                    joiner.fail(unit, "no Ray worker was left to analyse it")
                break
            ref = self._next_ready(list(running) + list(self._starting))
            if ref in self._starting:
                actor = self._starting.pop(ref)
                if self._started(ref, actor):
                    idle.append(actor)
                continue
            unit, actor = running.pop(ref)
            try:
                result = ray.get(ref)
            except RayActorError as exc:  # its process died more often than Ray retries
                tries[unit.key] = tries.get(unit.key, 0) + 1
                if tries[unit.key] < UNIT_TRIES:
                    pending.appendleft(unit)
                else:
                    joiner.fail(unit, f"its Ray worker process kept dying while analysing it, on {UNIT_TRIES} "
                                      f"workers ({type(exc).__name__})")
                self._starting[actor.ready.remote()] = actor  # back to work once restarted, replaced if dead
                continue
            except RayError as exc:  # e.g. a result lost with its node
                cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause else exc
                joiner.fail(unit, f"analysis failed on a Ray worker ({type(cause).__name__})")
            else:
                pending.extendleft(reversed(joiner.add(result)))
            idle.append(actor)

    def _next_ready(self, refs: list):
        timeout = None if self._any_ready else STARTUP_TIMEOUT_S
        done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if not done:
            raise BackendUnavailable(f"no Ray worker started within {STARTUP_TIMEOUT_S:.0f} s; does the cluster have "
                                     "the CPUs, memory (and GPUs) the workers ask for free?")
        return done[0]

    def _started(self, ref, actor) -> bool:
        """Whether the actor is ready for work; an actor that died for good is replaced while spares last."""
        try:
            info = ray.get(ref)
        except (RayActorError, GetTimeoutError):
            ray.kill(actor, no_restart=True)
            if self._spares > 0:
                self._spares -= 1
                new = self._actor_class.remote(self._options)
                self._actors.append(new)
                self._starting[new.ready.remote()] = new
            return False
        if info["error"] is not None:
            if not self._any_ready:
                raise info["error"]  # the detector or model cannot load: fail before any work, as a local run does
            return False
        import fer_batch

        if info["version"] != fer_batch.__version__:
            raise BackendUnavailable(f"Ray worker {info['node']} runs fer-batch {info['version']}, this driver "
                                     f"{fer_batch.__version__}: install the same version on every node")
        self._any_ready = True
        return True

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
