"""Media bytes or files -> every hash hashmatch matches on: PDQ (with dihedral variants) and exact digests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from hashing.decode import DecodeOptions, decode_luma_jpeg, decode_rgb, read_media_file
from hashing.exact import ExactDigests
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, PdqContract, PdqHasher


@dataclass(frozen=True)
class HashOptions:
    contract: PdqContract = PdqContract.FULLRES
    dihedral: DihedralMode = DihedralMode.NONE
    # Opt-in: hash the JPEG's own Y plane instead of luma from RGB. Faster, drifts a bit or two.
    fast_luma: bool = False
    exact_digests: bool = True
    decode: DecodeOptions = field(default_factory=DecodeOptions)


@dataclass(frozen=True, slots=True)
class MediaHashes:
    pdq: PdqHash
    width: int
    height: int
    dihedral: tuple[PdqHash, ...] = ()
    digests: ExactDigests | None = None
    exact_pdq: bool = True  # False when the fast luma path produced the PDQ


class MediaHasher:
    """Decodes in memory (nothing is written to disk) and hashes. Safe to share between threads."""

    def __init__(self, options: HashOptions | None = None, pdq: PdqHasher | None = None) -> None:
        self.options = options or HashOptions()
        self.pdq = pdq or PdqHasher()

    def hash_file(self, path: str | os.PathLike[str]) -> MediaHashes:
        return self.hash_bytes(read_media_file(path, self.options.decode.limits))

    def hash_bytes(self, data: bytes) -> MediaHashes:
        options = self.options
        pixels: np.ndarray | None = None
        if options.fast_luma and options.contract is PdqContract.FULLRES:
            pixels = decode_luma_jpeg(data, options.decode)
        exact = pixels is None
        if pixels is None:
            pixels = decode_rgb(data, options.decode)
        result = self.pdq.hash_image(pixels, options.contract, options.dihedral)
        return MediaHashes(
            pdq=result.hash,
            width=int(pixels.shape[1]),
            height=int(pixels.shape[0]),
            dihedral=result.dihedral,
            digests=ExactDigests.of(data) if options.exact_digests else None,
            exact_pdq=exact,
        )
