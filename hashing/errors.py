"""hashmatch's one error vocabulary: every reason code any layer reports, and the typed errors that carry one.

The CLI (`ERROR,REASON,input,detail` lines and `hashmatch: error: REASON: detail`), import reports, verdicts
and the gRPC service (status details and the `hashmatch-reason` trailer) all speak these codes, and the README
documents each. The module sits in the lowest domain layer so that every layer above can share it.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Stable, documented codes: clients and reports key on these strings, so never rename one."""

    # Media and query inputs
    EMPTY_INPUT = "EMPTY_INPUT"
    UNDECODABLE = "UNDECODABLE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    TOO_LARGE = "TOO_LARGE"
    INVALID_HASH = "INVALID_HASH"
    NOT_FOUND = "NOT_FOUND"
    UNREADABLE = "UNREADABLE"
    QUALITY_TOO_LOW = "QUALITY_TOO_LOW"
    ENTRY_QUARANTINED = "ENTRY_QUARANTINED"  # a matched entry is held for review (flood guard): needs_review at most
    SYMLINK_LOOP = "SYMLINK_LOOP"  # a directory link that leads back into a directory being walked
    ARCHIVE_LIMIT = "ARCHIVE_LIMIT"  # an archive member over the size, ratio or nesting limits (archive bombs)
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"  # a video over the duration or frame-count limit
    DECODE_TIMEOUT = "DECODE_TIMEOUT"  # a video not decoded and hashed within the decode deadline
    VIDEO_TRUNCATED = "VIDEO_TRUNCATED"  # fewer frames decoded than the container declares: hashed as far as it goes

    # One rejected line of a list file (the import goes on)
    BAD_LENGTH = "BAD_LENGTH"
    NOT_HEX = "NOT_HEX"
    ZERO_PDQ = "ZERO_PDQ"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    TYPE_NOT_IN_LIST = "TYPE_NOT_IN_LIST"
    DUPLICATE = "DUPLICATE"
    MALFORMED = "MALFORMED"
    MISSING_HASH = "MISSING_HASH"

    # A whole import refused: nothing is written
    UNREADABLE_LIST = "UNREADABLE_LIST"  # the file cannot be read to its end (broken or wrongly shaped XML/JSON)
    UNKNOWN_LIST_FORMAT = "UNKNOWN_LIST_FORMAT"  # not readable in the chosen or detected format
    NOTHING_ACCEPTED = "NOTHING_ACCEPTED"  # not one record was accepted
    LIST_WOULD_SHRINK = "LIST_WOULD_SHRINK"  # a replace would remove too much of the list (--allow-shrink)
    DELTA_FILE = "DELTA_FILE"  # deletion records in a replace import: the file is a delta (--mode delta)

    # Lists, versions and the store
    LIST_NOT_FOUND = "LIST_NOT_FOUND"
    LIST_EXISTS = "LIST_EXISTS"
    VERSION_NOT_FOUND = "VERSION_NOT_FOUND"
    ROLLED_BACK = "ROLLED_BACK"  # a change that builds on the latest version while an older one is active
    ENTRY_NOT_FOUND = "ENTRY_NOT_FOUND"  # feedback or a release names an entry the list does not hold
    NO_ACTIVE_LIST = "NO_ACTIVE_LIST"
    INVALID_SETTING = "INVALID_SETTING"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"  # the audit log cannot be opened or written (or another process writes it)
    AUDIT_TAMPERED = "AUDIT_TAMPERED"  # `audit verify`: a record changed, deleted, inserted or moved
    AUDIT_PARTIAL_TAIL = "AUDIT_PARTIAL_TAIL"  # `audit verify`: the last line is incomplete (a crash mid-append)
    REFERRAL_INVALID = "REFERRAL_INVALID"  # `referrals export`: a record does not validate against the schema

    # The service
    OVERLOADED = "OVERLOADED"  # at its concurrency limit, or its decode memory budget stays full: retry later
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"  # this token has its maximum of open streams
    IDLE_TIMEOUT = "IDLE_TIMEOUT"  # a stream sent nothing for too long
    UNAUTHENTICATED = "UNAUTHENTICATED"  # no token, an unknown or revoked one, or more than one
    PERMISSION_DENIED = "PERMISSION_DENIED"  # the token's role does not cover the method
    MALFORMED_REQUEST = "MALFORMED_REQUEST"  # a request that is not a valid protobuf message of its type
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"  # no answer within the caller's deadline (or 60 s)
    SHUTTING_DOWN = "SHUTTING_DOWN"  # the server stopped before answering
    SERVER_UNREACHABLE = "SERVER_UNREACHABLE"  # a client could not reach the server (down, address, TLS)

    # The GPU
    GPU_UNAVAILABLE = "GPU_UNAVAILABLE"  # --device gpu without a GPU that passed the self-test

    # Optional packages
    MISSING_DEPENDENCY = "MISSING_DEPENDENCY"  # a feature asked for needs an optional extra that is not installed

    # The command line
    USAGE = "USAGE"  # options that do not fit together (argparse's own usage errors exit 2 too)

    # Anything unexpected: a bug, reported without its Python text
    INTERNAL = "INTERNAL"


class HashmatchError(Exception):
    """Base of every error hashmatch raises on bad input; `reason` is the stable code, `detail` plain words."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class MediaError(HashmatchError):
    """The media could not be read or decoded within the configured limits."""


class InvalidHashError(HashmatchError, ValueError):
    """A hash string or byte string is not a valid value of its type."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.INVALID_HASH, message)
