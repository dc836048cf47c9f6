"""The ListAdmin service: import, add and remove entries, versions, activation, status.

Every change is a new list version in the store, under the same guards as the CLI's imports (an import that
accepts nothing, or would remove more than half of a list without `allow_shrink`, writes nothing). A
version that becomes active is loaded beside the serving one and swapped in.
"""

from __future__ import annotations

import contextlib
import logging
from enum import StrEnum
from typing import Any, TypeVar

import grpc

from engine.audit.records import import_record
from engine.evidence import holds
from engine.evidence.feedback import FeedbackKind, give_feedback
from engine.importers.formats import ImportFormat, detect_format_of_text, records_from_text
from engine.importers.records import ParsedRecord
from engine.importing import ImportGuard, ImportMode, ImportReport, import_records
from engine.lists import (
    DEFAULT_THRESHOLD,
    HashList,
    ListAction,
    ListSettings,
    ListSettingsError,
    ListVersion,
    SourceProgramme,
)
from engine.signals import DEFAULT_LIST_TYPES, SignalValueError, signal_type_named
from engine.store import ListExistsError, StoreError
from grpc_api.gate import CALLER
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2_grpc as pb_grpc
from grpc_api.matcher_service import observed
from grpc_api.serving import ServingState
from hashing.errors import HashmatchError, ReasonCode

log = logging.getLogger("hashmatch.server")
E = TypeVar("E", bound=StrEnum)


