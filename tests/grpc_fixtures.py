"""A real server on a loopback port, with a demo list and tokens, for the integration tests."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.signals import SignalType
from engine.store import Store
from grpc_api.auth import Role, TokenStore
from grpc_api.server import REASON_KEY, RunningServer, ServerConfig, start_server
from hashing.media_hasher import MediaHasher
from tests.conformance import ROOT

BRIDGE = ROOT / "pdq/data/bridge-mods/aaa-orig.jpg"
OTHER = ROOT / "pdq/data/reg-test-input/labelme-subset/q2821.jpg"


@dataclass
class Served:
    server: RunningServer
    address: str
    matcher_token: str
    admin_token: str
    directory: Path


def make_store(directory: Path) -> Path:
    path = directory / "h.db"
    hashes = MediaHasher().hash_file(BRIDGE)
    assert hashes.digests is not None
    with Store(path) as store:
        store.create_list(HashList("demo", SourceProgramme.LOCAL, frozenset(SignalType)))
        csv_text = f"hash,type,id,classification\n{hashes.pdq.hex()},pdq,D-1,A1\n{hashes.digests.md5},md5,D-1,A1\n"
        import_records(store, "demo", records_from_text(csv_text, ImportFormat.CSV))
    return path


def serve(directory: Path, **config: object) -> Served:
    db = make_store(directory)
    tokens = directory / "tokens.json"
    matcher_token = TokenStore.add(tokens, "platform", Role.MATCHER)
    admin_token = TokenStore.add(tokens, "admin", Role.ADMIN)
    options: dict[str, object] = {"db_path": db, "address": "127.0.0.1:0", "tokens_path": tokens} | config
    running = start_server(ServerConfig(**options))  # type: ignore[arg-type]
    return Served(running, f"127.0.0.1:{running.port}", matcher_token, admin_token, directory)


class FakeContext:
    """Enough of a grpc.ServicerContext to call a servicer method directly, as the server would."""

    def is_active(self) -> bool:
        return True

    def peer(self) -> str:
        return "test"

    def time_remaining(self) -> None:
        return None


def reason_of(error: grpc.RpcError) -> str:
    """The reason code a failed call carries in its trailing metadata."""
    return str(dict(error.trailing_metadata() or ()).get(REASON_KEY, ""))


@dataclass
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throw-away CA, a server certificate for localhost/127.0.0.1, and a client certificate."""
    now = datetime.datetime.now(datetime.UTC)

    def key_and_name(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
        return ec.generate_private_key(ec.SECP256R1()), x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        )

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key, ca_name = key_and_name("hashmatch test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        common_name: str, san: list[x509.GeneralName] | None
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key, name = key_and_name(common_name)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    import ipaddress

    server_cert, server_key = issue(
        "localhost", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    client_cert, client_key = issue("platform-client", None)
    return Certificates(
        ca=write_cert(ca, directory / "ca.pem"),
        server_cert=write_cert(server_cert, directory / "server.pem"),
        server_key=write_key(server_key, directory / "server.key"),
        client_cert=write_cert(client_cert, directory / "client.pem"),
        client_key=write_key(client_key, directory / "client.key"),
    )
