"""Flood quarantine: a list entry whose match rate jumps far above its own baseline is held for review.

A bad entry (a blank frame, a logo, a hash of a common template) can suddenly match a large share of all
uploads, and every one of those verdicts would remove an innocent upload. The guard keeps two exponentially
decayed match counts per entry: a recent one (time constant `window_s`) and a baseline (`baseline_s`, a week).
Each is turned into a rate with the bias correction for the time the guard has seen traffic (gaps count at
most `window_s`: a standby or drained server's idle hours are no quiet past), so steady traffic reads the
same in both from the first minute. One upload (by its content identity) matching an entry again within
`window_s` counts once: repeating one hash is not a flood. An entry is held when its recent rate exceeds
`multiple` times its baseline (never less than `floor_per_hour`) and its recent count reaches `min_matches`.
A held entry's matches say `needs_review` instead of their list's automatic action until an admin releases
it.

The baseline begins with the first traffic the guard sees (a server start): an entry that floods from that
moment has no quieter past to jump from. An entry whose own traffic is bursty (silent for days, then busy) can
be held at the start of a burst: a safe failure (a person reviews instead of automatic action), and a release
accepts its rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from hashing.errors import HashmatchError, ReasonCode


@dataclass(frozen=True)
class FloodSettings:
    enabled: bool = True
    multiple: float = 10.0  # recent rate over baseline rate that holds an entry
    window_s: float = 300.0  # time constant of the recent rate
    baseline_s: float = 7 * 86_400.0  # time constant of the baseline rate
    min_matches: float = 30.0  # the recent decayed count an entry must reach first: a handful is never a flood
    floor_per_hour: float = 1.0  # the least baseline an entry is held to (a rarely seen entry has almost none)

    def __post_init__(self) -> None:
        if self.multiple <= 1 or self.window_s <= 0 or self.baseline_s <= self.window_s:
            raise HashmatchError(
                ReasonCode.INVALID_SETTING,
                "flood quarantine needs multiple > 1 and 0 < window_s < baseline_s",
            )
        if self.min_matches < 1 or self.floor_per_hour < 0:
            raise HashmatchError(ReasonCode.INVALID_SETTING, "flood quarantine needs min_matches >= 1, floor >= 0")


@dataclass(frozen=True)
class Hold:
    """An entry the guard has just held, with the rates that decided it (per hour)."""

    entry_id: int
    recent_per_hour: float
    baseline_per_hour: float
    recent_matches: float

    @property
    def detail(self) -> str:
        return (
            f"{self.recent_per_hour:.1f} matches/h recently against a baseline of {self.baseline_per_hour:.2f}/h "
            f"({self.recent_matches:.0f} recent matches)"
        )


class _Rates:
    __slots__ = ("baseline", "last", "recent")

    def __init__(self, now: float) -> None:
        self.recent = 0.0
        self.baseline = 0.0
        self.last = now


PRUNE_EVERY = 100_000  # observations between sweeps of entries whose counts have decayed to nothing
FORGOTTEN_BELOW = 0.01  # a baseline count this small is no history worth keeping
MAX_RECENT_UPLOADS = 200_000  # (entry, upload) pairs remembered to count repeats once


class FloodGuard:
    """Thread-safe. `observe` is called with the entries each batch matched; `held` is what is under review.
    Switched off (`enabled` false), it holds nothing and its stored holds do not apply."""

    def __init__(
        self,
        settings: FloodSettings = FloodSettings(),
        clock: Callable[[], float] = time.monotonic,
        held: Iterable[int] = (),
    ) -> None:
        self.settings = settings
        self.clock = clock
        # The time the guard has seen traffic: a gap between observations adds at most window_s, so hours
        # without traffic (a standby server, a drained one) are no quiet past an entry could jump from.
        self.active_s = 0.0
        self.last_seen: float | None = None
        self._rates: dict[int, _Rates] = {}
        self._recent_uploads: OrderedDict[tuple[int, Hashable], float] = OrderedDict()
        self._stored = frozenset(held)  # the holds as the store had them when last read
        self._held: frozenset[int] = self._stored if settings.enabled else frozenset()
        self._lock = threading.Lock()
        self._observed = 0

    @property
    def held(self) -> frozenset[int]:
        return self._held  # replaced, never changed in place: readers need no lock

    def observe(self, matches: Iterable[tuple[int, Hashable]]) -> list[Hold]:
        """Count one match per (entry id, upload): the same upload (by its content identity) matching an entry
        again within `window_s` counts once, so repeating one hash is not a flood. The entries this call newly
        holds."""
        if not self.settings.enabled:
            return []
        settings, now = self.settings, self.clock()
        holds: list[Hold] = []
        with self._lock:
            if self.last_seen is not None:
                self.active_s += min(max(now - self.last_seen, 0.0), settings.window_s)
            self.last_seen = now
            watched = max(self.active_s, 1e-9)
            recent_span = settings.window_s * -math.expm1(-watched / settings.window_s)
            baseline_span = settings.baseline_s * -math.expm1(-watched / settings.baseline_s)
            floor = settings.floor_per_hour / 3600.0
            self._forget_uploads(now)
            for entry_id, upload in matches:
                if (entry_id, upload) in self._recent_uploads:
                    continue
                self._recent_uploads[(entry_id, upload)] = now
                rates = self._rates.get(entry_id)
                if rates is None:
                    rates = self._rates[entry_id] = _Rates(now)
                elapsed = now - rates.last
                rates.recent = rates.recent * math.exp(-elapsed / settings.window_s) + 1.0
                rates.baseline = rates.baseline * math.exp(-elapsed / settings.baseline_s) + 1.0
                rates.last = now
                if entry_id in self._held or rates.recent < settings.min_matches:
                    continue
                recent = rates.recent / max(recent_span, 1e-9)
                baseline = max(rates.baseline / max(baseline_span, 1e-9), floor)
                if recent > settings.multiple * baseline:
                    self._held = self._held | {entry_id}
                    holds.append(Hold(entry_id, recent * 3600, baseline * 3600, rates.recent))
            self._observed += 1
            if self._observed % PRUNE_EVERY == 0:
                self._prune(now)
        return holds

    def _forget_uploads(self, now: float) -> None:
        """Uploads seen longer than window_s ago count again; at most MAX_RECENT_UPLOADS are remembered."""
        horizon = now - self.settings.window_s
        while self._recent_uploads:
            oldest, seen = next(iter(self._recent_uploads.items()))
            if seen >= horizon and len(self._recent_uploads) < MAX_RECENT_UPLOADS:
                break
            del self._recent_uploads[oldest]

    def _prune(self, now: float) -> None:
        """Forget entries not matched for so long that their counts are all but zero (the dict would otherwise
        grow with every entry ever matched)."""
        decay = self.settings.baseline_s
        forgotten = [
            entry_id
            for entry_id, rates in self._rates.items()
            if entry_id not in self._held and rates.baseline * math.exp(-(now - rates.last) / decay) < FORGOTTEN_BELOW
        ]
        for entry_id in forgotten:
            del self._rates[entry_id]

    @property
    def tracked(self) -> int:
        return len(self._rates)

    def release(self, entry_id: int) -> bool:
        """Automatic action again for this entry (False: it was not held). A reviewer who releases it found
        its rate legitimate (a newly listed image spreading), so that rate becomes its baseline: it is held
        again only if it jumps `multiple` times above that."""
        with self._lock:
            if entry_id not in self._held:
                return False
            self._held = self._held - {entry_id}
            self._stored = self._stored - {entry_id}  # released here: the store's row goes too
            self._accept_rate(entry_id)
            return True

    def sync(self, stored: Iterable[int]) -> None:
        """Follow the store's holds: entries that left it since it was last read were released (by an admin,
        perhaps through another process), entries that appeared were held elsewhere. A hold of this guard that
        is not yet written stays."""
        with self._lock:
            now_stored = frozenset(stored)
            released, added = self._stored - now_stored, now_stored - self._stored
            self._stored = now_stored
            if not self.settings.enabled:
                return
            for entry_id in released & self._held:
                self._accept_rate(entry_id)
            self._held = (self._held - released) | added

    def written(self, entry_id: int) -> None:
        """This guard's hold of the entry is now in the store (so its removal there is a release)."""
        with self._lock:
            self._stored = self._stored | {entry_id}

    def _accept_rate(self, entry_id: int) -> None:
        rates = self._rates.get(entry_id)
        if rates is None:
            return
        watched = max(self.active_s, 1e-9)
        recent_rate = rates.recent / (self.settings.window_s * -math.expm1(-watched / self.settings.window_s))
        baseline_span = self.settings.baseline_s * -math.expm1(-watched / self.settings.baseline_s)
        rates.baseline = max(rates.baseline, recent_rate * baseline_span)
