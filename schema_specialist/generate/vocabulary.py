"""The words a request uses for a field and its value, taken from the schema.

A person rarely writes `tokens_used: 5200`; they write "used 5200 tokens", "5,200 LLM tokens" or leave
the label out when the value speaks for itself (an id, a timestamp, an enum word). `labels` gives the
ways to name a field: its humanised key, its title, a short description, the key without unit or
suffix words, and generic English synonyms. `spell` gives the ways to write a value; the round trip
(`questions.missing_facts`, which reads numbers back with `numbers.numbers_in`) accepts exactly these
spellings, so every value stays recoverable.
Nothing here knows a particular schema: all of it comes from the schema's own words.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from typing import Any

# Generic English synonyms for words that often occur in keys (not tied to any schema).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": ("ID", "#", "number", "ref"),
    "identifier": ("ID", "ref"),
    "number": ("no.", "#", "num"),
    "count": ("number of", "total"),
    "quantity": ("qty", "units", "amount"),
    "amount": ("total", "sum"),
    "cost": ("spend", "spent", "price"),
    "price": ("cost", "price tag"),
    "email": ("e-mail", "mail", "email address"),
    "status": ("state", "stage"),
    "state": ("status", "stage"),
    "summary": ("description", "what happened"),
    "description": ("details", "desc"),
    "name": ("called", "named"),
    "tags": ("labels", "keywords"),
    "priority": ("prio", "urgency"),
    "severity": ("level", "impact"),
    "category": ("type", "kind"),
    "type": ("kind", "category"),
    "created": ("made", "opened"),
    "opened": ("filed", "raised", "created"),
    "date": ("day", "on"),
    "progress": ("done", "completion"),
    "task": ("job", "work item"),
    "customer": ("client", "buyer"),
    "items": ("lines", "products"),
    "head": ("staff", "people"),
    "calls": ("invocations", "requests"),
    "tokens": ("tokens",),
    "used": ("consumed", "spent"),
    "incidents": ("issues", "problems"),
    "resolved": ("fixed", "closed"),
    "reported": ("sent", "logged"),
    "plan": ("tier", "subscription"),
    "currency": ("paid in", "money"),
    "gift": ("present",),
    "subunits": ("sub-teams", "child units"),
}
# Generic English opposites of words that name a boolean field: "unresolved" or "still open" says
# resolved = false (not tied to any schema).
OPPOSITES: dict[str, tuple[str, ...]] = {
    "resolved": ("unresolved", "open", "still open", "outstanding"),
    "fixed": ("unfixed", "broken", "still broken"),
    "closed": ("open", "still open"),
    "open": ("closed", "shut"),
    "paid": ("unpaid", "outstanding"),
    "verified": ("unverified",),
    "approved": ("unapproved", "pending"),
    "confirmed": ("unconfirmed",),
    "assigned": ("unassigned",),
    "enabled": ("disabled", "off"),
    "disabled": ("enabled", "on"),
    "active": ("inactive",),
    "available": ("unavailable",),
    "complete": ("incomplete", "unfinished"),
    "completed": ("incomplete", "unfinished"),
    "read": ("unread",),
    "visible": ("hidden",),
    "public": ("private",),
    "private": ("public",),
    "valid": ("invalid",),
    "required": ("optional",),
    "locked": ("unlocked",),
    "online": ("offline",),
    "success": ("failure",),
    "successful": ("unsuccessful", "failed"),
}
# Words a label can lose and still name the field ("cost usd" -> "cost", "reported at" -> "reported").
DROPPABLE = {"usd", "eur", "gbp", "at", "on", "in", "of", "the", "a", "an", "is", "has", "flag", "value", "val",
             "num", "count", "id", "code", "field", "info", "data"}
STOP = {"the", "a", "an", "of", "in", "on", "at", "to", "for", "and", "or", "is", "are", "was", "be", "by", "with",
        "since", "when", "which", "that", "this", "its", "it", "as", "from"}
MONEY_WORDS = {"usd", "eur", "gbp", "dollar", "dollars", "price", "cost", "amount", "spend", "fee", "salary",
               "revenue", "total", "budget", "paid", "euro", "euros"}
FRACTION_WORDS = {"fraction", "progress", "ratio", "share", "rate", "proportion", "percentage", "completion"}
COUNT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def humanize(key: str) -> str:
    """`agentId` / `agent_id` / `agent-id` -> `agent id`."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    text = re.sub(r"[_\-.]+", " ", text).strip()
    return text.lower() or key


