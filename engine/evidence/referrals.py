"""Referral records: for each verdict that matched a list whose action is `refer`, the facts a reviewer needs
to file an NCMEC CyberTipline report about the file, shaped after that report's file fields
(`referral.schema.json` beside this module). hashmatch never submits a report: a person reviews and files.

Records are written to the audit log (kind `referral`), so they share its hash chain; `hashmatch referrals
export` reads them back, marks those a reviewer has recorded viewing (feedback with `--viewed`), and checks
each against the schema. What the request did not carry (an upload or user id; an MD5 when only a PDQ was
sent) is null and named in `absent`: never invented.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema

from engine.audit.log import export
from engine.lists import ListAction
from engine.matcher import Decision, Verdict
from engine.signals import SignalType
from hashing.errors import HashmatchError, ReasonCode

REFERRAL_KIND = "referral"
INVALID_REFERRAL_KIND = "referral_invalid"  # a record the schema refused when written: kept, not exported
LATEST_SCHEMA = "hashmatch.referral/2"  # 2: a match names its query variant and region (was dihedral_variant)
SCHEMA_ID = LATEST_SCHEMA  # what new records are written as
# Records are checked against the schema they name: an audit log written before version 2 still exports. A
# record naming no schema of ours is checked against the latest, which refuses it.
SCHEMA_FILES = {"hashmatch.referral/1": "referral-1.schema.json", LATEST_SCHEMA: "referral.schema.json"}


@dataclass(frozen=True)
class ClientIds:
    """The platform's identifiers of an upload, passed through from the request untouched."""

    upload_id: str | None = None
    user_id: str | None = None


NO_CLIENT_IDS = ClientIds()


# A referral id is this process's random prefix and a counter: unique without a call to the system's random
# source per record (uuid4 cost ~40 us here, more than building the record).
_PROCESS_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def next_referral_id() -> str:
    """32 hex digits, unique across processes (a random 64-bit prefix per process) and within one (a counter)."""
    return f"{_PROCESS_PREFIX}{next(_COUNTER):016x}"


def refers(verdict: Verdict) -> bool:
    """Whether the verdict makes a referral: a match with a `refer` list entry that is not held for review."""
    return verdict.decision is Decision.MATCH and any(
        m.action is ListAction.REFER and not m.quarantined for m in verdict.matches
    )


def referral_of(
    verdict: Verdict, client: ClientIds, when: str, reporter: Mapping[str, str], list_sources: Mapping[str, str]
) -> dict[str, Any] | None:
    """The referral of one verdict (None when it refers nothing: no match, or only held or non-refer ones).
    `reporter` holds host, actor and method."""
    if not refers(verdict):
        return None
    referred = [m for m in verdict.matches if m.action is ListAction.REFER and not m.quarantined]
    query = verdict.query
    file: dict[str, Any] = {
        "original_file_md5": query.md5.hex() if query.md5 else None,
        "original_file_sha256": query.sha256.hex() if query.sha256 else None,
        "pdq": query.pdq.hex() if query.pdq else None,
        "pdq_quality": query.pdq.quality if query.pdq else None,
    }
    video = query.others.get(SignalType.VPDQ)
    if video is not None:
        file["vpdq_sha256"] = video.value.hex()
    ids = {"upload_id": client.upload_id or None, "user_id": client.user_id or None}
    absent = [name for name, value in ids.items() if value is None]
    absent += [name for name in ("original_file_md5", "original_file_sha256", "pdq") if file[name] is None]
    return {
        "schema": SCHEMA_ID,
        "referral_id": next_referral_id(),
        "incident_time": when,
        "reported_by": dict(reporter),
        "file": file,
        "matches": [
            {
                "list": m.list_name,
                "list_version": m.list_version,
                "list_source": list_sources.get(m.list_name, "unknown"),
                "entry_id": m.entry_id,
                "external_id": m.external_id,
                "industry_classification": m.classification,
                "signal_type": m.signal_type.value,
                "distance": m.distance,
                "variant": m.variant,
                "region": None if m.region is None else m.region.to_dict(),
            }
            | ({} if m.evidence is None else {"video": dict(m.evidence)})
            for m in referred
        ],
        "client": ids,
        "file_viewed_by_person": False,
        "absent": absent,
    }


@cache
def schema(version: str = LATEST_SCHEMA) -> dict[str, Any]:
    text = resources.files("engine.evidence").joinpath(SCHEMA_FILES[version]).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _version_of(record: Mapping[str, Any]) -> str:
    """The schema a record names, when it is one of ours; else the latest (which then refuses it)."""
    named = record.get("schema")
    return named if isinstance(named, str) and named in SCHEMA_FILES else LATEST_SCHEMA


@cache
def _validator(version: str) -> Any:
    return jsonschema.Draft7Validator(schema(version), format_checker=jsonschema.FormatChecker())


@cache
def _compiled(version: str) -> Any:
    return fastjsonschema.compile(schema(version))


def first_schema_problem(record: Mapping[str, Any]) -> str | None:
    """The schema checked by compiled code (~15 us a record, against ~250 us for `schema_problems`): what the
    server runs on every referral it writes. None: it validates. Tests hold it to `schema_problems`."""
    try:
        _compiled(_version_of(record))(record)
    except fastjsonschema.JsonSchemaException as problem:
        return str(problem)
    return None


def schema_problems(record: Mapping[str, Any]) -> list[str]:
    """Where the record breaks the schema (empty: it validates): the reference validator, with every problem
    and its place, used by exports."""
    validator = _validator(_version_of(record))
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(record)'}: {error.message}"
        for error in sorted(validator.iter_errors(record), key=lambda e: list(map(str, e.absolute_path)))
    ]


def referrals(audit_path: str | os.PathLike[str], since: str | None = None) -> list[dict[str, Any]]:
    """The referral records of an audit log (incident time >= since), as a reviewer's export shows them:
    `file_viewed_by_person` true, with who and when, where feedback recorded a viewing. Every record is checked
    before any is returned: HashmatchError REFERRAL_INVALID names the first the schema refuses (an export is
    complete or refused)."""
    viewed: dict[str, dict[str, str]] = {}
    found: list[dict[str, Any]] = []
    for record in export(audit_path, since=None):
        if record["kind"] == "feedback" and record["data"].get("viewed") and record["data"].get("referral_id"):
            viewed.setdefault(record["data"]["referral_id"], {"by": record["actor"], "at": record["time"]})
        elif record["kind"] == REFERRAL_KIND and (since is None or record["data"]["incident_time"] >= since):
            found.append(record["data"])
    shown_records = []
    for data in found:
        seen = viewed.get(data["referral_id"])
        shown = data | ({"file_viewed_by_person": True, "viewed": seen} if seen else {})
        problems = schema_problems(shown)
        if problems:
            raise HashmatchError(
                ReasonCode.REFERRAL_INVALID,
                f"referral {data.get('referral_id')} does not validate against the schema: {problems[0]}",
            )
        shown_records.append(shown)
    return shown_records