class ReloadError(StoreError):
    """A committed version could not be loaded for serving."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.INTERNAL, message)


class AdminService(pb_grpc.ListAdminServicer):
    def __init__(self, state: ServingState) -> None:
        self.state = state

    def ImportList(  # noqa: N802
        self, request: pb.ImportListRequest, context: grpc.ServicerContext
    ) -> pb.ImportListResponse:
        def run() -> pb.ImportListResponse:
            store = self.state.store
            with contextlib.suppress(ListExistsError):  # another import may create it at the same moment
                store.create_list(_new_list_spec(request))
            text = request.content.decode("utf-8-sig", errors="replace")
            fmt = _choice(ImportFormat, request.format or "auto", "format")
            if fmt is ImportFormat.AUTO:
                fmt = detect_format_of_text(text[:8192])
            report = import_records(
                store,
                request.list,
                records_from_text(text, fmt),
                mode=_choice(ImportMode, request.mode or "replace", "mode"),
                source_file="(grpc upload)",
                activate=request.activate,
                guard=ImportGuard(allow_shrink=request.allow_shrink),
            )
            self._audit("list_import", import_record(report, "(grpc upload)") | {"activated": request.activate})
            if request.activate:
                self._reload_after(report)
            return _report_to_proto(report)

        return observed(self.state, "ImportList", context, run)

    def AddEntries(self, request: pb.EntriesRequest, context: grpc.ServicerContext) -> pb.ImportListResponse:  # noqa: N802
        return observed(self.state, "AddEntries", context, lambda: self._delta(request, deleted=False))

    def RemoveEntries(  # noqa: N802
        self, request: pb.EntriesRequest, context: grpc.ServicerContext
    ) -> pb.ImportListResponse:
        return observed(self.state, "RemoveEntries", context, lambda: self._delta(request, deleted=True))

    def _delta(self, request: pb.EntriesRequest, deleted: bool) -> pb.ImportListResponse:
        records = [
            ParsedRecord(
                number, e.hash, e.signal_type or None, e.external_id or None, e.classification or None, deleted=deleted
            )
            for number, e in enumerate(request.entries, start=1)
        ]
        report = import_records(
            self.state.store, request.list, records, mode=ImportMode.DELTA, source_file="(grpc entries)", activate=True
        )
        self._audit("list_remove_entries" if deleted else "list_add_entries", import_record(report, "(grpc entries)"))
        self._reload_after(report)
        return _report_to_proto(report)

    def _audit(self, kind: str, data: dict[str, Any]) -> None:
        """On disk before the call answers: an admin action the log cannot hold fails (AUDIT_UNAVAILABLE)."""
        if self.state.audit is not None:
            self.state.audit.append(f"token:{CALLER.get()}", kind, data, wait=True)

    def _reload_after(self, report: ImportReport) -> None:
        self._reload(f"list {report.list_name!r} version {report.version} is imported and active in the store")

    def _reload(self, done: str) -> None:
        """The change is committed already: a failed reload must say so, or a retry would make it twice."""
        try:
            self.state.reload()
        except Exception as exc:
            log.exception("reload after a change failed")
            raise ReloadError(
                f"{done}, but the server could not load it ({type(exc).__name__}); it serves the previous versions"
            ) from exc

    def ListVersions(  # noqa: N802
        self, request: pb.ListVersionsRequest, context: grpc.ServicerContext
    ) -> pb.ListVersionsResponse:
        def run() -> pb.ListVersionsResponse:
            active = self.state.store.get_list(request.list).active_version
            return pb.ListVersionsResponse(
                versions=[_version_to_proto(v, v.number == active) for v in self.state.store.versions(request.list)]
            )

        return observed(self.state, "ListVersions", context, run)

    def Activate(self, request: pb.ActivateRequest, context: grpc.ServicerContext) -> pb.ActivateResponse:  # noqa: N802
        def run() -> pb.ActivateResponse:
            self.state.store.activate(request.list, int(request.version))
            self._audit("list_activate", {"list": request.list, "version": int(request.version)})
            return pb.ActivateResponse(serving_versions=self.state.reload().list_versions)

        return observed(self.state, "Activate", context, run)

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:  # noqa: N802
        def run() -> pb.StatusResponse:
            serving = self.state.matcher
            sizes = {loaded.spec.name: loaded.entries for loaded in serving.lists}  # every signal type
            return pb.StatusResponse(
                lists=[
                    pb.ListStatus(
                        name=h.name,
                        active_version=h.active_version or 0,
                        serving_version=serving.list_versions.get(h.name, 0),
                        entries=sizes.get(h.name, 0),
                    )
                    for h in self.state.store.lists()
                ],
                version="hashmatch.v1",
            )

        return observed(self.state, "Status", context, run)

    def ChangeSettings(  # noqa: N802
        self, request: pb.ChangeSettingsRequest, context: grpc.ServicerContext
    ) -> pb.ListVersion:
        def run() -> pb.ListVersion:
            store = self.state.store
            latest = store.latest_settings(request.list)
            wanted = ListSettings(
                threshold=request.threshold if request.HasField("threshold") else latest.threshold,
                action=_choice(ListAction, request.action, "action") if request.action else latest.action,
                negative=latest.negative,
                query_variants=request.query_variants if request.HasField("query_variants") else latest.query_variants,
            )
            version = store.change_settings(request.list, wanted)  # ROLLED_BACK while an older version serves
            if version is None:  # nothing to change: the latest version has these settings already
                versions = store.versions(request.list)
                if not versions:
                    raise HashmatchError(ReasonCode.VERSION_NOT_FOUND, f"list {request.list!r} has no version yet")
                active = store.get_list(request.list).active_version
                return _version_to_proto(versions[-1], versions[-1].number == active)
            self._audit(
                "list_settings",
                {"list": request.list, "version": version.number, "changes": wanted.changes_from(latest)},
            )
            self._reload(f"list {request.list!r} version {version.number} (settings) is active in the store")
            return _version_to_proto(version, True)

        return observed(self.state, "ChangeSettings", context, run)

    def GiveFeedback(self, request: pb.FeedbackRequest, context: grpc.ServicerContext) -> pb.FeedbackResponse:  # noqa: N802
        def run() -> pb.FeedbackResponse:
            given = give_feedback(
                self.state.store,
                request.list,
                int(request.entry_id),
                _choice(FeedbackKind, request.kind, "feedback kind"),
                f"token:{CALLER.get()}",
                request.note,
                disable=request.disable,
                referral_id=request.referral_id or None,
            )
            self._audit("feedback", given.audit_data(request.viewed))
            if given.disabled_version is not None:
                self._reload(
                    f"feedback {given.id} is recorded and list {request.list!r} version {given.disabled_version} "
                    "without the entry is active in the store"
                )
            return pb.FeedbackResponse(feedback_id=given.id, disabled_version=given.disabled_version or 0)

        return observed(self.state, "GiveFeedback", context, run)

    def HeldEntries(  # noqa: N802
        self, request: pb.HeldEntriesRequest, context: grpc.ServicerContext
    ) -> pb.HeldEntriesResponse:
        def run() -> pb.HeldEntriesResponse:
            return pb.HeldEntriesResponse(entries=[_held_to_proto(h) for h in self.state.holds.listed()])

        return observed(self.state, "HeldEntries", context, run)

    def ReleaseEntry(self, request: pb.ReleaseEntryRequest, context: grpc.ServicerContext) -> pb.HeldEntry:  # noqa: N802
        def run() -> pb.HeldEntry:
            released = self.state.release(int(request.entry_id), CALLER.get())
            if released is None:
                raise HashmatchError(ReasonCode.ENTRY_NOT_FOUND, f"entry {request.entry_id} is not held for review")
            return _held_to_proto(released)

        return observed(self.state, "ReleaseEntry", context, run)


def _held_to_proto(held: holds.HeldEntry) -> pb.HeldEntry:
    return pb.HeldEntry(entry_id=held.entry_id, list=held.list_name, since=held.since, detail=held.detail)


def _version_to_proto(version: ListVersion, active: bool) -> pb.ListVersion:
    return pb.ListVersion(
        version=version.number,
        created_at=version.created_at,
        kind=version.kind,
        added=version.added,
        removed=version.removed,
        total=version.total,
        rejected=version.rejected,
        active=active,
    )


def _report_to_proto(report: ImportReport) -> pb.ImportListResponse:
    return pb.ImportListResponse(
        list=report.list_name,
        version=report.version,
        added=report.added,
        changed=report.changed,
        unchanged=report.unchanged,
        removed=report.removed,
        total=report.total,
        rejects=[pb.RejectedLine(line=r.line, reason=r.reason.value, detail=r.detail) for r in report.rejects],
    )


def _new_list_spec(request: pb.ImportListRequest) -> HashList:
    """The settings of a list an import creates; refused in plain words when a value is unknown."""
    try:
        signal_types = frozenset(signal_type_named(s) for s in request.signal_types) or DEFAULT_LIST_TYPES
    except SignalValueError as exc:
        raise ListSettingsError(exc.detail) from exc
    return HashList(
        name=request.list,
        source=_choice(SourceProgramme, request.source or "local", "source"),
        signal_types=signal_types,
        threshold=request.threshold or DEFAULT_THRESHOLD,
        action=_choice(ListAction, request.action or "remove", "action"),
        negative=request.negative,
    )


def _choice(kind: type[E], value: str, what: str) -> E:
    """`kind(value)`, or INVALID_SETTING in plain words (never Python's "'x' is not a valid ...")."""
    try:
        return kind(value)
    except ValueError:
        raise ListSettingsError(f"unknown {what} {value!r}; one of {', '.join(kind)}") from None
