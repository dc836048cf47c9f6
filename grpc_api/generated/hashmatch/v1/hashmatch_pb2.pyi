from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    NO_MATCH: _ClassVar[Decision]
    MATCH: _ClassVar[Decision]
    NEEDS_REVIEW: _ClassVar[Decision]
DECISION_UNSPECIFIED: Decision
NO_MATCH: Decision
MATCH: Decision
NEEDS_REVIEW: Decision

class ClientMetadata(_message.Message):
    __slots__ = ("upload_id", "fields", "user_id")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    fields: _containers.ScalarMap[str, str]
    user_id: str
    def __init__(self, upload_id: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., user_id: _Optional[str] = ...) -> None: ...

class MatchOptions(_message.Message):
    __slots__ = ("lists", "no_dihedral", "quality_gate", "nearest", "video_rule", "video_query_percent", "video_compared_percent", "no_content_box", "no_crops", "dihedral_threshold")
    LISTS_FIELD_NUMBER: _ClassVar[int]
    NO_DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    QUALITY_GATE_FIELD_NUMBER: _ClassVar[int]
    NEAREST_FIELD_NUMBER: _ClassVar[int]
    VIDEO_RULE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_QUERY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_COMPARED_PERCENT_FIELD_NUMBER: _ClassVar[int]
    NO_CONTENT_BOX_FIELD_NUMBER: _ClassVar[int]
    NO_CROPS_FIELD_NUMBER: _ClassVar[int]
    DIHEDRAL_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    lists: _containers.RepeatedScalarFieldContainer[str]
    no_dihedral: bool
    quality_gate: int
    nearest: int
    video_rule: str
    video_query_percent: float
    video_compared_percent: float
    no_content_box: bool
    no_crops: bool
    dihedral_threshold: int
    def __init__(self, lists: _Optional[_Iterable[str]] = ..., no_dihedral: _Optional[bool] = ..., quality_gate: _Optional[int] = ..., nearest: _Optional[int] = ..., video_rule: _Optional[str] = ..., video_query_percent: _Optional[float] = ..., video_compared_percent: _Optional[float] = ..., no_content_box: _Optional[bool] = ..., no_crops: _Optional[bool] = ..., dihedral_threshold: _Optional[int] = ...) -> None: ...

