"""Exact digests of the file's bytes (MD5, SHA-1, SHA-256): equal or not, looked up in a hash table."""

from __future__ import annotations

from dataclasses import dataclass

from engine.index.factory import IndexBackend
from engine.query import QueryHashes
from engine.signal_types.hex_values import parse_hex
from engine.signal_types.names import SignalType
from engine.signal_types.spec import Comparison, LiveSignals, SearchRequest, SignalHit, SignalIndex, SignalSpec
from engine.signal_types.values import ParsedValue
from kernels.runtime import KernelRuntime


class ExactIndex(SignalIndex):
    def __init__(self, signal: SignalType, live: LiveSignals, width: int) -> None:
        self.signal = signal
        self.table: dict[bytes, list[int]] = {}
        blob = live.values.tobytes()
        for i, entry_id in enumerate(live.entry_ids.tolist()):
            self.table.setdefault(blob[i * width : (i + 1) * width], []).append(entry_id)
        self.size = len(live.entry_ids)

    def __len__(self) -> int:
        return self.size

    def search(self, request: SearchRequest) -> list[SignalHit]:
        hits: list[SignalHit] = []
        for q, query in enumerate(request.queries):
            value = query.exact().get(self.signal)
            if value is not None:
                hits.extend(SignalHit(q, entry_id, 0) for entry_id in self.table.get(value, ()))
        return hits


@dataclass(frozen=True)
class ExactDigestSpec(SignalSpec):
    signal: SignalType
    aliases: tuple[str, ...]
    value_width: int
    perceptual: bool = False

    def parse(self, text: str) -> ParsedValue:
        return ParsedValue(parse_hex(self.signal, text, self.value_width))

    def format(self, value: ParsedValue) -> str:
        return value.value.hex()

    def compare(self, query: ParsedValue, entry: ParsedValue, threshold: int) -> Comparison:
        return Comparison(query.value == entry.value, 0 if query.value == entry.value else 8 * self.value_width)

    def query_value(self, query: QueryHashes) -> ParsedValue | None:
        value = query.exact().get(self.signal)
        return None if value is None else ParsedValue(value)

    def query_of(self, value: ParsedValue) -> QueryHashes:
        if self.signal is SignalType.MD5:
            return QueryHashes(md5=value.value)
        if self.signal is SignalType.SHA1:
            return QueryHashes(sha1=value.value)
        return QueryHashes(sha256=value.value)

    def build_index(
        self,
        live: LiveSignals,
        threshold: int,
        backend: IndexBackend | str = IndexBackend.AUTO,
        gpu: KernelRuntime | None = None,
    ) -> SignalIndex:
        return ExactIndex(self.signal, live, self.value_width)


MD5 = ExactDigestSpec(SignalType.MD5, ("md5", "videomd5", "imagemd5", "photo_md5", "video_md5"), 16)
SHA1 = ExactDigestSpec(SignalType.SHA1, ("sha1", "sha-1"), 20)
SHA256 = ExactDigestSpec(SignalType.SHA256, ("sha256", "sha-256"), 32)