def _words(node: dict[str, Any]) -> set[str]:
    text = " ".join(str(node.get(k) or "") for k in ("title", "description"))
    return {w.strip(".,;:()").lower() for w in text.split()}


def is_money(key: str, node: dict[str, Any]) -> bool:
    """A number field that holds money, by its key and description words."""
    words = set(humanize(key).split()) | _words(node)
    return bool(words & MONEY_WORDS) or any(w in words for w in ("us", "dollars"))


def is_fraction(key: str, node: dict[str, Any]) -> bool:
    """A number in [0, 1] that people state as a percentage."""
    hi = node.get("maximum")
    lo = node.get("minimum")
    words = set(humanize(key).split()) | _words(node)
    return isinstance(hi, int | float) and hi <= 1 and isinstance(lo, int | float) and lo >= 0 \
        and bool(words & FRACTION_WORDS)


# Past participles that can end a count's key after its noun ("tokens_used", "minutes_taken"); regular
# ones end in -ed. Words that are no participle there ("left" in days_left means remaining) are absent.
IRREGULAR_PARTICIPLES = {"run", "taken", "done", "made", "spent", "sent", "written", "given", "seen", "built",
                         "sold", "paid", "kept", "lost", "won", "held", "read", "found", "bought", "brought",
                         "drawn", "driven", "eaten", "thrown", "shown", "grown", "chosen", "broken", "begun"}
# Words before a participle that make the field no count of things ("max_allowed", "total_spent").
NOT_COUNTED = {"max", "min", "maximum", "minimum", "total", "last", "first", "next", "prev", "previous", "avg",
               "average", "mean", "median", "percent", "pct", "is", "was", "has", "ever"}


def participle_noun(key: str, node: dict[str, Any]) -> str | None:
    """The noun of a number keyed plural noun + past participle, the way a count of things is named:
    `tokens_used` -> "tokens", `minutes_taken` -> "minutes"; None for any other field."""
    if node.get("type") not in ("integer", "number") or node.get("enum"):
        return None
    words = humanize(key).split()
    if len(words) < 2:
        return None
    last, noun = words[-1], [w for w in words[:-1] if w not in DROPPABLE]
    participle = last in IRREGULAR_PARTICIPLES or (len(last) > 3 and last.endswith("ed") and not last.endswith("eed"))
    if not participle or not noun or set(noun) & NOT_COUNTED or not noun[-1].endswith("s") \
            or noun[-1].endswith("ss"):
        return None
    return " ".join(noun)


