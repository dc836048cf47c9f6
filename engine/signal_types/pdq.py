"""PDQ: 256-bit perceptual image hashes, matched by Hamming distance, on the index backends of engine.index
(brute force, FAISS, the multi-index, the GPU), with a query's 8 rotations and flips where it carries them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.index.base import HashIndex
from engine.index.factory import IndexBackend, build_index
from engine.query import QueryHashes
from engine.signal_types.hex_values import parse_hex
from engine.signal_types.names import SignalType
from engine.signal_types.spec import Comparison, LiveSignals, SearchRequest, SignalHit, SignalIndex, SignalSpec
from engine.signal_types.values import ParsedValue, SignalValueError
from hashing.errors import ReasonCode
from hashing.pdq import DIHEDRAL_NAMES
from hashing.pdq_hash import PdqHash
from hashing.query_variants import Region
from kernels.runtime import KernelRuntime

PDQ_BYTES = 32
_ZERO = bytes(PDQ_BYTES)
# Every variant searched is one more chance for a chance match, so variants are held to more than the query's
# own hash. Rotations and flips hashed from the pixels are exact: a rotated or mirrored copy meets its listed
# hash at the distance its re-encoding alone gives. In the robustness study (README) the rotations and flips
# of distinct images with rotational symmetry (tiles of a fundus photo) came within 12-30 bits of one another,
# and nothing else did: the default keeps them 10 bits or closer. The content box and the crops added no false
# match at the list's own threshold and keep it.
DIHEDRAL_THRESHOLD = 10
# A query whose own PDQ is under this quality (a flat or nearly flat image: its hash is close to noise) is
# matched on that hash alone, whatever the quality gate: its variants would be noise multiplied.
VARIANT_MIN_QUALITY = 50


class PdqIndex(SignalIndex):
    """Row i of `index` is entry `entry_ids[i]`."""

    def __init__(self, index: HashIndex, entry_ids: np.ndarray) -> None:
        self.index = index
        self.entry_ids = entry_ids

    def __len__(self) -> int:
        return len(self.index)

    def search(self, request: SearchRequest) -> list[SignalHit]:
        codes, owners, variants = query_codes(request)
        if not len(codes) or not len(self.index):
            return []
        found = self.index.search(codes, request.threshold)
        hits: list[SignalHit] = []
        for row in range(found.n_queries):
            rows, distances = found.for_query(row)
            name, region = variants[row]
            limit = request.dihedral_threshold if name in _ROTATED else request.threshold
            for hit_row, distance in zip(rows.tolist(), distances.tolist(), strict=True):
                if distance <= limit:
                    entry_id = int(self.entry_ids[hit_row])
                    hits.append(SignalHit(owners[row], entry_id, int(distance), name, region=region))
        return hits

    def nearest(self, request: SearchRequest, k: int) -> list[SignalHit]:
        """Each query's k closest entries over all its variants, ties settled by row as the index settles
        them: the k best of each variant's k best are the k best of their union."""
        codes, owners, variants = query_codes(request)
        if not len(codes) or not len(self.index):
            return []
        found = self.index.nearest(codes, k)
        best: list[dict[int, tuple[int, VariantTag]]] = [{} for _ in request.queries]
        for code_row in range(len(codes)):
            per_entry = best[owners[code_row]]
            for row, distance in zip(found.rows[code_row].tolist(), found.distances[code_row].tolist(), strict=True):
                if row not in per_entry or distance < per_entry[row][0]:
                    per_entry[row] = (distance, variants[code_row])
        hits: list[SignalHit] = []
        for q, per_entry in enumerate(best):
            closest = sorted(per_entry.items(), key=lambda item: (item[1][0], item[0]))[:k]
            hits.extend(SignalHit(q, int(self.entry_ids[row]), d, tag[0], region=tag[1]) for row, (d, tag) in closest)
        return hits


VariantTag = tuple[str | None, Region | None]  # a searched code's variant name and the query region it came from
_ROTATED = frozenset(DIHEDRAL_NAMES[1:])


def query_codes(request: SearchRequest) -> tuple[np.ndarray, list[int], list[VariantTag]]:
    """Stack every query's PDQ code (or its 8 dihedral variants) and its query variants for one search;
    remember owner and variant. A query variant under the quality gate (or under VARIANT_MIN_QUALITY) is left
    out: a flat region's hash is noise, and noise is what false matches are made of."""
    rows: list[bytes] = []
    owners: list[int] = []
    variants: list[VariantTag] = []
    variant_gate = max(request.quality_gate, VARIANT_MIN_QUALITY)
    for q, query in enumerate(request.queries):
        if query.pdq is None or request.below_quality_gate[q]:
            continue
        with_variants = query.pdq.quality is None or query.pdq.quality >= VARIANT_MIN_QUALITY
        if query.dihedral and request.dihedral and with_variants:
            for name, variant in zip(DIHEDRAL_NAMES, query.dihedral, strict=True):
                rows.append(variant.digest)
                owners.append(q)
                variants.append((name, None))
        else:
            rows.append(query.pdq.digest)
            owners.append(q)
            variants.append((None, None))
        for extra in query.variants if with_variants else ():
            if extra.family in request.variants and (extra.hash.quality or 0) >= variant_gate:
                rows.append(extra.hash.digest)
                owners.append(q)
                variants.append((extra.name, extra.region))
    codes = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), PDQ_BYTES)
    return codes, owners, variants


@dataclass(frozen=True)
class PdqSpec(SignalSpec):
    signal: SignalType = SignalType.PDQ
    aliases: tuple[str, ...] = ("pdq", "imagepdq", "photo_pdq", "pdq_hash")
    value_width: int = PDQ_BYTES
    perceptual: bool = True
    default_threshold: int = 31

    def parse(self, text: str) -> ParsedValue:
        raw = parse_hex(self.signal, text, PDQ_BYTES)
        if raw == _ZERO:
            raise SignalValueError(ReasonCode.ZERO_PDQ, "the all-zero PDQ hash (images under 5 px) matches nothing")
        return ParsedValue(raw)

    def format(self, value: ParsedValue) -> str:
        return value.value.hex()

    def compare(self, query: ParsedValue, entry: ParsedValue, threshold: int) -> Comparison:
        distance = PdqHash(query.value).distance(PdqHash(entry.value))
        return Comparison(distance <= threshold, distance)

    def query_value(self, query: QueryHashes) -> ParsedValue | None:
        return None if query.pdq is None else ParsedValue(query.pdq.digest)

    def query_of(self, value: ParsedValue) -> QueryHashes:
        """Bare PDQ hashes carry no quality, so the quality gate does not apply to them."""
        return QueryHashes(pdq=PdqHash(value.value))

    def build_index(
        self,
        live: LiveSignals,
        threshold: int,
        backend: IndexBackend | str = IndexBackend.AUTO,
        gpu: KernelRuntime | None = None,
    ) -> SignalIndex:
        return PdqIndex(build_index(live.values, threshold, backend, gpu), live.entry_ids)


PDQ = PdqSpec()
