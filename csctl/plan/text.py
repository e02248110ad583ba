"""Text from a job made safe for a terminal: one helper for every value csctl echoes.

Jobs are written by users; an ``Owner`` or ``VMType`` may hold ANSI escapes, newlines or
a megabyte of text. Whatever of a job reaches the console goes through ``shown``.
"""

from __future__ import annotations

import re

MAX_SHOWN = 200
ELLIPSIS = "…"
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides
# that can rewrite what a terminal displays
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``value`` as one printable line: control characters escaped (``\\e[31m``, ``\\n``),
    at most ``limit`` characters, an ellipsis marking a cut."""
    text = value if isinstance(value, str) else str(value)
    # escape only the head: a megabyte of text costs no more than its first characters
    head = _UNSAFE.sub(_escape, text[: limit + 1])
    if len(head) > limit or len(text) > limit + 1:
        return head[: limit - 1] + ELLIPSIS
    return head
