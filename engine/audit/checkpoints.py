"""Signed checkpoints: an Ed25519 signature over the log's head (sequence number and hash), appended to the log
itself as a `checkpoint` record. Anyone with the public key alone can then check that every record up to a
checkpoint is the one the key holder saw: rewriting them (and every record after, to keep the chain whole)
would need a new signature. Needs the `signing` extra (cryptography)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.audit.chain import AuditRecord
from kernels.optional import require_module

PURPOSE = "signed audit checkpoints"


def _ed25519() -> Any:
    require_module("cryptography", PURPOSE)
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519


def signed_text(seq: int, head: str) -> bytes:
    return f"hashmatch-audit-checkpoint:{seq}:{head}".encode()


def generate_key(private_path: Path) -> Path:
    """A new key: the private key (raw 32 bytes, hex, 0600) at `private_path`, the public key at PATH.pub."""
    ed25519 = _ed25519()
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw().hex()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(raw + "\n")
    public = private_path.with_name(private_path.name + ".pub")
    public.write_text(key.public_key().public_bytes_raw().hex() + "\n")
    return public


class Signer:
    def __init__(self, private_path: Path) -> None:
        ed25519 = _ed25519()
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_path.read_text().strip()))
        self.public_hex = self._key.public_key().public_bytes_raw().hex()

    def checkpoint(self, seq: int, head: str) -> dict[str, Any]:
        signature = self._key.sign(signed_text(seq, head)).hex()
        return {"seq": seq, "head": head, "public_key": self.public_hex, "signature": signature}


@dataclass(frozen=True)
class CheckpointCheck:
    checked: int  # checkpoints whose signature and head verified
    covered: int  # records up to the last verified checkpoint
    problem: str = ""  # the first checkpoint that failed, and why


def check_checkpoints(records: list[AuditRecord], public_path: Path) -> CheckpointCheck:
    """Every `checkpoint` record in a verified chain, against the public key: its signature, and that the
    head it signed is the chain's at its sequence number."""
    ed25519 = _ed25519()
    public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_path.read_text().strip()))
    heads = {record.seq: record.hash for record in records}
    checked = covered = 0
    for record in records:
        if record.kind != "checkpoint":
            continue
        data = record.data
        try:
            public.verify(bytes.fromhex(data["signature"]), signed_text(int(data["seq"]), str(data["head"])))
        except Exception:
            return CheckpointCheck(checked, covered, f"checkpoint at seq {record.seq}: not signed by this key")
        if heads.get(int(data["seq"])) != data["head"]:
            return CheckpointCheck(
                checked, covered, f"checkpoint at seq {record.seq}: the head it signed is not the log's"
            )
        checked += 1
        covered = int(data["seq"])
    return CheckpointCheck(checked, covered)
