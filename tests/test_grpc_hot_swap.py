"""A client streams continuously while a new list version is activated: no failed item, verdicts switch to
the new version, and the old index's memory is returned once the swap is done."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.signals import SignalType
from engine.store import Store
from grpc_api.auth import Role, TokenStore
from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.server import ServerConfig, start_server
from hashing.media_hasher import MediaHasher
from tests.grpc_fixtures import BRIDGE, OTHER

ROWS = 1_000_000  # ~100 MB of index: large enough that a leaked old index shows in the process's memory


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def build_store(path: Path) -> None:
    rng = np.random.default_rng(5)
    background = "\n".join(bytes(row).hex() for row in rng.integers(0, 256, (ROWS, 32), dtype=np.uint8))
    bridge, other = (MediaHasher().hash_file(p).pdq.hex() for p in (BRIDGE, OTHER))
    with Store(path) as store:
        store.create_list(HashList("big", SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
        import_records(store, "big", records_from_text(f"{background}\n{bridge}\n", ImportFormat.PLAIN))
        import_records(
            store, "big", records_from_text(f"{background}\n{bridge}\n{other}\n", ImportFormat.PLAIN), activate=False
        )


def test_hot_swap_under_load(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    build_store(db)
    tokens = tmp_path / "tokens.json"
    token = TokenStore.add(tokens, "load", Role.MATCHER)
    admin_token = TokenStore.add(tokens, "admin", Role.ADMIN)
    running = start_server(ServerConfig(db_path=db, address="127.0.0.1:0", tokens_path=tokens))
    address = f"127.0.0.1:{running.port}"
    media = OTHER.read_bytes()
    results: list[tuple[int, int]] = []  # (decision, version) per request, in order
    failures: list[BaseException] = []
    stop = threading.Event()

    def uploads() -> Iterator[tuple[str, bytes]]:
        number = 0
        while not stop.is_set():
            number += 1
            yield (str(number), media)
            time.sleep(0.002)

    def load() -> None:
        """One long MatchStream, as a platform's intake would hold open."""
        try:
            with HashmatchClient(address, token) as client:
                for response in client.match_stream(uploads()):
                    if response.HasField("error"):
                        failures.append(RuntimeError(response.error.reason))
                    else:
                        verdict = response.verdict
                        results.append((verdict.decision, verdict.list_versions["big"]))
        except BaseException as exc:  # every failure is a test failure
            failures.append(exc)

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(results) < count and not failures:
            assert time.monotonic() < deadline, f"only {len(results)} answers"
            time.sleep(0.01)

    try:
        with HashmatchClient(address, token) as warm:
            for _ in range(20):
                warm.match(media)
        gc.collect()
        baseline = resident_bytes()
        worker = threading.Thread(target=load)
        worker.start()
        wait_for(30)
        with HashmatchClient(address, admin_token) as admin:
            assert dict(admin.activate("big", 2).serving_versions) == {"big": 2}
        wait_for(len(results) + 30)
        stop.set()
        worker.join()
        gc.collect()
        after = resident_bytes()
    finally:
        stop.set()
        running.stop(1)
    assert failures == []
    versions = [version for _, version in results]
    switch = versions.index(2)
    assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2}  # one switch, never back
    assert all(decision == pb.NO_MATCH for decision, version in results if version == 1)
    assert all(decision == pb.MATCH for decision, version in results if version == 2)
    # The old index (~100 MB) is gone: the process holds about what it held before the swap. Alone this
    # measures 6-12 MiB; one full run in a fresh clone measured 42 (cause not pinned down: not reproduced in
    # the same order of tests). A kept old index would add over 90.
    assert after - baseline < 64 * 1024 * 1024, f"{(after - baseline) / 2**20:.0f} MiB more after the swap"
