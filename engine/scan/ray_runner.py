"""`hashmatch scan --ray`: the same scan on a Ray cluster, with the same result lines, journal and resumption.

The driver (this process) walks the paths without opening a file and hands every input not done yet to Ray
Data as one row. An actor pool does the rest: each actor opens the hash store once, loads the lists at the
exact versions the driver loaded (so no activation in between can mix versions into one scan), then reads,
sniffs, digests, hashes and matches its rows in batches, and expands an archive it meets itself (members
read as streams, as everywhere). Exact duplicates are claimed in one small actor, as the worker processes
claim them in a shared dictionary. Result lines come back to the driver, which commits them to the journal
in checkpoints exactly as a local scan does: a scan interrupted on Ray resumes on Ray or locally, and the
other way round.

The inputs and the hash store must be at the same paths on every node (a shared filesystem). An archive on
disk is expanded and hashed by the one actor that met it, and its members' lines arrive together.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from engine.matcher import Matcher, load_list
from engine.scan.committer import Committer, Finished, records_of
from engine.scan.journal import ScanJournal, label_key, label_of_key
from engine.scan.progress import ProgressReporter, ScanCounters
from engine.scan.records import ARCHIVE_SEPARATOR, ContentType, ScanItem, ScanRecord
from engine.scan.reports import tool_version
from engine.scan.runner import ScanRun, ScanSettings, stop_on_interrupt
from engine.scan.sources import archive_members, walk
from engine.scan.workers import (
    ClaimsUnavailableError,
    WorkerResult,
    WorkerState,
    hash_item_or_internal,
    state_for,
)
from engine.store import Store
from hashing.errors import HashmatchError, ReasonCode
from kernels.optional import require_module

ROWS_PER_BATCH = 8  # inputs per actor call: small, so that the slowest batch holds back little
LOCAL_START_ATTEMPTS = 2
RAY_LOG = "ray.log"  # in --out: what Ray itself prints (its C++ logs, retries, stack traces)


@dataclass(frozen=True)
class RayTarget:
    """Where to run: `address` None starts a local Ray instance on this machine's CPUs; "auto" joins the
    cluster this machine belongs to (RAY_ADDRESS or a running head); anything else is a head's address."""

    address: str | None = None
    actors: int | None = None  # hashing actors (one CPU each); None: every CPU the cluster offers


@dataclass(frozen=True)
class ActorSetup:
    """What every actor needs to start: plain values, the same on every node."""

    db_path: str
    list_versions: dict[str, int]
    quality_gate: int
    settings: ScanSettings
    claims_actor: str  # the name of the claims actor in this scan's namespace
    hashmatch_version: str  # every node must hash as this process would


@dataclass
class _Rows:
    """The driver's walk: rows for Ray, and what it settled itself (inputs with a problem, done inputs)."""

    rows: list[dict[str, str]] = field(default_factory=list)
    settled: list[WorkerResult] = field(default_factory=list)
    total_bytes: int = 0


def ray_modules() -> tuple[ModuleType, ModuleType]:
    """ray and ray.data, or MissingDependencyError with the install command."""
    return require_module("ray", "scan --ray"), require_module("ray.data", "scan --ray")


