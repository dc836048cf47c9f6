"""The Audit service: reading the evidence (the audit log, referral records, feedback, prevalence statistics).
Callable by the auditor role, which may read these and change nothing, and by admins. Exports stream JSON
lines in chunks, the lines the local commands write."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

import grpc

from engine.audit.log import export, since_of
from engine.evidence.feedback import exported, feedback_since, feedback_to_json
from engine.evidence.prevalence import DEFAULT_MIN_CELL, first_day, parse_dimensions, prevalence
from engine.evidence.referrals import referrals
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2_grpc as pb_grpc
from grpc_api.matcher_service import handled, observed
from grpc_api.serving import ServingState

CHUNK_BYTES = 1 << 20  # JSON lines per streamed message, about this many bytes


class AuditService(pb_grpc.AuditServicer):
    def __init__(self, state: ServingState, min_cell: int = DEFAULT_MIN_CELL) -> None:
        self.state = state
        self.min_cell = min_cell  # the server's floor: a caller may ask for larger cells, never smaller

    def ExportAudit(self, request: pb.ExportRequest, context: grpc.ServicerContext) -> Iterator[pb.JsonLines]:  # noqa: N802
        def lines() -> Iterator[str]:
            self.state.audit_log().flush()  # what this server has queued is in the export too
            since = since_of(request.since)  # USAGE for a time that is not one, before anything is sent
            return (json.dumps(record, sort_keys=True) for record in export(self._audit_path(), since))

        return self._stream("ExportAudit", context, lines)

    def ExportReferrals(  # noqa: N802
        self, request: pb.ExportRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.JsonLines]:
        def lines() -> Iterator[str]:
            self.state.audit_log().flush()
            return (json.dumps(r, sort_keys=True) for r in referrals(self._audit_path(), since_of(request.since)))

        return self._stream("ExportReferrals", context, lines)

    def ExportFeedback(  # noqa: N802
        self, request: pb.ExportRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.JsonLines]:
        def lines() -> Iterator[str]:
            found = feedback_since(self.state.store, since_of(request.since))
            return iter(feedback_to_json(exported(found)).splitlines())

        return self._stream("ExportFeedback", context, lines)

    def Stats(self, request: pb.StatsRequest, context: grpc.ServicerContext) -> pb.StatsResponse:  # noqa: N802
        def run() -> pb.StatsResponse:
            self.state.flush_counts()  # the verdicts served so far are all in
            k = max(request.min_cell, self.min_cell)
            by = parse_dimensions(",".join(request.by) or "day")
            cells = prevalence(self.state.store, by, since=first_day(request.since), k=k)
            return pb.StatsResponse(
                cells=[pb.StatsCell(key=c.key, count=c.count or 0, suppressed=c.suppressed) for c in cells], min_cell=k
            )

        return observed(self.state, "Stats", context, run)

    def _audit_path(self) -> str:
        return str(self.state.audit_log().path)

    def _stream(
        self, method: str, context: grpc.ServicerContext, produce: Callable[[], Iterator[str]]
    ) -> Iterator[pb.JsonLines]:
        with handled(self.state, method, context):
            yield from _chunks(produce())


def _chunks(lines: Iterable[str]) -> Iterator[pb.JsonLines]:
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield pb.JsonLines(lines=batch)
            batch, size = [], 0
    if batch:
        yield pb.JsonLines(lines=batch)