def labels(key: str, node: dict[str, Any], siblings: Iterable[str] = ()) -> list[str]:
    """Ways to name a field, most literal first (all lower case, distinct). A count keyed noun +
    participle is named by its noun ("5200 tokens" for tokens_used), not by the participle alone ("5200
    used"), unless a `siblings` key (another property of the same object) has that noun too: then the
    participle is what tells them apart ("1204 tests, 3 failed")."""
    base = humanize(key)
    out = [base]
    title = node.get("title")
    if isinstance(title, str) and 0 < len(title) <= 40:
        out.append(title.strip().lower())
    desc = node.get("description")
    if isinstance(desc, str):
        d = desc.strip().rstrip(".").lower()
        if 0 < len(d.split()) <= 4:
            out.append(d)
    words = base.split()
    kept = [w for w in words if w not in DROPPABLE]
    if kept and kept != words:
        out.append(" ".join(kept))
    for i, w in enumerate(words):
        for syn in SYNONYMS.get(w, ()):
            alt = " ".join([*words[:i], syn, *words[i + 1:]])
            if alt.split() != words:
                out.append(alt.lower() if syn != "ID" else alt)
    noun = participle_noun(key, node)
    if noun is not None and not any(set(noun.split()) & set(humanize(k).split()) for k in siblings if k != key):
        out.append(noun)
    elif len(words) > 1 and len(words[-1]) > 3 and words[-1] not in DROPPABLE:
        out.append(words[-1])
    seen: list[str] = []
    for label in out:
        label = " ".join(label.split())
        if label and label not in seen:
            seen.append(label)
    return seen or [json.dumps(key)]  # a key of spaces has no words to say: quoted, as in the JSON


# How a description that defines a field opens ("The maximum number of ...", "The time interval in
# seconds between ...", "Name of the ..."): the rest of it then says the value in place of a label.
_NUMBER_OF = re.compile(r"(?:the |a |an )?(?:total )?(?:(maximum|max|minimum|min) )?(?:number|count) of (\w.*)")
_SPAN = re.compile(r"(?:the |a |an )?((?:\w+ )?(?:interval|delay|timeout|duration|period|time|wait))"
                   r"(?: in (seconds|minutes|hours|milliseconds|days))? (between|before|until|after) (\w.*)")
_NAME_OF = re.compile(r"(?:the |a |an )?name of (?:the |a |an )?(\w.*)")
_NOUN_END = {"that", "which", "where", "who", "used", "for", "to", "on", "in", "of", "with", "from", "when", "if",
             "including", "includes", "is", "are", "as", "by", "already", "being", "currently"}
UNIT = "{U}"


def _first_sentence(desc: str) -> str | None:
    """The description's first sentence, lower case but for acronyms, or None when it holds digits,
    quotes or brackets (words that would read as values)."""
    text = desc.strip().split(". ")[0].strip().rstrip(".")
    if not text or re.search(r"[0-9\"'()\[\]{}<>=/`]", text):
        return None
    words = [w if len(w) > 1 and w.isupper() else w.lower() for w in text.split()]
    return " ".join(words) if len(words) >= 2 else None


def described(key: str, node: dict[str, Any]) -> list[str]:
    """Ways to say a field's value with the words of its description, in place of a label: templates
    with `{V}` for the value and `{U}` for a time unit that a duration in words leaves out ("at most
    {V} {U} to keep log messages before publishing them", "a time interval of {V} {U} between the
    retries", "header called {V}"). Empty for descriptions that open in no known way."""
    desc = node.get("description")
    if not isinstance(desc, str) or node.get("enum") or node.get("format") or node.get("pattern"):
        return []
    text = _first_sentence(desc)
    if text is None:
        return []
    text = re.split(r"[,;:]", text)[0].strip()  # the clause that defines the field
    kind = node.get("type")
    out: list[str] = []
    if kind in ("integer", "number") and len(text.split()) <= 14:  # the whole clause is said
        if m := _NUMBER_OF.fullmatch(text):
            bound, rest = m.group(1), m.group(2)
            words = rest.split()
            if words[0] in SECOND_WORDS:  # "at most {V} {U} to keep ...": "2 minutes" then needs no unit
                rest = " ".join([UNIT, *words[1:]])
            if bound in ("maximum", "max"):
                out += [f"at most {{V}} {rest}", f"up to {{V}} {rest}", f"no more than {{V}} {rest}"]
            elif bound in ("minimum", "min"):
                out += [f"at least {{V}} {rest}"]
            else:
                out += [f"{{V}} {rest}"]
        elif (m := _SPAN.fullmatch(text)) and (m.group(2) or is_seconds(key, node)):
            noun, unit, link, rest = m.group(1), m.group(2) or "seconds", m.group(3), m.group(4)
            u = UNIT if unit in SECOND_WORDS else unit
            out += [f"{{V}} {u} {link} {rest}", f"a {noun} of {{V}} {u} {link} {rest}"]
    elif kind == "string" and (m := _NAME_OF.fullmatch(text)):
        head: list[str] = []
        for w in m.group(1).split():
            if w in _NOUN_END or len(head) == 4 or (head and w.endswith(("ed", "ly"))):
                break
            head.append(w)
        if head:
            n = " ".join(head)
            out += [f"{n} {{V}}", f"{n} called {{V}}", f"{n} named {{V}}", f"{{V}} as the {n}"]
    return out