class RayScanRunner:
    def __init__(
        self,
        db_path: Path,
        matcher: Matcher,
        journal: ScanJournal,
        settings: ScanSettings,
        target: RayTarget,
        reporter: ProgressReporter | None = None,
    ) -> None:
        self.db_path = db_path
        self.matcher = matcher
        self.journal = journal
        self.settings = settings
        self.target = target
        self.counters = ScanCounters()
        self.committer = Committer(journal, self.counters, reporter)
        self.reporter = reporter

    def run(self, paths: Sequence[Path]) -> ScanRun:
        """The scan on Ray. HashmatchError SERVER_UNREACHABLE when the cluster cannot be reached, INTERNAL when
        the Ray job fails (what was committed before stays: a rerun resumes)."""
        ray, ray_data = ray_modules()
        with stop_on_interrupt() as stop:
            walked = self._walk(paths, stop)
            self.counters.total_bytes = walked.total_bytes
            self.committer.commit(records_of(walked.settled, self.matcher, self.settings.scope), [])
            if walked.rows and not stop.is_set():
                terminate = signal.getsignal(signal.SIGTERM)  # ray.init installs its own
                with ray_output_to(self.journal.path.parent / RAY_LOG, self.reporter):
                    _connect(ray, self.target, self.settings.workers)
                    try:
                        self._run_on_ray(ray, ray_data, walked.rows, stop)
                    finally:
                        ray.shutdown()
                        signal.signal(signal.SIGTERM, terminate)
            self.committer.commit([], [], final=True)
        if self.reporter is not None:
            self.reporter.finish(self.counters)
        return ScanRun(stop.is_set(), self.counters)

    def _walk(self, paths: Sequence[Path], stop: threading.Event) -> _Rows:
        done = self.journal.done_labels()
        done_archives = self.journal.done_archives()
        ordered_done = sorted(done)
        walked = _Rows()
        for item in walk(paths, self.settings.limits, sniff=False):
            if stop.is_set():
                break
            key = label_key(item.label)
            # Members may be done while their archive's own line is not (a duplicate archive's line waits for
            # its original's): every row says which of its members not to do again.
            members = _members(key, ordered_done) if done else []
            if key in done:
                self.counters.skipped += 1
                self.counters.skipped_bytes += item.size or 0  # (None for an input with a problem)
                if key in done_archives and item.path is not None:  # its members may not all be done
                    walked.rows.append(_row(item, expand_only=True, done_members=members))
            elif item.problem is not None:
                walked.settled.append(WorkerResult(item.label, item.size, item.content_type, problem=item.problem))
            else:
                walked.rows.append(_row(item, expand_only=False, done_members=members))
            walked.total_bytes += item.size or 0  # (None for an input with a problem)
        return walked

    def _run_on_ray(self, ray: ModuleType, ray_data: ModuleType, rows: list[dict[str, str]], stop: Any) -> None:
        claims_name = f"hashmatch-scan-claims-{uuid.uuid4().hex}"
        claims = ray.remote(num_cpus=0)(ClaimsRegistry).options(name=claims_name).remote(self.journal.hashed_digests())
        actors = self.target.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        setup = ActorSetup(
            str(self.db_path),
            self.matcher.list_versions,
            self.matcher.quality_gate,
            self.settings,
            claims_name,
            tool_version(),
        )
        with warnings.catch_warnings():
            # Ray 2.51+ flags extra actor options as deprecated, yet they are still the only way to set these.
            warnings.simplefilter("ignore", DeprecationWarning)
            # One block per checkpoint's worth of rows: a block's lines come back together, and Ray Data's
            # default (about 200 blocks) would make them thousands per block on a large collection.
            # At least four per actor, so that a small scan still keeps every actor busy.
            blocks = max(math.ceil(len(rows) / self.settings.checkpoint_items), min(len(rows), 4 * actors))
            results = ray_data.from_items(rows, override_num_blocks=blocks).map_batches(
                ScanActor,
                batch_size=ROWS_PER_BATCH,
                batch_format="numpy",
                compute=ray_data.ActorPoolStrategy(size=min(actors, len(rows))),
                num_cpus=1,
                fn_constructor_kwargs={"setup": setup},
                # Ray Data restarts a dead actor and retries its batch without end by default: an input that
                # crashes a decoder would loop forever. Once each, then the job fails.
                max_restarts=1,
                max_task_retries=1,
            )
        finished: list[Finished] = []
        duplicates: list[WorkerResult] = []
        last = time.monotonic()
        try:
            for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
                for text in batch["result"]:
                    self._take(json.loads(str(text)), finished, duplicates)
                if len(finished) + len(duplicates) >= self.settings.checkpoint_items or (
                    time.monotonic() - last >= self.settings.checkpoint_seconds
                ):
                    self.committer.commit(finished, duplicates)
                    finished, duplicates, last = [], [], time.monotonic()
                if stop.is_set():
                    break  # what is not committed yet is the next run's
        except HashmatchError:
            raise
        except Exception as failure:  # a Ray job failure arrives as one of Ray's many exception types
            raise _job_failure() from failure
        finally:
            self.committer.commit(finished, duplicates)
            del claims

    def _take(self, answer: dict[str, Any], finished: list[Finished], duplicates: list[WorkerResult]) -> None:
        if "unable" in answer:
            raise HashmatchError(ReasonCode(answer["unable"]["reason"]), answer["unable"]["detail"])
        self.counters.input_bytes += int(answer.get("input_bytes", 0))
        if "record" in answer:
            finished.append((ScanRecord.from_json(answer["record"]), bool(answer["hashed"])))
            return
        kind = answer["type"]
        duplicates.append(
            WorkerResult(
                answer["label"],
                answer["size"],
                ContentType(kind) if kind else None,
                duplicate_of=answer["duplicate_of"],
            )
        )


