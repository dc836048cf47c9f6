"""Stream the objects of a JSON array found under a key (`{"hashRecords": [...]}`), one at a time.

API pages can be large and several pages can be saved back to back in one file; this never holds more than
one object plus a read buffer in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

_CHUNK = 1 << 16
MAX_RECORD_CHARS = 16 << 20  # one array element larger than this is refused, not buffered without end
_DECODER = json.JSONDecoder()


class JsonStreamError(ValueError):
    pass


def iter_array_items(stream: TextIO, key: str) -> Iterator[Any]:
    """Yield each element of every `"key": [ ... ]` array in the stream, in order."""
    reader = _Buffer(stream)
    marker = json.dumps(key)
    while reader.skip_past(marker):
        # The key's text can also occur as a value ("note": "hashRecords"); followed by ':' it is the key, and
        # then its value must be an array: `{"hashRecords": "notalist"}` is a list of the wrong shape.
        if not reader.skip_past_char(":"):
            continue
        if reader.next_non_space() != "[":
            raise JsonStreamError(f"{marker} is not an array")
        reader.advance(1)
        if reader.next_non_space() == "]":
            reader.advance(1)
            continue
        while True:
            yield reader.decode_value()
            separator = reader.next_non_space()
            reader.advance(1)
            if separator == "]":
                break
            if separator != ",":
                raise JsonStreamError(f"expected ',' or ']' in the {marker} array, found {separator!r}")


class _Buffer:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.text = ""
        self.pos = 0
        self.eof = False

    def _fill(self, at_least: int = _CHUNK) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(max(_CHUNK, at_least))
        if not chunk:
            self.eof = True
            return False
        self.text = self.text[self.pos :] + chunk
        self.pos = 0
        return True

    def skip_past(self, needle: str) -> bool:
        while True:
            found = self.text.find(needle, self.pos)
            if found >= 0:
                self.pos = found + len(needle)
                return True
            self.pos = max(self.pos, len(self.text) - len(needle))
            if not self._fill():
                return False

    def skip_past_char(self, char: str) -> bool:
        if self.next_non_space() != char:
            return False
        self.advance(1)
        return True

    def next_non_space(self) -> str:
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self._fill():
                raise JsonStreamError("unexpected end of file")

    def _fill_more(self) -> bool:
        """More text for an element that does not decode yet; doubling keeps re-decoding linear overall."""
        if len(self.text) - self.pos > MAX_RECORD_CHARS:
            return False
        return self._fill(len(self.text) - self.pos)

    def advance(self, count: int) -> None:
        self.pos += count

    def decode_value(self) -> Any:
        self.next_non_space()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # An object cut by the chunk boundary decodes once more text arrives.
                if self._fill_more():
                    continue
                raise JsonStreamError(
                    f"invalid JSON or an element over {MAX_RECORD_CHARS} characters: {exc.msg}"
                ) from exc
            if end == len(self.text) and self._fill():
                continue  # a number may go on in the next chunk
            self.pos = end
            return value