def pick_label(key: str, node: dict[str, Any], rng: random.Random, literal: float = 0.4,
               siblings: Iterable[str] = ()) -> str:
    """The humanised key a `literal` share of the time, else any other way to name the field."""
    options = labels(key, node, siblings)
    if len(options) == 1 or rng.random() < literal:
        return options[0]
    return rng.choice(options[1:])


def number_text(value: float | int) -> str:
    """The JSON spelling of a number (what the answer holds)."""
    return json.dumps(value)


# Common English fractions people write for a share ("half done"); exact values only.
FRACTION_NAMES: dict[float, tuple[str, ...]] = {0.5: ("half",), 0.25: ("a quarter", "one quarter"),
                                                 0.75: ("three quarters",)}
SECOND_WORDS = {"seconds", "second", "secs", "sec"}


def is_seconds(key: str, node: dict[str, Any]) -> bool:
    """An integer duration held in seconds, by its key or description words."""
    return bool((set(humanize(key).split()) | _words(node)) & SECOND_WORDS)


def short_number(value: int) -> str | None:
    """`5200` -> `5.2k`, `3000000` -> `3M` (None where the short form would round the value)."""
    for size, suffix in ((1_000_000, "M"), (1000, "k")):
        if abs(value) >= size:
            scaled = value / size
            if round(scaled, 2) * size == value:
                return f"{scaled:g}{suffix}"
            return None
    return None


def duration_words(seconds: int) -> list[str]:
    """`300` -> `5 minutes`, `5 min`; `7200` -> `2 hours` (empty unless whole minutes or hours)."""
    if seconds <= 0 or seconds % 60:
        return []
    if seconds % 3600 == 0:
        n = seconds // 3600
        return [f"{n} hour" if n == 1 else f"{n} hours", f"{n}h", f"{n} hr"]
    n = seconds // 60
    return [f"{n} minute" if n == 1 else f"{n} minutes", f"{n} min", f"{n} mins"]


# ISO 4217 codes people write with a sign or a word (`€34.90`, `12 pounds`); others by their code alone.
CURRENCIES: dict[str, tuple[str, str]] = {
    "USD": ("$", "dollars"), "EUR": ("€", "euros"), "GBP": ("£", "pounds"), "JPY": ("¥", "yen"),
    "INR": ("₹", "rupees"), "CAD": ("C$", "Canadian dollars"), "AUD": ("A$", "Australian dollars"),
    "CHF": ("CHF ", "francs"),
}


def instance_currency(value: Any, depth: int = 0) -> str | None:
    """The currency an instance states: the first string under a key that names a currency
    (`currency`, `currency_code`) and holds a known ISO 4217 code, objects searched to three levels."""
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return None
    for k, v in items:
        if isinstance(k, str) and isinstance(v, str) and v.upper() in CURRENCIES \
                and "currency" in humanize(k).split():
            return v.upper()
    for _, v in items:
        if depth < 3 and isinstance(v, dict | list) and (code := instance_currency(v, depth + 1)):
            return code
    return None


def money_currency(key: str, stated: str | None) -> str:
    """The currency a money field is written in: the one its key names (`cost_usd`, `price_eur`),
    else the instance's own (`stated`), else US dollars."""
    words = humanize(key).split()
    for code in CURRENCIES:
        if code.lower() in words:
            return code
    return stated or "USD"