def _row(item: ScanItem, expand_only: bool, done_members: list[str]) -> dict[str, str]:
    """One Ray Data row: a JSON string (names from seized media may be any bytes; JSON escapes their
    surrogates, which Arrow's UTF-8 columns would refuse)."""
    assert item.path is not None
    fields = {
        "label": item.label,
        "path": os.fsencode(item.path).hex(),  # the name's bytes, whatever a node's filesystem encoding
        "size": item.size,
        "expand_only": expand_only,
        "done_members": done_members,
    }
    return {"input": json.dumps(fields)}


def _members(archive_key: bytes, ordered_done: list[bytes]) -> list[str]:
    """The done labels under an archive (archive!member, nested ones too), found by prefix in sorted keys."""
    prefix = archive_key + ARCHIVE_SEPARATOR.encode()
    start = bisect.bisect_left(ordered_done, prefix)
    members = []
    for key in ordered_done[start:]:
        if not key.startswith(prefix):
            break
        members.append(label_of_key(key))
    return members


@contextmanager
def ray_output_to(log: Path, reporter: ProgressReporter | None) -> Iterator[None]:
    """Everything Ray prints while the scan runs (lines from its C++ core on file descriptor 2, task retry
    notices, Python stack traces from its loggers) goes to `log`, never to the investigator's terminal; the
    progress display keeps writing to the terminal. Ray prints no media: paths at most, as the journal holds."""
    target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    streams = sys.stdout, sys.stderr
    shown = reporter.stream if reporter is not None else None
    terminal: TextIO | None = None
    if reporter is not None and _writes_to_fd(reporter.stream, 2):
        terminal = reporter.stream = os.fdopen(os.dup(saved[2]), "w", encoding="utf-8", errors="replace")
    logged = os.fdopen(os.dup(target), "w", encoding="utf-8", errors="replace", buffering=1)
    # Ray's loggers hold the stream they were set up with (whatever sys.stderr was at `import ray`).
    loggers = {name: logging.getLogger(name) for name in ("ray", "ray.data")}
    kept = {name: (logger.handlers[:], logger.propagate) for name, logger in loggers.items()}
    try:
        for fd in (1, 2):
            os.dup2(target, fd)
        sys.stdout = sys.stderr = logged
        for logger in loggers.values():
            logger.handlers, logger.propagate = [logging.StreamHandler(logged)], False
        yield
    finally:
        for name, logger in loggers.items():
            logger.handlers, logger.propagate = kept[name]
        logged.flush()
        sys.stdout, sys.stderr = streams
        for fd in (1, 2):
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
        os.close(target)
        logged.close()
        if reporter is not None and shown is not None:
            reporter.stream = shown
        if terminal is not None:
            terminal.close()


