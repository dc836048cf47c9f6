"""Media bytes or files -> every hash hashmatch matches on: PDQ (with dihedral variants) and exact digests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from hashing.decode import (
    DecodeOptions,
    decode_cost,
    decode_luma_jpeg,
    decode_rgb,
    open_media_file,
    read_media_file,
)
from hashing.decode_budget import DecodeBudget
from hashing.errors import MediaError, ReasonCode
from hashing.exact import ExactDigests
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, ImageHasher, PdqContract, PdqHasher
from hashing.query_variants import QueryVariant, VariantFamily, plan_variants, variants_of


@dataclass(frozen=True)
class HashOptions:
    contract: PdqContract = PdqContract.FULLRES
    dihedral: DihedralMode = DihedralMode.NONE
    # Query variants (content box, crops) to hash beside the PDQ, full-resolution contract only; the `hash`
    # command computes none, `match`, `scan` and the service all (hashing.query_variants).
    variants: frozenset[VariantFamily] = frozenset()
    # Opt-in: hash the JPEG's own Y plane instead of luma from RGB. Faster, drifts a bit or two.
    fast_luma: bool = False
    exact_digests: bool = True
    decode: DecodeOptions = field(default_factory=DecodeOptions)


@dataclass(frozen=True, slots=True)
class MediaHashes:
    pdq: PdqHash
    width: int
    height: int
    dihedral: tuple[PdqHash, ...] = ()
    digests: ExactDigests | None = None
    variants: tuple[QueryVariant, ...] = ()
    exact_pdq: bool = True  # False when the fast luma path produced the PDQ


@dataclass(frozen=True, slots=True)
class MediaOutcome:
    """Everything one input gives for matching. Exact digests come from its bytes whenever they could be
    read, also when the media cannot be decoded or is over the decode limits: a listed MD5 of a video or of a
    damaged file still matches. `hashes` is None exactly when `error` says why there is no PDQ."""

    digests: ExactDigests
    hashes: MediaHashes | None = None
    error: MediaError | None = None


class MediaHasher:
    """Decodes in memory (nothing is written to disk) and hashes. Safe to share between threads."""

    def __init__(
        self, options: HashOptions | None = None, pdq: ImageHasher | None = None, budget: DecodeBudget | None = None
    ) -> None:
        """With a `budget`, each decode first reserves its estimated peak memory (a server's guard against
        uploads that are small on the wire and huge decoded): OverloadedError when it cannot in time."""
        self.options = options or HashOptions()
        self.pdq: ImageHasher = pdq or PdqHasher()
        self.budget = budget

    def hash_file(self, path: str | os.PathLike[str]) -> MediaHashes:
        return self.hash_bytes(read_media_file(path, self.options.decode.limits))

    def hash_bytes(self, data: bytes) -> MediaHashes:
        digests = ExactDigests.of(data) if self.options.exact_digests else None
        return self._hash_pixels(data, digests)

    def outcome_of_bytes(self, data: bytes) -> MediaOutcome:
        """Digests always; the PDQ unless decoding fails. Raises MediaError only for empty input."""
        if not data:
            raise MediaError(ReasonCode.EMPTY_INPUT, "no bytes to hash")
        digests = ExactDigests.of(data)
        try:
            return MediaOutcome(digests, self._hash_pixels(data, digests))
        except MediaError as exc:
            return MediaOutcome(digests, None, exc)

    def outcome_of_file(self, path: str | os.PathLike[str]) -> MediaOutcome:
        """As outcome_of_bytes, for a file. A file over the byte limit is not decoded, but its digests are
        still computed by streaming it (bounded memory). Raises MediaError when it cannot be read at all."""
        limit = self.options.decode.limits.max_bytes
        with open_media_file(path) as handle:
            oversized = os.fstat(handle.fileno()).st_size > limit
            data = b"" if oversized else handle.read(limit + 1)
            if oversized or len(data) > limit:  # (or it grew while read)
                digests = ExactDigests.of_stream(handle, first=data)
                too_large = MediaError(ReasonCode.TOO_LARGE, f"{digests.size} bytes is over the limit of {limit}")
                return MediaOutcome(digests, None, too_large)
        return self.outcome_of_bytes(data)

    def _hash_pixels(self, data: bytes, digests: ExactDigests | None) -> MediaHashes:
        if self.budget is None:
            return self._decode_and_hash(data, digests)
        with self.budget.reserve(decode_cost(data, self.options.decode)):
            return self._decode_and_hash(data, digests)

    def _decode_and_hash(self, data: bytes, digests: ExactDigests | None) -> MediaHashes:
        options = self.options
        pixels: np.ndarray | None = None
        if options.fast_luma and options.contract is PdqContract.FULLRES:
            pixels = decode_luma_jpeg(data, options.decode)
        exact = pixels is None
        if pixels is None:
            pixels = decode_rgb(data, options.decode)
        result = self.pdq.hash_image(pixels, options.contract, options.dihedral)
        variants: tuple[QueryVariant, ...] = ()
        if options.variants and options.contract is PdqContract.FULLRES:
            plans = plan_variants(pixels, options.variants)
            variants = variants_of(plans, self.pdq.hash_variants(pixels, plans))
        return MediaHashes(
            pdq=result.hash,
            width=int(pixels.shape[1]),
            height=int(pixels.shape[0]),
            dihedral=result.dihedral,
            digests=digests,
            exact_pdq=exact,
            variants=variants,
        )