def money_text(text: str, code: str, rng: random.Random) -> str:
    """`text` (a number) as money in `code`: its sign, its word or its code, before or after."""
    sign, word = CURRENCIES.get(code, (f"{code} ", code))
    return rng.choice([f"{sign}{text}", f"{text} {word}", f"{sign}{text}", f"{code} {text}", f"{text} {code}"])


def spell_number(value: int | float, key: str, node: dict[str, Any], rng: random.Random,
                 currency: str | None = None) -> str:
    """A way people write this number: digits, thousands separators or `5.2k`, money (in its field's
    or the instance's `currency`) or cents, a percentage or a common fraction, whole minutes or hours
    for a duration in seconds."""
    text = number_text(value)
    if isinstance(value, bool):
        return text
    r = rng.random()
    if is_fraction(key, node) and 0 <= value <= 1 and r < 0.5:
        pct = f"{round(float(value) * 100, 6):g}"
        names = FRACTION_NAMES.get(float(value))
        if names and rng.random() < 0.5:
            return rng.choice(names)
        return rng.choice([f"{pct}%", f"{pct}%", f"{pct} percent", f"{pct} pct"])
    if is_money(key, node) and r < 0.7:
        code = money_currency(key, currency)
        cents = round(float(value) * 100, 6)
        # the currency is tested after the draw, so every currency spends the random stream alike
        if 0 < value < 1 and cents == int(cents) and rng.random() < 0.25 and code in ("USD", "EUR"):
            return f"{int(cents)} cents"
        return money_text(text, code, rng)
    if isinstance(value, int) and is_seconds(key, node) and r < 0.5:
        words = duration_words(value)
        if words:
            return rng.choice(words)
    if isinstance(value, int) and abs(value) >= 1000 and r < 0.5:
        short = short_number(value)
        if short and rng.random() < 0.4:
            return rng.choice([short, short, short.upper(), short.replace("k", " thousand").replace("M", " million")])
        return f"{value:,}"
    if isinstance(value, int) and 0 <= value <= 10 and r < 0.15:
        return COUNT_WORDS[value]
    return text


def spell_string(value: str, rng: random.Random, quote: float = 0.25) -> str:
    """A string as written in a request: as it is, or quoted."""
    if value == "" or value != value.strip():
        return json.dumps(value, ensure_ascii=False)
    if " " in value and rng.random() < quote:
        return rng.choice(['"{}"', "'{}'", '"{}"']).format(value)
    return value


# Generic English words people use for common enum values (states, levels, priorities), not tied to any
# schema. A synonym is used only where it names no other value of the same enum (`enum_words`).
ENUM_SYNONYMS: dict[str, tuple[str, ...]] = {
    "done": ("finished", "completed", "complete"),
    "completed": ("finished", "done", "complete"),
    "complete": ("finished", "done", "completed"),
    "finished": ("done", "completed", "complete"),
    "running": ("in progress", "active", "underway"),
    "in_progress": ("running", "underway", "ongoing", "in progress"),
    "active": ("live", "enabled", "running"),
    "inactive": ("disabled", "not active"),
    "enabled": ("on", "active"),
    "disabled": ("off", "inactive"),
    "pending": ("waiting", "queued", "not started"),
    "queued": ("waiting", "pending"),
    "waiting": ("pending", "on hold"),
    "blocked": ("stuck", "on hold", "waiting"),
    "paused": ("on hold", "suspended"),
    "idle": ("inactive", "doing nothing"),
    "failed": ("failure", "crashed", "errored"),
    "error": ("failure", "errored", "failed"),
    "cancelled": ("canceled", "called off", "aborted"),
    "canceled": ("cancelled", "called off", "aborted"),
    "open": ("opened", "unresolved", "still open"),
    "closed": ("shut", "resolved"),
    "resolved": ("fixed", "closed"),
    "approved": ("accepted", "ok'd", "signed off"),
    "rejected": ("declined", "refused", "turned down"),
    "draft": ("not final", "drafted"),
    "shipped": ("sent", "dispatched"),
    "delivered": ("arrived", "received"),
    "paid": ("settled",),
    "refunded": ("paid back", "money returned"),
    "low": ("minor", "small", "lo"),
    "medium": ("moderate", "med", "mid"),
    "high": ("major", "serious", "hi"),
    "critical": ("severe", "urgent", "crit"),
    "urgent": ("critical", "asap"),
    "minor": ("low", "small"),
    "major": ("high", "big", "serious"),
    "warning": ("warn",),
    "warn": ("warning",),
    "info": ("information", "informational"),
    "debug": ("debugging", "verbose"),
    "fatal": ("critical", "deadly"),
    "free": ("free tier", "no-cost"),
    "pro": ("professional", "premium"),
    "enterprise": ("business", "corporate"),
    "yes": ("y", "yep"),
    "no": ("n", "nope"),
    "unknown": ("not known", "unclear"),
    "other": ("something else", "misc"),
    "male": ("man",),
    "female": ("woman",),
}


