"""A static heuristic for regexes at risk of catastrophic backtracking, over Python's regex AST.

Flags an unbounded repeat whose body (a) holds another unbounded repeat with nothing mandatory and
disjoint to separate iterations (`(a+)+`, `(.*)*`, `(\\w+\\s?)*`), or (b) holds an alternation whose
branches can match the same text (`(a|a)*`, `(ab|a\\w)+`). Validation runs Python's backtracking `re`
on model output, so such a pattern can hang it. False positives are possible; false negatives too.
"""

from __future__ import annotations

import re
from typing import Any

try:  # Python >= 3.11
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse as P  # type: ignore[no-redef]

# Characters that stand in for "any character" when asking whether two character sets overlap.
PROBES = [chr(i) for i in range(128)] + ["é", "ß", "\u00a0", "\u2003", "٣", "中", "😀"]
_CATEGORY = {
    C.CATEGORY_DIGIT: re.compile(r"\d"), C.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    C.CATEGORY_SPACE: re.compile(r"\s"), C.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    C.CATEGORY_WORD: re.compile(r"\w"), C.CATEGORY_NOT_WORD: re.compile(r"\W"),
}
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", C.MAX_REPEAT))


def risky_pattern(pattern: str) -> str | None:
    """Why `pattern` risks catastrophic backtracking, or None (also None when it does not parse)."""
    try:
        tree = P.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    try:
        return _scan(list(tree.data))
    except RecursionError:
        return None


def has_lookaround(pattern: str) -> bool:
    """Whether `pattern` uses look-ahead or look-behind (which grammar engines cannot compile)."""
    try:
        items = list(P.parse(pattern).data)
    except (re.error, RecursionError, OverflowError):
        return False
    return any(op in (C.ASSERT, C.ASSERT_NOT) for op, _ in _walk(items))


def _scan(items: list[Any]) -> str | None:
    for op, av in items:
        if op in _REPEATS and op != getattr(C, "POSSESSIVE_REPEAT", None):
            lo, hi, body = av
            body_items = list(body.data if hasattr(body, "data") else body)
            if hi == C.MAXREPEAT or hi > 16:
                why = _nested(body_items) or _ambiguous(body_items)
                if why:
                    return why
            why = _scan(body_items)
            if why:
                return why
        elif op == C.SUBPATTERN:
            why = _scan(list(av[-1].data))
            if why:
                return why
        elif op == C.BRANCH:
            for alt in av[1]:
                why = _scan(list(alt.data if hasattr(alt, "data") else alt))
                if why:
                    return why
        elif op in (C.ASSERT, C.ASSERT_NOT):
            why = _scan(list(av[1].data))
            if why:
                return why
    return None


def _nested(body: list[Any]) -> str | None:
    """An unbounded repeat inside an unbounded repeat, iterations not separated by a disjoint mandatory char."""
    if not _unbounded_repeats(body) or _delimited(body):
        return None
    return "nested quantifiers (an unbounded repeat inside another, e.g. `(a+)+`)"


def _delimited(body: list[Any]) -> bool:
    """Whether each iteration of `body` holds a mandatory char its unbounded repeats cannot eat."""
    inner_chars: set[str] = set()
    for node in _unbounded_repeats(body):
        inner_chars |= _chars(list(node[1][2].data))
    if any(not chars & inner_chars for chars in _mandatory_chars(body)):
        return True
    alts = _sole_branch(body)
    if not alts:
        return False
    firsts = [_first(a) for a in alts]
    disjoint = all(not (firsts[i] & firsts[j]) for i in range(len(alts)) for j in range(i + 1, len(alts)))
    return disjoint and all(not _unbounded_repeats(a) or _delimited(a) for a in alts)


def _sole_branch(body: list[Any]) -> list[list[Any]] | None:
    """The alternatives when `body` is just one alternation (possibly inside groups)."""
    while len(body) == 1 and body[0][0] == C.SUBPATTERN:
        body = list(body[0][1][-1].data)
    if len(body) == 1 and body[0][0] == C.BRANCH:
        return [list(a.data if hasattr(a, "data") else a) for a in body[0][1][1]]
    return None