class VideoChunk(_message.Message):
    __slots__ = ("client_id", "metadata", "options", "data")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    metadata: ClientMetadata
    options: MatchOptions
    data: bytes
    def __init__(self, client_id: _Optional[str] = ..., metadata: _Optional[_Union[ClientMetadata, _Mapping]] = ..., options: _Optional[_Union[MatchOptions, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class MatchRequest(_message.Message):
    __slots__ = ("client_id", "media", "metadata", "options")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    media: bytes
    metadata: ClientMetadata
    options: MatchOptions
    def __init__(self, client_id: _Optional[str] = ..., media: _Optional[bytes] = ..., metadata: _Optional[_Union[ClientMetadata, _Mapping]] = ..., options: _Optional[_Union[MatchOptions, _Mapping]] = ...) -> None: ...

class PdqHash(_message.Message):
    __slots__ = ("digest", "quality", "has_quality")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    HAS_QUALITY_FIELD_NUMBER: _ClassVar[int]
    digest: bytes
    quality: int
    has_quality: bool
    def __init__(self, digest: _Optional[bytes] = ..., quality: _Optional[int] = ..., has_quality: _Optional[bool] = ...) -> None: ...

class Hashes(_message.Message):
    __slots__ = ("pdq", "dihedral", "md5", "sha1", "sha256", "vpdq", "variants")
    PDQ_FIELD_NUMBER: _ClassVar[int]
    DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA1_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    VPDQ_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    pdq: PdqHash
    dihedral: _containers.RepeatedCompositeFieldContainer[PdqHash]
    md5: bytes
    sha1: bytes
    sha256: bytes
    vpdq: VpdqHash
    variants: _containers.RepeatedCompositeFieldContainer[QueryVariant]
    def __init__(self, pdq: _Optional[_Union[PdqHash, _Mapping]] = ..., dihedral: _Optional[_Iterable[_Union[PdqHash, _Mapping]]] = ..., md5: _Optional[bytes] = ..., sha1: _Optional[bytes] = ..., sha256: _Optional[bytes] = ..., vpdq: _Optional[_Union[VpdqHash, _Mapping]] = ..., variants: _Optional[_Iterable[_Union[QueryVariant, _Mapping]]] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class QueryVariant(_message.Message):
    __slots__ = ("name", "family", "hash", "region")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    name: str
    family: str
    hash: PdqHash
    region: Region
    def __init__(self, name: _Optional[str] = ..., family: _Optional[str] = ..., hash: _Optional[_Union[PdqHash, _Mapping]] = ..., region: _Optional[_Union[Region, _Mapping]] = ...) -> None: ...

class VpdqFrame(_message.Message):
    __slots__ = ("frame_number", "quality", "pdq", "timestamp")
    FRAME_NUMBER_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    PDQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    frame_number: int
    quality: int
    pdq: bytes
    timestamp: float
    def __init__(self, frame_number: _Optional[int] = ..., quality: _Optional[int] = ..., pdq: _Optional[bytes] = ..., timestamp: _Optional[float] = ...) -> None: ...

class VpdqHash(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[VpdqFrame]
    def __init__(self, frames: _Optional[_Iterable[_Union[VpdqFrame, _Mapping]]] = ...) -> None: ...

class FramePair(_message.Message):
    __slots__ = ("query_frame", "query_time", "entry_frame", "entry_time", "distance")
    QUERY_FRAME_FIELD_NUMBER: _ClassVar[int]
    QUERY_TIME_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FRAME_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TIME_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    query_frame: int
    query_time: float
    entry_frame: int
    entry_time: float
    distance: int
    def __init__(self, query_frame: _Optional[int] = ..., query_time: _Optional[float] = ..., entry_frame: _Optional[int] = ..., entry_time: _Optional[float] = ..., distance: _Optional[int] = ...) -> None: ...

class VideoEvidence(_message.Message):
    __slots__ = ("rule", "query_match_percent", "compared_match_percent", "query_frames", "compared_frames", "frame_pairs")
    RULE_FIELD_NUMBER: _ClassVar[int]
    QUERY_MATCH_PERCENT_FIELD_NUMBER: _ClassVar[int]
    COMPARED_MATCH_PERCENT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FRAMES_FIELD_NUMBER: _ClassVar[int]
    COMPARED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAME_PAIRS_FIELD_NUMBER: _ClassVar[int]
    rule: str
    query_match_percent: float
    compared_match_percent: float
    query_frames: int
    compared_frames: int
    frame_pairs: _containers.RepeatedCompositeFieldContainer[FramePair]
    def __init__(self, rule: _Optional[str] = ..., query_match_percent: _Optional[float] = ..., compared_match_percent: _Optional[float] = ..., query_frames: _Optional[int] = ..., compared_frames: _Optional[int] = ..., frame_pairs: _Optional[_Iterable[_Union[FramePair, _Mapping]]] = ...) -> None: ...

class MatchedEntry(_message.Message):
    __slots__ = ("list", "list_version", "entry_id", "signal_type", "external_id", "classification", "distance", "dihedral_variant", "action", "negative", "video", "quarantined", "variant", "region")
    LIST_FIELD_NUMBER: _ClassVar[int]
    LIST_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    DIHEDRAL_VARIANT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    list: str
    list_version: int
    entry_id: int
    signal_type: str
    external_id: str
    classification: str
    distance: int
    dihedral_variant: str
    action: str
    negative: bool
    video: VideoEvidence
    quarantined: bool
    variant: str
    region: Region
    def __init__(self, list: _Optional[str] = ..., list_version: _Optional[int] = ..., entry_id: _Optional[int] = ..., signal_type: _Optional[str] = ..., external_id: _Optional[str] = ..., classification: _Optional[str] = ..., distance: _Optional[int] = ..., dihedral_variant: _Optional[str] = ..., action: _Optional[str] = ..., negative: _Optional[bool] = ..., video: _Optional[_Union[VideoEvidence, _Mapping]] = ..., quarantined: _Optional[bool] = ..., variant: _Optional[str] = ..., region: _Optional[_Union[Region, _Mapping]] = ...) -> None: ...

class Verdict(_message.Message):
    __slots__ = ("decision", "matches", "suppressed", "negative_matches", "reasons", "query", "list_versions", "elapsed_ms", "media_error", "nearest")
    class ListVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DECISION_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_MATCHES_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIST_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ERROR_FIELD_NUMBER: _ClassVar[int]
    NEAREST_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    matches: _containers.RepeatedCompositeFieldContainer[MatchedEntry]
    suppressed: _containers.RepeatedCompositeFieldContainer[MatchedEntry]
    negative_matches: _containers.RepeatedCompositeFieldContainer[MatchedEntry]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    query: Hashes
    list_versions: _containers.ScalarMap[str, int]
    elapsed_ms: float
    media_error: Error
    nearest: _containers.RepeatedCompositeFieldContainer[MatchedEntry]
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., matches: _Optional[_Iterable[_Union[MatchedEntry, _Mapping]]] = ..., suppressed: _Optional[_Iterable[_Union[MatchedEntry, _Mapping]]] = ..., negative_matches: _Optional[_Iterable[_Union[MatchedEntry, _Mapping]]] = ..., reasons: _Optional[_Iterable[str]] = ..., query: _Optional[_Union[Hashes, _Mapping]] = ..., list_versions: _Optional[_Mapping[str, int]] = ..., elapsed_ms: _Optional[float] = ..., media_error: _Optional[_Union[Error, _Mapping]] = ..., nearest: _Optional[_Iterable[_Union[MatchedEntry, _Mapping]]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("reason", "detail")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    reason: str
    detail: str
    def __init__(self, reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class MatchResponse(_message.Message):
    __slots__ = ("client_id", "metadata", "verdict", "error")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    metadata: ClientMetadata
    verdict: Verdict
    error: Error
    def __init__(self, client_id: _Optional[str] = ..., metadata: _Optional[_Union[ClientMetadata, _Mapping]] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class HashQuery(_message.Message):
    __slots__ = ("client_id", "hashes", "metadata")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    hashes: Hashes
    metadata: ClientMetadata
    def __init__(self, client_id: _Optional[str] = ..., hashes: _Optional[_Union[Hashes, _Mapping]] = ..., metadata: _Optional[_Union[ClientMetadata, _Mapping]] = ...) -> None: ...

class MatchHashesRequest(_message.Message):
    __slots__ = ("queries", "options")
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[HashQuery]
    options: MatchOptions
    def __init__(self, queries: _Optional[_Iterable[_Union[HashQuery, _Mapping]]] = ..., options: _Optional[_Union[MatchOptions, _Mapping]] = ...) -> None: ...

class MatchHashesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MatchResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[MatchResponse, _Mapping]]] = ...) -> None: ...

class HashRequest(_message.Message):
    __slots__ = ("media", "dihedral")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    media: bytes
    dihedral: bool
    def __init__(self, media: _Optional[bytes] = ..., dihedral: _Optional[bool] = ...) -> None: ...

class HashResponse(_message.Message):
    __slots__ = ("hashes", "width", "height")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    hashes: Hashes
    width: int
    height: int
    def __init__(self, hashes: _Optional[_Union[Hashes, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class ImportListRequest(_message.Message):
    __slots__ = ("list", "content", "format", "mode", "activate", "source", "signal_types", "threshold", "action", "negative", "allow_shrink")
    LIST_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SHRINK_FIELD_NUMBER: _ClassVar[int]
    list: str
    content: bytes
    format: str
    mode: str
    activate: bool
    source: str
    signal_types: _containers.RepeatedScalarFieldContainer[str]
    threshold: int
    action: str
    negative: bool
    allow_shrink: bool
    def __init__(self, list: _Optional[str] = ..., content: _Optional[bytes] = ..., format: _Optional[str] = ..., mode: _Optional[str] = ..., activate: _Optional[bool] = ..., source: _Optional[str] = ..., signal_types: _Optional[_Iterable[str]] = ..., threshold: _Optional[int] = ..., action: _Optional[str] = ..., negative: _Optional[bool] = ..., allow_shrink: _Optional[bool] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("hash", "signal_type", "external_id", "classification")
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    hash: str
    signal_type: str
    external_id: str
    classification: str
    def __init__(self, hash: _Optional[str] = ..., signal_type: _Optional[str] = ..., external_id: _Optional[str] = ..., classification: _Optional[str] = ...) -> None: ...

class EntriesRequest(_message.Message):
    __slots__ = ("list", "entries")
    LIST_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    list: str
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    def __init__(self, list: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ...) -> None: ...

class RejectedLine(_message.Message):
    __slots__ = ("line", "reason", "detail")
    LINE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    line: int
    reason: str
    detail: str
    def __init__(self, line: _Optional[int] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ImportListResponse(_message.Message):
    __slots__ = ("list", "version", "added", "changed", "unchanged", "removed", "total", "rejects")
    LIST_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    REJECTS_FIELD_NUMBER: _ClassVar[int]
    list: str
    version: int
    added: int
    changed: int
    unchanged: int
    removed: int
    total: int
    rejects: _containers.RepeatedCompositeFieldContainer[RejectedLine]
    def __init__(self, list: _Optional[str] = ..., version: _Optional[int] = ..., added: _Optional[int] = ..., changed: _Optional[int] = ..., unchanged: _Optional[int] = ..., removed: _Optional[int] = ..., total: _Optional[int] = ..., rejects: _Optional[_Iterable[_Union[RejectedLine, _Mapping]]] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: str
    def __init__(self, list: _Optional[str] = ...) -> None: ...

class ListVersion(_message.Message):
    __slots__ = ("version", "created_at", "kind", "added", "removed", "total", "rejected", "active")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    version: int
    created_at: str
    kind: str
    added: int
    removed: int
    total: int
    rejected: int
    active: bool
    def __init__(self, version: _Optional[int] = ..., created_at: _Optional[str] = ..., kind: _Optional[str] = ..., added: _Optional[int] = ..., removed: _Optional[int] = ..., total: _Optional[int] = ..., rejected: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ListVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ListVersion, _Mapping]]] = ...) -> None: ...

class ActivateRequest(_message.Message):
    __slots__ = ("list", "version")
    LIST_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    list: str
    version: int
    def __init__(self, list: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ActivateResponse(_message.Message):
    __slots__ = ("serving_versions",)
    class ServingVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SERVING_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    serving_versions: _containers.ScalarMap[str, int]
    def __init__(self, serving_versions: _Optional[_Mapping[str, int]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStatus(_message.Message):
    __slots__ = ("name", "active_version", "serving_version", "entries")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    active_version: int
    serving_version: int
    entries: int
    def __init__(self, name: _Optional[str] = ..., active_version: _Optional[int] = ..., serving_version: _Optional[int] = ..., entries: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("lists", "version")
    LISTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    lists: _containers.RepeatedCompositeFieldContainer[ListStatus]
    version: str
    def __init__(self, lists: _Optional[_Iterable[_Union[ListStatus, _Mapping]]] = ..., version: _Optional[str] = ...) -> None: ...

class ChangeSettingsRequest(_message.Message):
    __slots__ = ("list", "threshold", "action", "query_variants")
    LIST_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    list: str
    threshold: int
    action: str
    query_variants: bool
    def __init__(self, list: _Optional[str] = ..., threshold: _Optional[int] = ..., action: _Optional[str] = ..., query_variants: _Optional[bool] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("list", "entry_id", "kind", "note", "disable", "referral_id", "viewed")
    LIST_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    DISABLE_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    VIEWED_FIELD_NUMBER: _ClassVar[int]
    list: str
    entry_id: int
    kind: str
    note: str
    disable: bool
    referral_id: str
    viewed: bool
    def __init__(self, list: _Optional[str] = ..., entry_id: _Optional[int] = ..., kind: _Optional[str] = ..., note: _Optional[str] = ..., disable: _Optional[bool] = ..., referral_id: _Optional[str] = ..., viewed: _Optional[bool] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("feedback_id", "disabled_version")
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    DISABLED_VERSION_FIELD_NUMBER: _ClassVar[int]
    feedback_id: int
    disabled_version: int
    def __init__(self, feedback_id: _Optional[int] = ..., disabled_version: _Optional[int] = ...) -> None: ...

class HeldEntriesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeldEntry(_message.Message):
    __slots__ = ("entry_id", "list", "since", "detail")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    list: str
    since: str
    detail: str
    def __init__(self, entry_id: _Optional[int] = ..., list: _Optional[str] = ..., since: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class HeldEntriesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HeldEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HeldEntry, _Mapping]]] = ...) -> None: ...

class ReleaseEntryRequest(_message.Message):
    __slots__ = ("entry_id",)
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    def __init__(self, entry_id: _Optional[int] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("since",)
    SINCE_FIELD_NUMBER: _ClassVar[int]
    since: str
    def __init__(self, since: _Optional[str] = ...) -> None: ...

class JsonLines(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lines: _Optional[_Iterable[str]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("since", "by", "min_cell")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    MIN_CELL_FIELD_NUMBER: _ClassVar[int]
    since: str
    by: _containers.RepeatedScalarFieldContainer[str]
    min_cell: int
    def __init__(self, since: _Optional[str] = ..., by: _Optional[_Iterable[str]] = ..., min_cell: _Optional[int] = ...) -> None: ...

class StatsCell(_message.Message):
    __slots__ = ("key", "count", "suppressed")
    class KeyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    key: _containers.ScalarMap[str, str]
    count: int
    suppressed: bool
    def __init__(self, key: _Optional[_Mapping[str, str]] = ..., count: _Optional[int] = ..., suppressed: _Optional[bool] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("cells", "min_cell")
    CELLS_FIELD_NUMBER: _ClassVar[int]
    MIN_CELL_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[StatsCell]
    min_cell: int
    def __init__(self, cells: _Optional[_Iterable[_Union[StatsCell, _Mapping]]] = ..., min_cell: _Optional[int] = ...) -> None: ...
