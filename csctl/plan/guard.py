"""Budgets that keep hostile job attributes away from the ClassAd library.

The library runs in csctl's own process and some inputs crash it rather than raise:
a lone UTF-16 surrogate (segfault), an integer beyond 64 bits (SystemError), an
expression tree tens of thousands of levels deep (its unparser recurses: segfault;
measured: 30,000 levels survive an 8 MB stack, 50,000 do not). Its evaluator gives up
around 400 levels (a ``ClassAdException``), which a machine blacklist of a few hundred
``Machine != "wn1" && ...`` clauses reaches; such a flat conjunction is legitimate and is
evaluated clause by clause instead (see csctl/plan/matching.py).

Every check works on text, so one set of rules serves the ``condor_q -json`` side
(csctl/plan/queue.py, before anything is parsed) and ads from the schedd (``ad_problem``,
on the ad's own printed form). Each returns a one-line reason, or None when the value is
fine.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from csctl.model import JobProblem

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STRING_CHARS = 65_536  # no attribute csctl reads needs more; Owner is echoed truncated
MAX_EXPR_CHARS = 200_000  # a blacklist of several thousand host names
# operators + bracket nesting of one expression (or one clause of a flat conjunction): an
# over-estimate of its tree depth, well under the evaluator's ~400 levels so that a few
# attributes referring to each other still evaluate
MAX_DEPTH = 250
# clauses of a flat && conjunction: its tree is this deep, well under the unparser's limit
MAX_CLAUSES = 5_000
SPLITTABLE = frozenset({"requirements"})

_OPERATOR_CHARS = "&|=<>!+-*/%?:~^([{."
_TOKEN = re.compile(
    r""""(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?"""  # string literal, quoted attribute name
    r"|=\?=|=!=|&&|\|\||>>>|<<|>>|<=|>=|==|!=|\?:"  # multi-character operators
    r"|[-+*/%<>!~&|^?:.=]"  # one-character operators
    r"|[(\[{]|[)\]}]"  # brackets
    r"|[^\s\"'()\[\]{}\-+*/%<>!~&|^?:.=,;]+|[,;]",  # names, numbers, separators
    re.DOTALL,
)
_TERMINATED = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""", re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_CHAR = re.compile("[\ud800-\udfff\x00]")
_REACHING = re.compile("[\"';,\\[\\]{}]")  # what lets an expression's text reach past it
_REACHING_UNQUOTED = ";,[]{}"


def _char_problem(text: str) -> str | None:
    if text.isascii():  # known without a scan (no surrogate is ASCII); NUL by memchr
        return "contains a NUL character" if "\x00" in text else None
    if not _BAD_CHAR.search(text):
        return None  # the usual case: one scan for both
    if _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate"
    if "\x00" in text:
        return "contains a NUL character"
    return None


def string_problem(text: str) -> str | None:
    """Why a string value cannot be handed to the ClassAd library, or None."""
    if len(text) > MAX_STRING_CHARS:
        return f"string of {len(text):,} characters is over the {MAX_STRING_CHARS:,} budget"
    return _char_problem(text)


def json_value_problem(value: Any) -> str | None:
    """Why a literal JSON value (not an expression) cannot become a ClassAd value, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return f"integer {str(value)[:30]} is out of the 64-bit range"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, str):
        return string_problem(value)
    return f"unsupported JSON value {type(value).__name__}"


def _shape(text: str) -> tuple[int, list[str] | None]:
    """(operators + deepest bracket nesting, the top-level && clauses or None when the
    expression is not a flat conjunction)."""
    operators = nesting = deepest = 0
    flat = True
    cuts = [0]
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "([{":
            nesting += 1
            deepest = max(deepest, nesting)
        elif token in ")]}":
            nesting = max(0, nesting - 1)
        elif token[0] in "\"'" or token[0].isalnum() or token[0] == "_" or token in ",;":
            continue
        else:
            operators += 1
            if nesting == 0 and token == "&&":
                cuts.append(match.start())
            elif nesting == 0 and token in ("||", "?", ":", "?:"):
                flat = False
    if not flat:
        return operators + deepest, None
    cuts.append(len(text))
    clauses = [text[a:b].removeprefix("&&").strip() for a, b in zip(cuts, cuts[1:], strict=False)]
    return operators + deepest, clauses


def shallow(text: str) -> bool:
    """True when ``text`` cannot exceed the depth budget: every operator and bracket
    needs a character, so counting the characters bounds both (no tokenizing)."""
    return len(text) <= MAX_DEPTH or sum(map(text.count, _OPERATOR_CHARS)) <= MAX_DEPTH


