"""The PDQ hash value type and the exact digests."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hashing.errors import InvalidHashError, ReasonCode
from hashing.exact import ExactDigests
from hashing.pdq_hash import PdqHash

BRIDGE = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
ROTATED = "30a10efd71cc3d429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af"


def test_parse_and_print_round_trip_case_insensitively() -> None:
    value = PdqHash.from_hex(f"  {BRIDGE.upper()}\n", quality=100)
    assert str(value) == BRIDGE and value.hex() == BRIDGE
    assert value.digest == bytes.fromhex(BRIDGE) and len(value.digest) == 32
    assert repr(value) == f"PdqHash('{BRIDGE}', quality=100)"
    assert PdqHash.from_hex(BRIDGE) == value  # quality is not identity
    assert hash(PdqHash.from_hex(BRIDGE)) == hash(value)


@pytest.mark.parametrize("bad", ["", "abc", BRIDGE[:-1], BRIDGE + "0", BRIDGE[:-1] + "g", "0x" + BRIDGE[2:]])
def test_invalid_hex_is_rejected_with_its_reason(bad: str) -> None:
    with pytest.raises(InvalidHashError) as caught:
        PdqHash.from_hex(bad)
    assert caught.value.reason is ReasonCode.INVALID_HASH


def test_invalid_digest_and_quality_are_rejected() -> None:
    with pytest.raises(InvalidHashError):
        PdqHash(b"\x00" * 31)
    with pytest.raises(InvalidHashError):
        PdqHash(b"\x00" * 32, quality=101)


def test_distance_and_subtraction() -> None:
    a, b = PdqHash.from_hex(BRIDGE), PdqHash.from_hex(ROTATED)
    assert a - a == 0
    assert a - b == b - a == a.distance(b) == 120  # the Java reference test asserts 120
    assert PdqHash(b"\x00" * 32) - PdqHash(b"\xff" * 32) == 256


def test_bit_order_is_the_references() -> None:
    bits = np.zeros((16, 16), dtype=bool)
    bits[0, 0] = True  # bit 0: word 0 (printed last), its lowest bit
    assert PdqHash.from_bits(bits).hex() == "0" * 63 + "1"
    bits[:] = False
    bits[15, 15] = True  # bit 255: word 15 (printed first), its highest bit
    assert PdqHash.from_bits(bits).hex() == "8" + "0" * 63
    value = PdqHash.from_hex(BRIDGE)
    assert PdqHash.from_bits(value.bits()) == value
    assert PdqHash.from_bits(value.bits().reshape(256)) == value


def test_zero_hash() -> None:
    assert PdqHash(bytes(32)).is_zero()
    assert not PdqHash.from_hex(BRIDGE).is_zero()


def test_exact_digests() -> None:
    data = b"benign bytes"
    digests = ExactDigests.of(data)
    assert digests.md5 == hashlib.md5(data).hexdigest()
    assert digests.sha1 == hashlib.sha1(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
