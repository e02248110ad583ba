"""Secrets kept out of the logs, at the logging boundary.

With ``--debug`` the SDKs log whole requests: botocore the RunInstances parameters
(``UserData``, which carries the VMs' IDTOKEN and the batch's signing key),
keystoneauth the Nova request body (``user_data``) and the answer's ``adminPass``.
``RedactingFilter`` rewrites every record a handler is about to write, whichever
library logged it, so that such values read ``<redacted>``; ``install`` puts it on the
root logger's handlers, where records of every logger end up.

The rules work on text, not on the SDKs' data structures, so they catch a secret in a
dict's repr, a JSON body, a curl command line, a query string or a traceback alike:

- values of user-data and password keys (``UserData``, ``user_data``, ``adminPass``,
  ``password``) and of XML elements that hold secrets (``<userData>``,
  ``<SecretAccessKey>``, ``<SessionToken>``);
- values of credential headers (``Authorization``, ``X-Auth-Token``,
  ``X-Subject-Token``, ``X-Amz-Security-Token``);
- JWTs (IDTOKENs among them), PEM private-key blocks, and base64 runs longer than
  200 characters (an encoded payload or key under a key name no rule knows).
"""

from __future__ import annotations

import logging
import re
import traceback

REDACTED = "<redacted>"

_SECRET_KEYS = r"user_?data|adminpass|password"
_SECRET_HEADERS = r"authorization|x-auth-token|x-subject-token|x-amz-security-token"
_SECRET_ELEMENTS = r"userdata|secretaccesskey|sessiontoken"

# name, separator, then a quoted value (b'...' too) whose escaped quotes stay inside it;
# a message cut short may lack the closing quote
_QUOTED_VALUE = r"(?P<prefix>b?)(?P<q>[\"'])(?:\\.|(?!(?P=q))[^\\])*(?:(?P=q)|\Z)"
# a bare value never starts with a quote (the quoted rules' business) nor with a space
# (or backtracking over the separator's spaces would let it start before the quote)
_BARE = r"(?![\s\"']|b[\"'])"


def _key(names: str) -> str:
    """A key or header name, maybe quoted, and its ``:`` or ``=``."""
    return rf"(?P<key>\b(?:{names})\b[\"']?\s*[:=]\s*)"


_QUOTED = re.compile(_key(f"{_SECRET_KEYS}|{_SECRET_HEADERS}") + _QUOTED_VALUE, re.IGNORECASE)
# query strings (UserData=...&) and YAML (user_data: ...): up to a separator or quote
_KEY_BARE = re.compile(_key(_SECRET_KEYS) + _BARE + r"(?P<value>[^\s&'\",;}\]]+)", re.IGNORECASE)
# header lines and curl's -H "Name: value": the value runs to the end of the line or quote
_HEADER_BARE = re.compile(_key(_SECRET_HEADERS) + _BARE + r"(?P<value>[^\r\n\"']+)", re.IGNORECASE)
# words without which no key or header rule can match: most records skip those scans
_KEY_WORDS = ("userdata", "user_data", "adminpass", "password")
_HEADER_WORDS = ("authorization", "-token")
_ELEMENT = re.compile(rf"(<(?P<tag>{_SECRET_ELEMENTS})>).*?(</(?P=tag)>)", re.IGNORECASE | re.DOTALL)

_PEM_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
# standard or URL-safe alphabet, also percent-encoded as in a form body (%2B, %2F, %3D);
# the lookbehind starts a match only where a run starts, keeping long bodies' scan linear
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_%-])[A-Za-z0-9+/_%-]{200,}=*")


def redact(text: str) -> str:
    """``text`` with every secret the rules above recognise replaced by ``<redacted>``."""
    if not text:
        return text
    lower = text.lower()
    keys, headers = _any_in(lower, _KEY_WORDS), _any_in(lower, _HEADER_WORDS)
    if keys or headers:
        text = _QUOTED.sub(_keep_key_quoted, text)
    if keys:
        text = _KEY_BARE.sub(_keep_key_bare, text)
    if headers:
        text = _HEADER_BARE.sub(_keep_key_bare, text)
    if "<" in text:
        text = _ELEMENT.sub(rf"\g<1>{REDACTED}\g<3>", text)
    if "PRIVATE KEY-----" in text:
        text = _PEM_KEY.sub(REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return _BASE64_RUN.sub(REDACTED, text)


def _any_in(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


def _keep_key_quoted(match: re.Match[str]) -> str:
    quote = match["q"]
    return f"{match['key']}{match['prefix']}{quote}{REDACTED}{quote}"


def _keep_key_bare(match: re.Match[str]) -> str:
    if match["value"] == REDACTED:
        return match[0]
    return f"{match['key']}{REDACTED}"


class RedactingFilter(logging.Filter):
    """Rewrites a record before a handler writes it: its message is formatted with its
    args, redacted, and stored back without args; its traceback text likewise. The record
    is never dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always True (the record is still written)."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging would print msg and args raw
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install() -> None:
    """Put one RedactingFilter on every handler of the root logger; calling it again adds
    none where one is already there."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