def _spaced(value: Any) -> list[str]:
    text = str(value)
    spaced = re.sub(r"[_\-]+", " ", text)
    return [text] if spaced == text else [text, spaced]


def enum_words(value: Any, enum: list[Any] | None = None) -> list[str]:
    """How an enum value is said: as it is, with its underscores and dashes as spaces, or (given the
    whole `enum`) a common synonym that names no other value of it ("finished" for `done`)."""
    out = _spaced(value)
    if not enum:
        return out
    taken = {w.lower() for other in enum if other != value for w in _spaced(other)}
    for other in enum:
        if other != value and isinstance(other, str):
            taken.update(s.lower() for s in ENUM_SYNONYMS.get(other.lower(), ()))
    for syn in ENUM_SYNONYMS.get(str(value).lower(), ()):
        if syn.lower() not in taken and syn not in out:
            out.append(syn)
    return out


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def date_words(value: str) -> list[str]:
    """The ways people write an ISO date (`2026-03-03`) in words: "March 3, 2026", "3 Mar 2026", ...
    (empty for anything that is not a plain YYYY-MM-DD)."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value)
    if not m:
        return []
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return []
    full, short = MONTHS[month - 1], MONTHS[month - 1][:3]
    out = []
    for mon in (full, short):
        out += [f"{mon} {day}, {year}", f"{day} {mon} {year}", f"{mon} {_ordinal(day)}, {year}",
                f"{mon} {_ordinal(day)} {year}", f"{mon} {day} {year}"]
    out.append(f"the {_ordinal(day)} of {full} {year}")
    return out


def datetime_words(value: str) -> list[str]:
    """The ways people write an RFC 3339 timestamp in words: `2026-03-03T14:05:00Z` as "March 3, 2026 at
    14:05 UTC", "14:05 UTC on 3 Mar 2026", ...; a fraction stays on the seconds ("14:05:00.25 UTC") and an
    offset follows UTC ("14:05 UTC-05:00"), so the words name exactly one timestamp (empty for anything
    else)."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", value)
    if not m or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        return []
    hour, minute, second, fraction, zone = m.group(2, 3, 4, 5, 6)
    clock = f"{hour}:{minute}" + (f":{second}{fraction or ''}" if second != "00" or fraction else "")
    utc = "UTC" if zone == "Z" else f"UTC{zone}"
    out = []
    for day in date_words(m.group(1)):
        out += [f"{day} at {clock} {utc}", f"{day}, {clock} {utc}", f"{clock} {utc} on {day}",
                f"{day} {clock} {utc}"]
    return out


