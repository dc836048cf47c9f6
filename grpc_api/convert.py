"""Between the engine's records (Verdict, QueryHashes, MediaHashes) and the hashmatch.v1 messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.lists import ListAction
from engine.matcher import Decision, MatchedEntry, QueryHashes, Verdict
from engine.signals import ParsedValue, SignalType
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.errors import InvalidHashError, ReasonCode
from hashing.media_hasher import MediaHashes
from hashing.pdq_hash import PdqHash
from hashing.query_variants import MAX_VARIANTS, QueryVariant, Region, VariantFamily, is_variant_name
from hashing.vpdq import MAX_FRAMES, VpdqFeature, VpdqHash

_DECISIONS = {Decision.NO_MATCH: pb.NO_MATCH, Decision.MATCH: pb.MATCH, Decision.NEEDS_REVIEW: pb.NEEDS_REVIEW}
_FROM_PROTO_DECISIONS = {code: decision for decision, code in _DECISIONS.items()}
_DIGEST_LENGTHS = {"md5": 16, "sha1": 20, "sha256": 32}


def pdq_to_proto(value: PdqHash) -> pb.PdqHash:
    return pb.PdqHash(digest=value.digest, quality=value.quality or 0, has_quality=value.quality is not None)


def pdq_from_proto(message: pb.PdqHash) -> PdqHash:
    return PdqHash(bytes(message.digest), message.quality if message.has_quality else None)


def hashes_to_proto(query: QueryHashes) -> pb.Hashes:
    video = query.others.get(SignalType.VPDQ)
    return pb.Hashes(
        pdq=pdq_to_proto(query.pdq) if query.pdq else None,
        dihedral=[pdq_to_proto(h) for h in query.dihedral],
        md5=query.md5 or b"",
        sha1=query.sha1 or b"",
        sha256=query.sha256 or b"",
        vpdq=vpdq_to_proto(VpdqHash.from_bytes(video.payload)) if video and video.payload else None,
        variants=[
            pb.QueryVariant(
                name=v.name, family=v.family.value, hash=pdq_to_proto(v.hash), region=region_to_proto(v.region)
            )
            for v in query.variants
        ],
    )


def region_to_proto(region: Region | None) -> pb.Region | None:
    return None if region is None else pb.Region(x=region.x, y=region.y, width=region.width, height=region.height)


def region_from_proto(message: pb.Region) -> Region:
    if min(message.x, message.y) < 0 or min(message.width, message.height) < 1:
        raise InvalidHashError("a region has x, y >= 0 and a width and height of at least 1")
    return Region(message.x, message.y, message.width, message.height)


def _variant_from_proto(message: pb.QueryVariant) -> QueryVariant:
    """Validated: a known family and a name of it, a 32-byte PDQ with its quality (a variant is searched only
    over the quality gate, so one without a quality would be dropped unseen), and a region."""
    try:
        family = VariantFamily(message.family)
    except ValueError:
        raise InvalidHashError(f"unknown query variant family {message.family[:64]!r}") from None
    if not is_variant_name(message.name, family):
        raise InvalidHashError(f"{message.name[:64]!r} is not a {family.value} variant's name")
    if len(message.hash.digest) != 32 or not message.hash.has_quality or not 0 <= message.hash.quality <= 100:
        raise InvalidHashError(f"query variant {message.name}: a 32-byte PDQ hash with its quality (0..100)")
    if not message.HasField("region"):
        raise InvalidHashError(f"query variant {message.name}: the region it was hashed from")
    return QueryVariant(message.name, family, pdq_from_proto(message.hash), region_from_proto(message.region))


def vpdq_to_proto(video: VpdqHash) -> pb.VpdqHash:
    return pb.VpdqHash(
        frames=[
            pb.VpdqFrame(frame_number=f.frame_number, quality=f.quality, pdq=f.pdq.digest, timestamp=f.timestamp)
            for f in video.features
        ]
    )


def vpdq_from_proto(message: pb.VpdqHash) -> VpdqHash:
    """Validated; raises InvalidHashError (INVALID_HASH) on a bad frame."""
    if not message.frames or len(message.frames) > MAX_FRAMES:
        raise InvalidHashError(f"a vPDQ hash holds 1..{MAX_FRAMES} frames, got {len(message.frames)}")
    features = []
    for frame in message.frames:
        valid = len(frame.pdq) == 32 and 0 <= frame.quality <= 100 and frame.frame_number >= 0
        if not valid or not 0.0 <= frame.timestamp < 1e9:
            raise InvalidHashError(f"vPDQ frame {frame.frame_number}: a 32-byte PDQ, quality 0..100, time >= 0")
        features.append(
            VpdqFeature(frame.frame_number, PdqHash(bytes(frame.pdq), frame.quality), round(frame.timestamp, 3))
        )
    return VpdqHash(tuple(features))


def hashes_from_proto(message: pb.Hashes) -> QueryHashes:
    """Validated QueryHashes; raises InvalidHashError (INVALID_HASH) on wrong lengths."""
    for name, length in _DIGEST_LENGTHS.items():
        value = getattr(message, name)
        if value and len(value) != length:
            raise InvalidHashError(f"{name} must be {length} bytes, got {len(value)}")
    if message.dihedral and len(message.dihedral) != 8:
        raise InvalidHashError(f"dihedral holds 8 hashes or none, got {len(message.dihedral)}")
    pdq = pdq_from_proto(message.pdq) if message.HasField("pdq") else None
    dihedral = tuple(pdq_from_proto(h) for h in message.dihedral)
    if pdq is not None and dihedral and dihedral[0].digest != pdq.digest:
        raise InvalidHashError("the first dihedral hash must be the PDQ hash itself")
    if len(message.variants) > MAX_VARIANTS:
        raise InvalidHashError(f"at most {MAX_VARIANTS} query variants, got {len(message.variants)}")
    others: dict[SignalType, ParsedValue] = {}
    if message.HasField("vpdq"):
        video = vpdq_from_proto(message.vpdq)
        others[SignalType.VPDQ] = ParsedValue(video.identity(), video.to_bytes())
    return QueryHashes(
        pdq=pdq,
        dihedral=dihedral,
        md5=bytes(message.md5) or None,
        sha1=bytes(message.sha1) or None,
        sha256=bytes(message.sha256) or None,
        variants=tuple(_variant_from_proto(v) for v in message.variants),
        others=others,
    )


def media_hashes_to_proto(hashes: MediaHashes) -> pb.HashResponse:
    return pb.HashResponse(
        hashes=hashes_to_proto(QueryHashes.of_media(hashes)), width=hashes.width, height=hashes.height
    )


def _entry(match: MatchedEntry) -> pb.MatchedEntry:
    return pb.MatchedEntry(
        list=match.list_name,
        list_version=match.list_version,
        entry_id=match.entry_id,
        signal_type=match.signal_type.value,
        external_id=match.external_id or "",
        classification=match.classification or "",
        distance=match.distance,
        dihedral_variant=match.dihedral_variant or "",
        action=match.action.value,
        negative=match.negative,
        video=_video_evidence(match.evidence) if match.signal_type is SignalType.VPDQ and match.evidence else None,
        quarantined=match.quarantined,
        variant=match.variant or "",
        region=region_to_proto(match.region),
    )


def _video_evidence(evidence: Mapping[str, Any]) -> pb.VideoEvidence:
    return pb.VideoEvidence(
        rule=evidence["rule"],
        query_match_percent=evidence["query_match_percent"],
        compared_match_percent=evidence["compared_match_percent"],
        query_frames=evidence["query_frames"],
        compared_frames=evidence["compared_frames"],
        frame_pairs=[pb.FramePair(**pair) for pair in evidence["frame_pairs"]],
    )


def _evidence_from_proto(message: pb.MatchedEntry) -> dict[str, Any] | None:
    if not message.HasField("video"):
        return None
    video = message.video
    return {
        "rule": video.rule,
        "query_match_percent": video.query_match_percent,
        "compared_match_percent": video.compared_match_percent,
        "query_frames": video.query_frames,
        "compared_frames": video.compared_frames,
        "frame_pairs": [
            {
                "query_frame": p.query_frame,
                "query_time": p.query_time,
                "entry_frame": p.entry_frame,
                "entry_time": p.entry_time,
                "distance": p.distance,
            }
            for p in video.frame_pairs
        ],
    }


def verdict_to_proto(verdict: Verdict) -> pb.Verdict:
    return pb.Verdict(
        decision=_DECISIONS[verdict.decision],
        matches=[_entry(m) for m in verdict.matches],
        suppressed=[_entry(m) for m in verdict.suppressed],
        negative_matches=[_entry(m) for m in verdict.negative_matches],
        reasons=[r.value for r in verdict.reasons],
        query=hashes_to_proto(verdict.query),
        list_versions=verdict.list_versions,
        elapsed_ms=verdict.elapsed_ms,
        nearest=[_entry(m) for m in verdict.nearest or ()],
    )


def _entry_from_proto(message: pb.MatchedEntry, negative: bool) -> MatchedEntry:
    return MatchedEntry(
        list_name=message.list,
        list_version=message.list_version,
        entry_id=message.entry_id,
        signal_type=SignalType(message.signal_type),
        external_id=message.external_id or None,
        classification=message.classification or None,
        distance=message.distance,
        variant=message.variant or message.dihedral_variant or None,
        action=ListAction(message.action),
        negative=negative,
        evidence=_evidence_from_proto(message),
        quarantined=message.quarantined,
        region=region_from_proto(message.region) if message.HasField("region") else None,
    )


def verdict_from_proto(message: pb.Verdict, nearest: bool = False) -> Verdict:
    """The engine's Verdict of a server's answer: a client prints it exactly as a local verdict. `nearest`:
    the request asked for nearest entries (an empty list then means none, not "not asked")."""
    return Verdict(
        decision=_FROM_PROTO_DECISIONS[message.decision],
        matches=tuple(_entry_from_proto(m, False) for m in message.matches),
        query=hashes_from_proto(message.query),
        list_versions=dict(message.list_versions),
        suppressed=tuple(_entry_from_proto(m, False) for m in message.suppressed),
        negative_matches=tuple(_entry_from_proto(m, True) for m in message.negative_matches),
        reasons=tuple(ReasonCode(r) for r in message.reasons),
        elapsed_ms=message.elapsed_ms,
        nearest=tuple(_entry_from_proto(m, m.negative) for m in message.nearest) if nearest else None,
    )
