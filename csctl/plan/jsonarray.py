"""A JSON array decoded one element at a time from a text read in chunks, so that a
``condor_q -json`` file of any size is never held whole (csctl/plan/queue.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

JSON_SPACE = " \t\n\r"
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*\Z")  # stops at the first other character


class ArrayReader:
    """The elements of a JSON array whose ``[`` ends just before ``text[pos]``, decoded
    one at a time from a text read in chunks."""

    def __init__(self, read: Callable[[int], str], text: str, pos: int, chunk: int) -> None:
        self._read, self._text, self._pos, self._chunk = read, text, pos, chunk
        self._offset = 0  # characters already dropped from the front of _text
        self._ended = False

    def _more(self, want: int) -> None:
        """Drop what is decoded and append up to ``want`` more characters."""
        more = self._read(want) if want else ""
        self._ended = self._ended or (want > 0 and not more)
        self._text, self._offset = self._text[self._pos :] + more, self._offset + self._pos
        self._pos = 0

    def _next_char(self) -> str:
        """The next character that is not white space ("" at the end), not consumed."""
        while True:
            text, pos = self._text, self._pos
            while pos < len(text) and text[pos] in JSON_SPACE:
                pos += 1
            self._pos = pos
            if pos < len(text) or self._ended:
                return text[pos : pos + 1]
            self._more(self._chunk)

    def _error(self, message: str, pos: int) -> ValueError:
        return ValueError(f"{message} (char {self._offset + pos})")

    def __iter__(self) -> Iterator[Any]:
        decode = json.JSONDecoder().raw_decode
        first = True
        while True:
            char = self._next_char()
            if first and not char:
                raise self._error("Expecting value", self._pos)
            if char == "]" if first else char != ",":
                break
            self._pos += 0 if first else 1
            self._next_char()
            yield self._element(decode)
            first = False
            if self._pos > self._chunk:
                self._more(0)
        if char != "]":
            raise self._error("Expecting ',' delimiter", self._pos)
        self._pos += 1
        if self._next_char():
            raise self._error("Extra data", self._pos)

    def _element(self, decode: Callable[[str, int], tuple[Any, int]]) -> Any:
        want = self._chunk
        while True:
            try:
                value, end = decode(self._text, self._pos)
            except json.JSONDecodeError as exc:
                if self._ended:
                    raise self._error(exc.msg, exc.pos) from None
                want *= 2  # it runs past what was read; doubling keeps a huge one linear
                self._more(want)
                continue
            if self._ended or (end < len(self._text) and not _cut_number(value, self._text, end)):
                self._pos = end
                return value
            want *= 2
            self._more(want)  # a number may go on in the next chunk: decode it again


def _cut_number(value: Any, text: str, end: int) -> bool:
    """Whether a number decoded from ``text`` may have been cut by the end of what was
    read: all that follows it could still belong to it (``0`` of ``0.``, ``1e`` of ``1e-``)."""
    kind = type(value)
    return (kind is int or kind is float) and _NUMBER_TAIL.match(text, end) is not None
