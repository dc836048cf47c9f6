"""Numba kernels of the exact multi-index hashing (MIH) search. Import only when numba is installed.

The 256-bit code is cut into m contiguous substrings (`starts`, `lengths` in bits). If two codes are within
radius r, at least one substring is within t = r // m bits (pigeonhole: were every substring t + 1 apart,
the total would be m(t + 1) > r). Probing, for each substring, every bucket whose key is within t bits of
the query's key therefore finds every match. A row found through substring s is reported only if no earlier
substring is within t (else it was reported there), which makes results unique without a hash set.

Per query, the kernel first sums the sizes of the buckets it would probe; when that exceeds
`scan_threshold` rows (skewed or clustered data, large radii) it scans all rows instead, which is cheaper.

`search_one` answers one query; `search_serial` and `search_parallel` run it over a batch on the calling
thread or on Numba's thread pool, and give identical results. `engine.index.multi_index` picks one by batch size.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from kernels.popcount_jit import popcount64


@numba.njit(cache=True, nogil=True)
def distance(a: Any, b: Any) -> Any:
    return popcount64(a[0] ^ b[0]) + popcount64(a[1] ^ b[1]) + popcount64(a[2] ^ b[2]) + popcount64(a[3] ^ b[3])


@numba.njit(cache=True, nogil=True)
def substring(words: Any, start: int, length: int) -> int:
    """Bits [start, start + length) of a (4,) uint64 code, bit 0 = lowest bit of word 0; length <= 32."""
    word = start >> 6
    offset = start & 63
    value = words[word] >> np.uint64(offset)
    if offset + length > 64:
        value |= words[word + 1] << np.uint64(64 - offset)
    return int(value & np.uint64((1 << length) - 1))


@numba.njit(cache=True, nogil=True)
def _found_earlier(query: Any, code: Any, starts: Any, lengths: Any, s: int, t: int) -> bool:
    for earlier in range(s):
        a = substring(query, starts[earlier], lengths[earlier])
        b = substring(code, starts[earlier], lengths[earlier])
        if popcount64(np.uint64(a ^ b)) <= t:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def search_one(
    q: int,
    queries: Any,
    words: Any,
    starts: Any,
    lengths: Any,
    ids: Any,
    offsets: Any,
    bases: Any,
    masks: Any,
    n_masks: Any,
    t: int,
    radius: int,
    scan_threshold: int,
    out_rows: Any,
    out_dist: Any,
    counts: Any,
) -> None:
    """Fill out_rows/out_dist[q, :cap] with query q's hits and counts[q] with its total (may exceed cap).

    `masks[s, :n_masks[s]]` are the probe masks of substring s; no masks at all means "scan every row".
    Bucket k of substring s spans ids[s, offsets[bases[s] + k] : offsets[bases[s] + k + 1]].
    Writes only row q of the outputs, so queries can run on any number of threads.
    """
    n_rows = words.shape[0]
    m = starts.shape[0]
    cap = out_rows.shape[1]
    total_probes = 0
    for s in range(n_masks.shape[0]):
        total_probes += n_masks[s]
    query = queries[q]
    found = 0
    # First pass: where each probed bucket lies, and how many rows they hold together.
    spans = np.empty((total_probes, 2), dtype=np.int64)
    estimate = 0
    probe = 0
    for s in range(n_masks.shape[0]):
        key = substring(query, starts[s], lengths[s])
        for j in range(n_masks[s]):
            bucket = bases[s] + (key ^ masks[s, j])
            spans[probe, 0] = offsets[bucket]
            spans[probe, 1] = offsets[bucket + 1]
            estimate += spans[probe, 1] - spans[probe, 0]
            probe += 1
    if total_probes == 0 or estimate > scan_threshold:
        for row in range(n_rows):
            d = distance(query, words[row])
            if d <= radius:
                if found < cap:
                    out_rows[q, found] = row
                    out_dist[q, found] = d
                found += 1
    else:
        probe = 0
        for s in range(m):
            for _ in range(n_masks[s]):
                for p in range(spans[probe, 0], spans[probe, 1]):
                    row = ids[s, p]
                    d = distance(query, words[row])
                    if d > radius or _found_earlier(query, words[row], starts, lengths, s, t):
                        continue
                    if found < cap:
                        out_rows[q, found] = row
                        out_dist[q, found] = d
                    found += 1
                probe += 1
    counts[q] = found


# Two entry points over the same per-query body, taking the same arguments as `search_one` less `q`. The
# serial one runs on the calling thread only: a parallel region waits for its slowest thread, and when another
# process holds one of the cores that thread can wait for a time slice, which may cost a small batch more than
# the second thread saves it (measured by benchmarks/test_bench_latency.py).


@numba.njit(cache=True, nogil=True)
def search_serial(
    queries: Any,
    words: Any,
    starts: Any,
    lengths: Any,
    ids: Any,
    offsets: Any,
    bases: Any,
    masks: Any,
    n_masks: Any,
    t: int,
    radius: int,
    scan_threshold: int,
    out_rows: Any,
    out_dist: Any,
    counts: Any,
) -> None:
    for q in range(queries.shape[0]):
        search_one(
            q, queries, words, starts, lengths, ids, offsets, bases, masks, n_masks, t, radius, scan_threshold,
            out_rows, out_dist, counts,
        )  # fmt: skip


@numba.njit(cache=True, nogil=True, parallel=True)
def search_parallel(
    queries: Any,
    words: Any,
    starts: Any,
    lengths: Any,
    ids: Any,
    offsets: Any,
    bases: Any,
    masks: Any,
    n_masks: Any,
    t: int,
    radius: int,
    scan_threshold: int,
    out_rows: Any,
    out_dist: Any,
    counts: Any,
) -> None:
    for q in numba.prange(queries.shape[0]):
        search_one(
            q, queries, words, starts, lengths, ids, offsets, bases, masks, n_masks, t, radius, scan_threshold,
            out_rows, out_dist, counts,
        )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def build_buckets(keys: Any, n_keys: int, ids_row: Any, offsets: Any) -> None:
    """Counting sort of one substring's keys: ids_row lists rows by key; offsets[k]..offsets[k+1] is bucket k."""
    offsets[:] = 0
    for row in range(keys.shape[0]):
        offsets[keys[row] + 1] += 1
    for k in range(1, n_keys + 1):
        offsets[k] += offsets[k - 1]
    cursor = offsets[:n_keys].copy()
    for row in range(keys.shape[0]):
        key = keys[row]
        ids_row[cursor[key]] = row
        cursor[key] += 1
