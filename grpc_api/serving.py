"""What requests read: the matcher (swapped on activation), the hasher with its decode budget, the batcher,
metrics; and the watcher that keeps the matcher in step with the store.

Activating a list version builds a new Matcher beside the serving one and swaps the reference: batches
already running finish on the old index, whose memory is freed once the last of them returns. The store is
watched too: another process's import, activation, settings change or deletion (`hashmatch lists ...`
against the same store file) is served within `reload_interval_s` (SQLite's `PRAGMA data_version` tells
cheaply whether anyone else committed; only then are the active versions compared).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from engine.audit.log import AuditLog, now
from engine.audit.records import match_record
from engine.evidence import holds
from engine.evidence.flood import FloodGuard, FloodSettings, Hold
from engine.evidence.prevalence import PrevalenceCounters, PrevalenceKey
from engine.evidence.referrals import (
    INVALID_REFERRAL_KIND,
    NO_CLIENT_IDS,
    REFERRAL_KIND,
    ClientIds,
    first_schema_problem,
    referral_of,
    refers,
)
from engine.matcher import FloodWatch, Matcher, MatchScope, QueryHashes, Verdict
from engine.media_query import MediaQueries
from engine.signal_types.vpdq import DEFAULT_OPTIONS as DEFAULT_VIDEO_OPTIONS
from engine.signal_types.vpdq import VpdqMatchOptions
from engine.signals import SignalType
from engine.store import Store
from grpc_api.batching import MatchBatcher
from grpc_api.metrics import ServerMetrics
from hashing.decode import DecodeOptions
from hashing.decode_budget import DecodeBudget
from hashing.device import DeviceChoice, image_hasher
from hashing.errors import HashmatchError, ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode
from hashing.query_variants import ALL_FAMILIES
from hashing.video import VideoHasher, VideoOptions

log = logging.getLogger("hashmatch.server")


class ServingState:
    def __init__(
        self,
        store: Store,
        lists: tuple[str, ...],
        decode: DecodeOptions,
        budget: DecodeBudget,
        metrics: ServerMetrics,
        device: DeviceChoice,
        video: VideoOptions | None = None,
        video_options: VpdqMatchOptions = DEFAULT_VIDEO_OPTIONS,
        audit: AuditLog | None = None,
        flood: FloodSettings | None = None,
        hashing: HashOptions | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        # Shared by every matcher swapped in: a reload must not forget an entry's rates or its hold.
        self.guard = FloodGuard(flood or FloodSettings(), held=(h.entry_id for h in holds.held_entries(store)))
        self.holds = holds.HoldBook(store, self.guard, audit)
        self.prevalence = PrevalenceCounters(store, on_count=self._count_prevalence)
        self.lists = lists
        self.metrics = metrics
        self.metrics.held.set(len(self.guard.held))
        self.budget = budget
        self.device = device
        # The server's dihedral mode and query variants are always computed; a request's scope decides which are
        # matched. On a GPU, concurrent requests' images are hashed together (hashing.pdq_gpu).
        self.pdq = image_hasher(device)
        options = hashing or HashOptions(dihedral=DihedralMode.PIXELS, variants=ALL_FAMILIES, decode=decode)
        self.hasher = MediaHasher(options, self.pdq, budget=budget)
        # `Matcher.Hash` answers the hashes a list would hold and the rotations: no query variants to pay for.
        self.plain_hasher = MediaHasher(replace(options, variants=frozenset()), self.pdq, budget=budget)
        self.media = MediaQueries(self.hasher, VideoHasher(video or VideoOptions(), self.pdq, budget))
        self.video_options = video_options  # the server's vPDQ match rule; a request may choose its own
        self._swap_lock = threading.Lock()
        self.matcher = self._load()
        self.batcher = MatchBatcher(self._match_many)
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None

    def _load(self) -> Matcher:
        matcher = Matcher.from_store(
            self.store,
            list(self.lists) or None,
            gpu=self.device.runtime,
            signal_options={SignalType.VPDQ: self.video_options},
            flood=FloodWatch(self.guard, self._on_hold),
        )
        for loaded in matcher.lists:
            self.metrics.index_entries.labels(loaded.spec.name).set(len(loaded.pdq_ids))
            self.metrics.active_version.labels(loaded.spec.name).set(loaded.version)
        return matcher

    def _match_many(self, queries: list[QueryHashes], scope: MatchScope) -> list[Verdict]:
        matcher = self.matcher  # one reference per batch: a swap mid-batch does not mix versions
        self.metrics.batch_size.observe(len(queries))
        return matcher.match_many(queries, scope)

    def reload(self) -> Matcher:
        """Build the new matcher beside the serving one, then swap; one reload at a time."""
        with self._swap_lock:
            fresh = self._load()
            self.matcher = fresh
        return fresh

    def record(
        self,
        verdicts: list[Verdict],
        actor: str,
        method: str,
        client_of: Callable[[int], ClientIds] | None = None,
    ) -> None:
        """Metrics and prevalence counts; one audit record for a call's verdicts (their hashes, never media);
        a referral record for each verdict that refers (with the client's upload and user ids, `client_of(i)`
        for verdict i, asked only for the verdicts that refer). Audit records are queued, never waited for."""
        # Summed first: one labelled increment per decision and list, not one per verdict.
        for decision, count in Counter(verdict.decision for verdict in verdicts).items():
            self.metrics.verdicts.labels(decision).inc(count)
        for list_name, count in Counter(m.list_name for verdict in verdicts for m in verdict.matches).items():
            self.metrics.matches.labels(list_name).inc(count)
        self.prevalence.count(verdicts)
        if self.audit is None or not verdicts:
            return
        self.audit.append(f"token:{actor}", "match", match_record(verdicts, method))
        # Most calls match nothing: only verdicts with matches are looked at.
        referring = [i for i, verdict in enumerate(verdicts) if verdict.matches and refers(verdict)]
        if not referring:
            return
        sources = {loaded.spec.name: loaded.spec.source.value for loaded in self.matcher.lists}
        reporter = {"host": self.audit.host, "actor": f"token:{actor}", "method": method}
        when = now()
        for i in referring:
            client = client_of(i) if client_of is not None else NO_CLIENT_IDS
            referral = referral_of(verdicts[i], client, when, reporter, sources)
            if referral is None:
                continue
            problem = first_schema_problem(referral)
            if problem is not None:  # kept as evidence, but out of the exports it would otherwise stop
                self.metrics.errors.labels(ReasonCode.REFERRAL_INVALID.value).inc()
                log.error(json.dumps({"event": "referral_invalid", "problem": problem}))
                self.audit.append(f"token:{actor}", INVALID_REFERRAL_KIND, {"problems": [problem], "record": referral})
                continue
            self.audit.append(f"token:{actor}", REFERRAL_KIND, referral)
            self.metrics.referrals.inc()

    def _count_prevalence(self, key: PrevalenceKey, increment: int) -> None:
        labels = (key.list, key.classification, key.signal_type, key.decision, key.variant)
        self.metrics.prevalence.labels(*labels).inc(increment)

    def _on_hold(self, hold: Hold, list_name: str) -> None:
        """Counted at once; written to the store and audited by the watcher thread (HoldBook.save)."""
        self.metrics.holds.labels(list_name).inc()
        self.metrics.held.set(len(self.guard.held))
        self.holds.add(hold, list_name)

    def release(self, entry_id: int, actor: str) -> holds.HeldEntry | None:
        """An admin's release (None when the entry was not held)."""
        released = self.holds.release(entry_id, actor)
        self.metrics.held.set(len(self.guard.held))
        return released

    def audit_log(self) -> AuditLog:
        """The audit log, or AUDIT_UNAVAILABLE for a server that runs without one."""
        if self.audit is None:
            raise HashmatchError(ReasonCode.AUDIT_UNAVAILABLE, "this server runs without an audit log (--no-audit)")
        return self.audit

    def flush_counts(self) -> None:
        try:
            self.prevalence.flush()
        except Exception:  # kept in memory for the next flush
            log.exception("prevalence counts could not be written to the store; kept for the next try")

    # ----- following the store -----

    def watch_store(self, interval_s: float) -> None:
        """Reload whenever the store's active versions differ from those served (checked every interval)."""
        self._watcher = threading.Thread(
            target=self._watch, args=(interval_s,), name="hashmatch-store-watcher", daemon=True
        )
        self._watcher.start()

    def stop_watching(self) -> None:
        self._watching.set()
        if self._watcher is not None:
            self._watcher.join()

    def _watch(self, interval_s: float) -> None:
        seen = self._data_version()
        while not self._watching.wait(interval_s):
            self.flush_counts()  # neither raises: the watcher lives on
            self.holds.save()
            try:
                version = self._data_version()
                if version != seen:
                    # Holds taken or released by another process (or another server of the store).
                    self.guard.sync(h.entry_id for h in holds.held_entries(self.store))
                    self.metrics.held.set(len(self.guard.held))
                if version != seen and self.served_versions_differ():
                    self.reload()
                    log.info(json.dumps({"event": "reloaded", "reason": "store changed", "lists": self.versions()}))
                seen = version
            except Exception:  # a failed reload keeps serving the previous versions; try again next time
                log.exception("reload after a store change failed; serving the previous versions")

    def _data_version(self) -> int:
        return int(self.store.db.execute("PRAGMA data_version").fetchone()[0])

    def served_versions_differ(self) -> bool:
        wanted = {
            h.name: h.active_version
            for h in self.store.lists()
            if h.active_version is not None and (not self.lists or h.name in self.lists)
        }
        return wanted != self.versions()

    def versions(self) -> dict[str, int]:
        return self.matcher.list_versions