def _writes_to_fd(stream: TextIO, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (OSError, ValueError, AttributeError):  # pytest's capture and other in-memory streams
        return False


def _connect(ray: ModuleType, target: RayTarget, workers: int) -> None:
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    # Ray Data's progress bars and start-up lines would tear the scan's own progress display.
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # A local start can fail once on a loaded machine (its GCS misses a start-up timeout), so it gets a second
    # try on a clean slate; a remote cluster that cannot be reached is reported at once.
    attempts = LOCAL_START_ATTEMPTS if target.address is None else 1
    for attempt in range(1, attempts + 1):
        try:
            if target.address is None:  # "local": a new instance even where RAY_ADDRESS names a cluster
                ray.init(address="local", num_cpus=max(1, target.actors or workers), include_dashboard=False, **quiet)
            else:
                ray.init(address=target.address, **quiet)
            return
        except Exception as failure:  # ConnectionError, RuntimeError, ValueError: Ray uses them all here
            traceback.print_exc()  # into ray.log
            ray.shutdown()  # what a failed start left running would make the next start fail too
            if attempt == attempts:
                where = "a local Ray instance" if target.address is None else f"the Ray cluster at {target.address}"
                raise HashmatchError(ReasonCode.SERVER_UNREACHABLE, f"cannot start or reach {where}") from failure
            print(f"hashmatch: local Ray start {attempt} of {attempts} failed; trying again", flush=True)


def _job_failure() -> HashmatchError:
    """The details are in ray.log and the Ray logs on the cluster, not in the investigator's terminal."""
    return HashmatchError(
        ReasonCode.INTERNAL, f"the Ray job failed ({RAY_LOG} in --out and the cluster's Ray logs say why)"
    )


class ClaimsRegistry:
    """sha256 -> the label of the first input that claimed it, for every actor of one scan (a Ray actor, so
    one call at a time: exactly one input claims each digest)."""

    def __init__(self, claimed: dict[str, str]) -> None:
        self._claimed = claimed

    def setdefault(self, sha256: str, label: str) -> str:
        return self._claimed.setdefault(sha256, label)


class _RemoteClaims:
    """The claims actor behind the `setdefault` that hash_item calls."""

    def __init__(self, ray: ModuleType, name: str) -> None:
        self._ray = ray
        self._actor = ray.get_actor(name)

    def setdefault(self, sha256: str, label: str) -> str:
        try:
            return str(self._ray.get(self._actor.setdefault.remote(sha256, label)))
        except Exception as failure:  # the claims actor or its node is gone: the job fails, a rerun redoes it
            raise ClaimsUnavailableError from failure


class ScanActor:
    """One hashing actor: the lists loaded once, then batches of rows turned into result lines."""

    def __init__(self, setup: ActorSetup) -> None:
        self.settings = setup.settings
        # A node that cannot load the lists answers every batch with the reason, which ends the scan: an
        # exception raised here would reach the driver as Ray's own error, without our reason code.
        self.unable: HashmatchError | None = None
        try:
            self.matcher = _matcher(setup)
        except HashmatchError as error:
            self.unable = error
            return
        ray = require_module("ray", "scan --ray")
        self.state: WorkerState = state_for(setup.settings.hash_options, _RemoteClaims(ray, setup.claims_actor))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        if self.unable is not None:
            return {"result": [json.dumps({"unable": {"reason": self.unable.reason, "detail": self.unable.detail}})]}
        results: list[WorkerResult] = []
        input_bytes: dict[str, int] = {}
        for text in batch["input"]:
            row = json.loads(str(text))
            input_bytes[row["label"]] = 0 if row["expand_only"] else int(row["size"] or 0)
            results.extend(self._results(row))
        originals = [r for r in results if r.duplicate_of is None]
        answers = [
            {"record": record.to_json(), "hashed": hashed, "input_bytes": input_bytes.get(record.path, 0)}
            for record, hashed in records_of(originals, self.matcher, self.settings.scope)
        ]
        answers += [_duplicate(r, input_bytes.get(r.label, 0)) for r in results if r.duplicate_of is not None]
        return {"result": [json.dumps(answer) for answer in answers]}

    def _results(self, row: dict[str, Any]) -> Iterator[WorkerResult]:
        path = Path(os.fsdecode(bytes.fromhex(row["path"])))
        item = ScanItem(row["label"], size=row["size"], path=path)
        expand = row["expand_only"]
        if not expand:
            result = hash_item_or_internal(item, self.state)
            yield result
            expand = result.archive_on_disk
        if expand:
            skip = set(row["done_members"])
            for member in archive_members(path, self.settings.limits):
                if member.label not in skip:
                    yield hash_item_or_internal(member, self.state)


def _matcher(setup: ActorSetup) -> Matcher:
    """The lists at the driver's versions, from the store at the driver's path."""
    if tool_version() != setup.hashmatch_version:
        raise HashmatchError(
            ReasonCode.USAGE,
            f"a Ray node runs {tool_version()}, the scan {setup.hashmatch_version}: install one on every node",
        )
    if not Path(setup.db_path).is_file():
        raise HashmatchError(
            ReasonCode.STORE_UNAVAILABLE,
            f"a Ray node has no hash store at {setup.db_path}: the store and the inputs must be at the same paths "
            "on every node",
        )
    store = Store(setup.db_path)
    loaded = [load_list(store, name, version) for name, version in setup.list_versions.items()]
    return Matcher(store, loaded, setup.quality_gate)


def _duplicate(result: WorkerResult, input_bytes: int) -> dict[str, Any]:
    return {
        "label": result.label,
        "size": result.size,
        "type": str(result.content_type) if result.content_type is not None else None,
        "duplicate_of": result.duplicate_of,
        "input_bytes": input_bytes,
    }