def _ambiguous(body: list[Any]) -> str | None:
    """An alternation under an unbounded repeat whose branches can start the same way (or both be empty)."""
    for op, av in _walk(body):
        if op != C.BRANCH:
            continue
        alts = [list(a.data if hasattr(a, "data") else a) for a in av[1]]
        for i, a in enumerate(alts):
            for b in alts[i + 1:]:
                if (_nullable(a) and _nullable(b)) or (_first(a) & _first(b)):
                    return "overlapping alternatives under a repeat (e.g. `(a|a)*`)"
    return None


def _walk(items: list[Any]) -> list[tuple[Any, Any]]:
    out: list[tuple[Any, Any]] = []
    for op, av in items:
        out.append((op, av))
        if op in _REPEATS:
            out.extend(_walk(list(av[2].data)))
        elif op == C.SUBPATTERN:
            out.extend(_walk(list(av[-1].data)))
        elif op == C.BRANCH:
            for alt in av[1]:
                out.extend(_walk(list(alt.data if hasattr(alt, "data") else alt)))
        elif op in (C.ASSERT, C.ASSERT_NOT):
            out.extend(_walk(list(av[1].data)))
    return out


def _unbounded_repeats(items: list[Any]) -> list[tuple[Any, Any]]:
    return [(op, av) for op, av in _walk(items) if op in _REPEATS and av[1] == C.MAXREPEAT]


def _mandatory_chars(items: list[Any]) -> list[set[str]]:
    """Character sets of single-character items every match of `items` must contain (top level)."""
    out: list[set[str]] = []
    for op, av in items:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            out.append(_chars([(op, av)]))
        elif op == C.SUBPATTERN:
            out.extend(_mandatory_chars(list(av[-1].data)))
        elif op in _REPEATS and av[0] >= 1 and av[1] != C.MAXREPEAT:
            out.extend(_mandatory_chars(list(av[2].data)))
    return out


def _chars(items: list[Any]) -> set[str]:
    """The probe characters that can appear anywhere in a match of `items`."""
    found: set[str] = set()
    for op, av in _walk(items):
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            found |= {ch for ch in PROBES if _matches(op, av, ch)}
    return found


def _first(items: list[Any]) -> set[str]:
    """The probe characters a match of `items` can start with."""
    found: set[str] = set()
    for op, av in items:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            return found | {ch for ch in PROBES if _matches(op, av, ch)}
        if op == C.SUBPATTERN:
            sub = list(av[-1].data)
            found |= _first(sub)
            if not _nullable(sub):
                return found
        elif op in _REPEATS:
            sub = list(av[2].data)
            found |= _first(sub)
            if av[0] >= 1 and not _nullable(sub):
                return found
        elif op == C.BRANCH:
            alts = [list(a.data if hasattr(a, "data") else a) for a in av[1]]
            for alt in alts:
                found |= _first(alt)
            if not any(_nullable(a) for a in alts):
                return found
        elif op in (C.GROUPREF, getattr(C, "GROUPREF_EXISTS", None)):
            return found | set(PROBES)
    return found


def _nullable(items: list[Any]) -> bool:
    """Whether `items` can match the empty string."""
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue
        if op == C.SUBPATTERN:
            if not _nullable(list(av[-1].data)):
                return False
        elif op in _REPEATS:
            if av[0] > 0 and not _nullable(list(av[2].data)):
                return False
        elif op == C.BRANCH:
            if not any(_nullable(list(a.data if hasattr(a, "data") else a)) for a in av[1]):
                return False
        else:
            return False
    return True


def _matches(op: Any, av: Any, ch: str) -> bool:
    code = ord(ch)
    if op == C.LITERAL:
        return bool(code == av)
    if op == C.NOT_LITERAL:
        return bool(code != av)
    if op == C.ANY:
        return ch != "\n"
    if op == C.IN:
        negate = False
        hit = False
        for sop, sav in av:
            if sop == C.NEGATE:
                negate = True
            elif sop == C.LITERAL:
                hit = hit or code == sav
            elif sop == C.RANGE:
                hit = hit or sav[0] <= code <= sav[1]
            elif sop == C.CATEGORY:
                rx = _CATEGORY.get(sav)
                hit = hit or (rx.match(ch) is not None if rx else True)
            else:
                hit = True  # unknown member: assume it may match
        return hit != negate
    return False