def date_stated(text: str, value: str) -> bool:
    """Whether `text` states the ISO date or RFC 3339 timestamp `value` in words (`date_words`,
    `datetime_words`)."""
    low = text.lower()
    return any(re.search(rf"(?<![\w]){re.escape(w.lower())}(?![\w]|[+-]\d)", low)  # "UTC" is not "UTC+02:00"
               for w in date_words(value) + datetime_words(value))


def count_word(n: int, rng: random.Random) -> str:
    """`2` -> `two` (or `2`)."""
    if 0 <= n < len(COUNT_WORDS) and rng.random() < 0.7:
        return COUNT_WORDS[n]
    return str(n)


NEGATIONS = ("not ", "no ", "n't ", "never ", "without ", "un", "non-", "non ")
# A boolean whose key only says "on" (`enabled`, `active`): people name the feature it switches by
# the object that holds it ("retry on", "disable the instance id"), never by the key.
SWITCH_WORDS = {"enabled", "enable", "active", "activated", "on", "is", "switched"}
_SWITCH_ON_BEFORE = re.compile(r"(\benable|\bactivate|\bturn on|\bswitch on|\bwith)\s+([\w-]+\s+){0,2}$")
_SWITCH_OFF_BEFORE = re.compile(r"(\bdisable|\bdeactivate|\bturn off|\bswitch off)\s+([\w-]+\s+){0,2}$")


def is_switch(key: str, node: dict[str, Any]) -> bool:
    """A boolean field whose key says only that something is on (`enabled`, `isActive`)."""
    words = set(humanize(key).split())
    return node.get("type") in ("boolean", None) and bool(words) and words <= SWITCH_WORDS and words != {"is"}


def opposites(names: list[str]) -> list[str]:
    """Words that say a boolean named by one of `names` is false ("unresolved", "still open")."""
    out: list[str] = []
    for name in names:
        for word in OPPOSITES.get(name.lower(), ()):
            if word not in out:
                out.append(word)
    return out


def boolean_stated(text: str, value: bool, names: list[str]) -> bool:
    """Whether `text` says the boolean `value` of a field named by one of `names`.

    Positive: the name with no negation before it, or followed by yes/true. Negative: a negation just
    before the name, the name followed by no/false, or an opposite of the name ("unresolved", "open").
    """
    low = text.lower()
    for word in opposites(names):
        for m in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", low):
            before = low[max(0, m.start() - 12):m.start()]
            negated = re.search(r"(\bnot|\bno|n't|\bnever)\s+(\w+\s+)?$", before) is not None
            if negated == value:
                return True
    for name in names:
        for m in re.finditer(rf"(?<![\w]){re.escape(name.lower())}(?![\w])", low):
            before = low[max(0, m.start() - 24):m.start()]
            after = low[m.end():m.end() + 14]
            neg_before = any(before.endswith(n) for n in NEGATIONS) or re.search(
                r"(\bnot|\bno|n't|\bnever|\bwithout)\s+(\w+\s+)?$", before) is not None \
                or _SWITCH_OFF_BEFORE.search(before) is not None
            yes_after = re.match(r"\s*[:=\-]?\s*(yes|true|y|on|enabled|switched on)\b", after) is not None \
                or (_SWITCH_ON_BEFORE.search(before) is not None and not neg_before)
            no_after = re.match(r"\s*[:=\-]?\s*(no|false|n|off|disabled|switched off)\b", after) is not None
            said = (not neg_before and not no_after) or yes_after
            if no_after or (neg_before and not yes_after):
                said = False
            if said == value:
                return True
    return False


def empty_stated(text: str, names: list[str]) -> bool:
    """Whether `text` says a list or object named by one of `names` is empty ("no incidents")."""
    low = text.lower()
    for name in names:
        n = re.escape(name.lower())
        if re.search(rf"\b(no|zero|without any|without|0)\s+{n}\b", low) or \
                re.search(rf"\b{n}\s*(?:[:=\-]|is|are|was|were)?\s*(none|nothing|no|\(none\)|\[\]|\(empty\)|0)(?!\w)",
                          low):
            return True
    return False
