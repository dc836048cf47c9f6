"""What is matched: the hashes of one input (or hash text), whatever types it carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.signal_types.names import SignalType
from engine.signal_types.values import ParsedValue
from hashing.errors import ReasonCode
from hashing.exact import ExactDigests
from hashing.media_hasher import MediaHashes, MediaOutcome
from hashing.pdq_hash import PdqHash
from hashing.query_variants import QueryVariant


@dataclass(frozen=True)
class QueryHashes:
    """A PDQ hash (with quality, optionally its 8 dihedral variants and its query variants: content box,
    crops), exact digests, and the values of any other signal type (`others`, keyed by type: a video's vPDQ
    hash, say)."""

    pdq: PdqHash | None = None
    dihedral: tuple[PdqHash, ...] = ()  # empty, or 8 in DIHEDRAL_NAMES order (the first is `pdq`)
    md5: bytes | None = None
    sha1: bytes | None = None
    sha256: bytes | None = None
    variants: tuple[QueryVariant, ...] = ()  # hashing.query_variants; each with its own quality and region
    reasons: tuple[ReasonCode, ...] = ()  # why part of the query is missing, e.g. UNDECODABLE: no PDQ
    others: Mapping[SignalType, ParsedValue] = field(default_factory=dict, compare=False)

    @classmethod
    def of_digests(cls, digests: ExactDigests | None, **fields: Any) -> QueryHashes:
        """A query with these exact digests (none when None) and the other fields given."""
        if digests is None:
            return cls(**fields)
        return cls(
            md5=bytes.fromhex(digests.md5),
            sha1=bytes.fromhex(digests.sha1),
            sha256=bytes.fromhex(digests.sha256),
            **fields,
        )

    @classmethod
    def of_media(cls, hashes: MediaHashes) -> QueryHashes:
        return cls.of_digests(hashes.digests, pdq=hashes.pdq, dihedral=hashes.dihedral, variants=hashes.variants)

    @classmethod
    def of_outcome(cls, outcome: MediaOutcome) -> QueryHashes:
        """The digests always; the PDQ when there is one, else the reason there is none."""
        if outcome.hashes is not None:
            return cls.of_media(outcome.hashes)
        return cls.of_digests(outcome.digests, reasons=(outcome.error.reason,) if outcome.error else ())

    @property
    def identity(self) -> bytes | None:
        """The content this query stands for, as the flood guard counts uploads: its PDQ (copies of one picture
        with different bytes are one content), else a video's frame-hash identity, else its exact digests."""
        video = self.others.get(SignalType.VPDQ)
        for value in (self.pdq.digest if self.pdq else None, video.value if video else None, self.sha256):
            if value is not None:
                return value
        return self.md5 or self.sha1

    def exact(self) -> dict[SignalType, bytes]:
        pairs = ((SignalType.MD5, self.md5), (SignalType.SHA1, self.sha1), (SignalType.SHA256, self.sha256))
        return {signal: value for signal, value in pairs if value is not None}

    def below_quality(self, gate: int) -> bool:
        """A PDQ hash sent without its quality (some lists and edge hashers drop it) is not gated."""
        return self.pdq is not None and self.pdq.quality is not None and self.pdq.quality < gate
