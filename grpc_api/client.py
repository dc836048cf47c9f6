"""A Python client for the hashmatch.v1 service."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.evidence.referrals import ClientIds
from engine.matcher import QueryHashes
from grpc_api.convert import hashes_to_proto
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2_grpc as pb_grpc

DEFAULT_MESSAGE_BYTES = 64 * 1024 * 1024


class HashmatchClient:
    """One channel to a server; safe to share between threads. Use as a context manager to close it."""

    def __init__(
        self,
        target: str,
        token: str | None = None,
        tls_ca: Path | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
        timeout_s: float = 30.0,
        max_message_bytes: int = DEFAULT_MESSAGE_BYTES,
    ) -> None:
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if tls_ca is not None or client_cert is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls_ca.read_bytes() if tls_ca else None,
                private_key=client_key.read_bytes() if client_key else None,
                certificate_chain=client_cert.read_bytes() if client_cert else None,
            )
            self.channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout_s = timeout_s
        self.matcher = pb_grpc.MatcherStub(self.channel)
        self.admin = pb_grpc.ListAdminStub(self.channel)
        self.audit = pb_grpc.AuditStub(self.channel)

    def __enter__(self) -> HashmatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Any, request: Any, timeout_s: float | None = None) -> Any:
        return method(request, timeout=timeout_s or self.timeout_s, metadata=self.metadata)

    def match(
        self,
        media: bytes,
        client_id: str = "",
        upload_id: str = "",
        timeout_s: float | None = None,
        options: pb.MatchOptions | None = None,
        user_id: str = "",
        **fields: str,
    ) -> pb.MatchResponse:
        metadata = pb.ClientMetadata(upload_id=upload_id, user_id=user_id, fields=fields)
        request = pb.MatchRequest(client_id=client_id, media=media, metadata=metadata, options=options)
        return self._call(self.matcher.Match, request, timeout_s)

    def match_stream(
        self,
        items: Iterable[tuple[str, bytes]],
        timeout_s: float | None = None,
        options: pb.MatchOptions | None = None,
    ) -> Iterator[pb.MatchResponse]:
        """(client_id, media) in, responses out as the server finishes them (any order)."""
        requests = (pb.MatchRequest(client_id=client_id, media=media, options=options) for client_id, media in items)
        return self.matcher.MatchStream(requests, timeout=timeout_s, metadata=self.metadata)

    def match_video(
        self,
        chunks: Iterable[bytes],
        client_id: str = "",
        upload_id: str = "",
        timeout_s: float | None = None,
        options: pb.MatchOptions | None = None,
    ) -> pb.MatchResponse:
        """A video sent in pieces (MatchVideo), for files over the message size limit."""
        metadata = pb.ClientMetadata(upload_id=upload_id)

        def requests() -> Iterator[pb.VideoChunk]:
            first = True
            for data in chunks:
                if first:
                    yield pb.VideoChunk(client_id=client_id, metadata=metadata, options=options, data=data)
                    first = False
                else:
                    yield pb.VideoChunk(data=data)

        return self.matcher.MatchVideo(requests(), timeout=timeout_s or self.timeout_s, metadata=self.metadata)

    def match_hashes(
        self,
        queries: list[tuple[str, QueryHashes]],
        timeout_s: float | None = None,
        options: pb.MatchOptions | None = None,
        clients: list[ClientIds] | None = None,
    ) -> pb.MatchHashesResponse:
        """`clients[i]`: the upload and user ids of query i, for referral records (none: not given)."""
        ids = clients or [ClientIds()] * len(queries)
        request = pb.MatchHashesRequest(
            queries=[
                pb.HashQuery(
                    client_id=client_id,
                    hashes=hashes_to_proto(q),
                    metadata=pb.ClientMetadata(upload_id=who.upload_id or "", user_id=who.user_id or ""),
                )
                for (client_id, q), who in zip(queries, ids, strict=True)
            ],
            options=options,
        )
        return self._call(self.matcher.MatchHashes, request, timeout_s)

    def hash(self, media: bytes, dihedral: bool = False) -> pb.HashResponse:
        return self._call(self.matcher.Hash, pb.HashRequest(media=media, dihedral=dihedral))

    def import_list(self, name: str, content: bytes, activate: bool = True, **options: Any) -> pb.ImportListResponse:
        return self._call(
            self.admin.ImportList, pb.ImportListRequest(list=name, content=content, activate=activate, **options)
        )

    def add_entries(self, name: str, entries: list[pb.Entry]) -> pb.ImportListResponse:
        return self._call(self.admin.AddEntries, pb.EntriesRequest(list=name, entries=entries))

    def remove_entries(self, name: str, entries: list[pb.Entry]) -> pb.ImportListResponse:
        return self._call(self.admin.RemoveEntries, pb.EntriesRequest(list=name, entries=entries))

    def activate(self, name: str, version: int) -> pb.ActivateResponse:
        return self._call(self.admin.Activate, pb.ActivateRequest(list=name, version=version))

    def list_versions(self, name: str) -> pb.ListVersionsResponse:
        return self._call(self.admin.ListVersions, pb.ListVersionsRequest(list=name))

    def serving(self, service: str = "", timeout_s: float = 5.0) -> bool:
        """The gRPC health service's word (no token needed): is the server, or the named service, SERVING?"""
        stub = health_pb2_grpc.HealthStub(self.channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def status(self) -> pb.StatusResponse:
        return self._call(self.admin.Status, pb.StatusRequest())

    def change_settings(
        self, name: str, threshold: int | None = None, action: str = "", query_variants: bool | None = None
    ) -> pb.ListVersion:
        request = pb.ChangeSettingsRequest(list=name, threshold=threshold, action=action, query_variants=query_variants)
        return self._call(self.admin.ChangeSettings, request)

    def give_feedback(self, name: str, entry_id: int, kind: str, **options: Any) -> pb.FeedbackResponse:
        """options: note, disable, referral_id, viewed (pb.FeedbackRequest's fields)."""
        request = pb.FeedbackRequest(list=name, entry_id=entry_id, kind=kind, **options)
        return self._call(self.admin.GiveFeedback, request)

    def held_entries(self) -> pb.HeldEntriesResponse:
        return self._call(self.admin.HeldEntries, pb.HeldEntriesRequest())

    def release_entry(self, entry_id: int) -> pb.HeldEntry:
        return self._call(self.admin.ReleaseEntry, pb.ReleaseEntryRequest(entry_id=entry_id))

    def export_audit(self, since: str = "") -> Iterator[str]:
        """The audit log's records as JSON lines (an auditor or admin token)."""
        return self._lines(self.audit.ExportAudit, since)

    def export_referrals(self, since: str = "") -> Iterator[str]:
        return self._lines(self.audit.ExportReferrals, since)

    def export_feedback(self, since: str = "") -> Iterator[str]:
        return self._lines(self.audit.ExportFeedback, since)

    def stats(self, by: list[str], since: str = "", min_cell: int = 0) -> pb.StatsResponse:
        return self._call(self.audit.Stats, pb.StatsRequest(by=by, since=since, min_cell=min_cell))

    def _lines(self, method: Any, since: str) -> Iterator[str]:
        for chunk in method(pb.ExportRequest(since=since), timeout=self.timeout_s * 10, metadata=self.metadata):
            yield from chunk.lines