def conjuncts(text: str) -> list[str] | None:
    """The clauses of a flat ``a && b && ...`` expression too deep to evaluate whole, or
    None when ``text`` is within the depth budget (or not a flat conjunction)."""
    if shallow(text):
        return None
    depth, clauses = _shape(text)
    if depth <= MAX_DEPTH or clauses is None or len(clauses) < 2:
        return None
    return clauses


def expression_problem(attribute: str, text: str) -> str | None:
    """Why the expression ``text`` of ``attribute`` must not reach the ClassAd library,
    or None. A Requirements over the depth budget passes when it is a flat conjunction
    of clauses each within it (it is then evaluated clause by clause)."""
    if len(text) > MAX_EXPR_CHARS:
        return f"expression of {len(text):,} characters is over the {MAX_EXPR_CHARS:,} budget"
    problem = _char_problem(text)
    if problem or shallow(text):
        return problem
    depth, clauses = _shape(text)
    if depth <= MAX_DEPTH:
        return None
    too_deep = f"expression nested about {depth} levels deep is over the {MAX_DEPTH} budget"
    if attribute.lower() not in SPLITTABLE or clauses is None or len(clauses) < 2:
        return too_deep + " (only a flat a && b && ... conjunction may be longer)"
    if len(clauses) > MAX_CLAUSES:
        return f"conjunction of {len(clauses):,} clauses is over the {MAX_CLAUSES:,} budget"
    for clause in clauses:
        if not shallow(clause) and _shape(clause)[0] > MAX_DEPTH:
            return f"a clause of the conjunction is nested over the {MAX_DEPTH} budget"
    return None


def self_contained(text: str) -> bool:
    """Whether an expression's text can sit between ``Name =`` and ``;`` in an ad's text
    without touching its neighbours: strings terminated, brackets balanced, no
    top-level separator."""
    if "\\" in text or "'" in text or text.count('"') % 2:
        bare = _TERMINATED.sub("", text)
        reaching = _REACHING.search(bare) is not None
    else:  # the usual case, split without the regular expression: quotes pair up in order
        bare = "".join(text.split('"')[::2])
        # no quote is left in it: the other characters, each found by memchr
        reaching = any(char in bare for char in _REACHING_UNQUOTED)
    if not reaching:
        # only parentheses can nest, and a stray one is a parse error, never a reach
        return bare.count("(") == bare.count(")")
    nesting = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0] in "\"'" and not _TERMINATED.fullmatch(token):
            return False
        if token in "([{":
            nesting += 1
        elif token in ")]}":
            nesting -= 1
            if nesting < 0:
                return False
        elif nesting == 0 and token in ",;":
            return False
    return nesting == 0


@functools.cache
def checked_ad_type() -> type:
    """The ClassAd type of ads built from checked values (csctl/plan/queue.py), which
    ``ad_problem`` need not read again."""
    import classad2

    class CheckedAd(classad2.ClassAd):  # type: ignore[misc]
        """A ClassAd whose every value passed the budgets before it was parsed.
        ``deep`` names its expressions long enough to be over the depth budget (only a
        flat Requirements conjunction may be; the others were rejected)."""

        deep: frozenset[str] = frozenset()
        # every attribute's name -> its integer or plain string literal, or ASK where only
        # the ad can tell
        known: dict[str, Any] = {}

    return CheckedAd


ASK = object()  # in ``known_values``: the ad itself must be asked for this attribute's value


def long_expressions(ad: Any) -> frozenset[str] | None:
    """For an ad built from checked values, the names of its expressions long enough to
    be over the depth budget; None for any other ad (its text is not known)."""
    if not isinstance(ad, checked_ad_type()):
        return None
    deep: frozenset[str] = ad.deep  # type: ignore[attr-defined]
    return deep


def known_values(ad: Any) -> dict[str, Any] | None:
    """For an ad built from checked values, every attribute it has, mapped to its value
    where that was an integer or a plain string in the JSON (the ad holds the same value)
    and to ``ASK`` otherwise; None for any other ad. Asking the ad costs a library call
    per name."""
    if not isinstance(ad, checked_ad_type()):
        return None
    known: dict[str, Any] = ad.known  # type: ignore[attr-defined]
    return known


def ad_problem(ad: Any) -> JobProblem | None:
    """The first attribute of a ClassAd (from a schedd, or built by csctl) that is over
    budget or holds characters the library mishandles, or None.

    Works on the ad's printed form, one ``Name = value`` line per attribute: the one
    unparse the grouping already pays for.
    """
    if isinstance(ad, checked_ad_type()):
        return None
    text = ad.printOld()
    if len(text) <= MAX_DEPTH and not _char_problem(text):
        return None  # too short to hold anything over budget
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if not sep:
            continue
        problem = expression_problem(name.strip(), value)
        if problem:
            return JobProblem(name.strip(), problem)
    return None


def one_line(exc: BaseException) -> str:
    """An exception from the library as a short line: its type and first message line."""
    message = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
