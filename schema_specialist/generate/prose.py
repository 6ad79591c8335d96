"""A request in prose, written from an instance the way people write one.

Values sit inside sentences; labels are paraphrased (`vocabulary.labels`) or left out where a value
speaks for itself (an enum word, an id with a pattern, a timestamp); numbers come as people write them
(`$0.42`, `22 cents`, `40%`, `5,200`, `5.2k`, `5 minutes`); booleans and empty lists are said in words
("not resolved", "still open", "no incidents"); dates and timestamps sometimes in words;
nested objects become clauses and arrays counted lists; field order, openers, punctuation and case vary.
The text is built as segments, and only the non-value segments are ever restyled, so every value is
stated exactly as `questions.missing_facts` recovers it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from . import vocabulary as vocab

TEXT, LABEL, VALUE, DESC = "text", "label", "value", "desc"
DESCRIBED = 0.4  # share of fields said with their description's words, where it defines them


@dataclass
class Seg:
    """One piece of a request: filler text, a field's label, words of its description, or a value
    (never restyled)."""

    kind: str
    text: str


Mention = list[Seg]

OPENERS = [
    "", "", "", "Hey, ", "Hi, ", "Quick update: ", "Update: ", "FYI: ", "Please log this: ", "Note: ",
    "Status: ", "Please record the following. ", "Can you file this? ", "For the record, ", "OK so ",
    "Heads up: ", "Here's the {title}: ", "New {title}: ", "{Title}: ", "Log a {title}: ",
    "I need a {title} for this: ", "Record this {title}. ", "{Title} - ", "Writing up the {title}: ",
]
CLOSERS = ["", "", "", ".", ".", ".", " Thanks!", " Thanks.", " Thx", " Cheers.", " Let me know if anything's missing.",
           " That's all.", " :)", "!"]
# Asides with no values in them: people wrap a request in chatter, and the answer must ignore it.
ASIDES = [
    "Sorry for the delay.", "More details to follow.", "Not sure this matters, but here it is.", "Sent from my phone.",
    "Ping me if something looks off.", "Copying the team here.", "As discussed earlier today.",
    "This came up in the morning sync.", "Long day, bear with me.", "Adding it here so it isn't lost.",
    "Double-checked it twice.", "Someone asked me to pass this on.", "Just so everyone is on the same page.",
    "Writing this from memory, so bear with me.", "Following up on the earlier thread.", "No rush on this.",
]
JOINERS = [", ", ", ", "; ", " and ", ", and ", " - ", " with "]
PROTECTED = {"without", "never", "false", "nothing", "isn't", "first", "second", "third", "fourth", "fifth",
             "enable", "disable", "enabled", "disabled", "switched", "turned"}
BREAKS = [". ", ". ", ". ", "; ", "\n", " | ", ". Also ", ". Oh and "]


def _self_evident(node: dict[str, Any]) -> bool:
    """A value that names its field by its shape: enum word, patterned id, date or time, email."""
    return bool(node.get("enum")) or isinstance(node.get("pattern"), str) or node.get("format") in (
        "date-time", "date", "time", "email", "uri", "uuid")


class ProseWriter:
    """Writes one request for an instance; `nav` walks the schema beside it (`questions.SchemaNav`)."""

    def __init__(self, nav: Any, rng: random.Random) -> None:
        self.nav, self.rng = nav, rng
        self.currency: str | None = None  # the instance's own currency (`vocabulary.instance_currency`)

    # -- scalars ---------------------------------------------------------------------------------
    def value_text(self, key: str, node: dict[str, Any], value: Any) -> str:
        rng = self.rng
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return vocab.spell_number(value, key, node, rng, self.currency)
        if node.get("format") in ("date", "date-time") and isinstance(value, str) and rng.random() < 0.35:
            words = vocab.date_words(value) if node["format"] == "date" else vocab.datetime_words(value)
            if words:
                return rng.choice(words)
        if node.get("enum"):
            words = vocab.enum_words(value, node["enum"])
            word = words[0] if len(words) == 1 or rng.random() < 0.4 else rng.choice(words[1:])
            if word != word.lower() and rng.random() < 0.5:
                return word.lower()  # "batch", "per message": people seldom write an enum in capitals
            return word[:1].upper() + word[1:] if rng.random() < 0.15 else word  # "Pro plan" (any case)
        return vocab.spell_string(str(value), rng)

    def label(self, key: str, node: dict[str, Any]) -> str:
        return vocab.pick_label(key, node, self.rng, siblings=sibling_keys(self.nav).get(key, ()))

    def scalar(self, key: str, node: dict[str, Any], value: Any) -> Mention:
        """One field with a scalar value, in one of the ways people say it."""
        rng = self.rng
        if isinstance(value, bool):
            return self.boolean(key, node, value)
        v = Seg(VALUE, self.value_text(key, node, value))
        if (forms := vocab.described(key, node)) and rng.random() < DESCRIBED:
            return self.describe(rng.choice(forms), v, isinstance(value, int) and
                                 v.text in vocab.duration_words(value))
        if isinstance(value, int) and v.text in vocab.duration_words(value):
            # "retry every 5 minutes": a duration in words needs no "seconds" label
            rest = " ".join(w for w in vocab.humanize(key).split() if w not in vocab.SECOND_WORDS)
            lead = rng.choice(["every ", "after ", "", "each ", "interval of "])
            return [Seg(LABEL, rest), Seg(TEXT, " " + lead), v] if rest else [Seg(TEXT, lead), v]
        lab = Seg(LABEL, self.label(key, node))
        if _self_evident(node) and rng.random() < 0.45:
            if node.get("enum"):
                lead = rng.choice(["", "", "currently ", "now ", "it's ", "marked ", "status ", "is ", "set to "])
                return [Seg(TEXT, lead), v]
            if node.get("format") in ("date-time", "date", "time"):
                return [Seg(TEXT, rng.choice(["as of ", "at ", "on ", "", "timestamp ", "dated "])), v]
            return [v]
        if isinstance(value, int | float) and rng.random() < 0.4:
            return [v, Seg(TEXT, " "), lab] if rng.random() < 0.7 else [v, Seg(TEXT, rng.choice([" for ", " as "])), lab]
        form = rng.choice(["{L} {V}", "{L}: {V}", "{L} is {V}", "{L} = {V}", "{L} was {V}", "the {L} is {V}",
                           "{L} of {V}", "{L} at {V}", "{L} {V}", "{L}: {V}", "{L} - {V}", "{L} set to {V}",
                           "{V} ({L})", "{V} as the {L}", "{V} for {L}", "the {V} {L}"])
        return _fill(form, lab, v)

    @staticmethod
    def describe(form: str, v: Seg, in_words: bool) -> Mention:
        """A value said with its field's description ("up to 120 seconds to keep log messages before
        publishing them"); a duration in words ("2 minutes") drops the form's unit."""
        unit = "" if in_words else (" second" if v.text in ("1", "one") else " seconds")
        return _fill(form.replace(" " + vocab.UNIT, unit), None, v, filler=DESC)

    def boolean(self, key: str, node: dict[str, Any], value: bool) -> Mention:
        rng = self.rng
        lab = Seg(LABEL, self.label(key, node))
        if value:
            form = rng.choice(["{L}", "{L}: yes", "{L} yes", "{L}: true", "is {L}", "marked {L}", "{L} = true",
                               "yes {L}", "{L}: y", "already {L}", "{L} now"])
        elif (words := vocab.opposites(vocab.labels(key, node))) and rng.random() < 0.4:
            # "still open", "unresolved", "disabled": the field's opposite, never its own name
            word = Seg(LABEL, rng.choice(words))
            lead = rng.choice(["", "", "is ", "left ", "marked ", "currently ", "still "])
            return [Seg(TEXT, "" if word.text.startswith("still") else lead), word]
        else:
            form = rng.choice(["not {L}", "{L}: no", "{L} no", "{L}: false", "isn't {L}", "not {L} yet",
                               "{L} = false", "no {L}", "{L}: n"])
        return _fill(form, lab, None)

    # -- containers ------------------------------------------------------------------------------
    def field(self, key: str, node: dict[str, Any], value: Any, depth: int) -> list[Mention]:
        """The mentions of one field: one for a scalar, a clause for an object or array."""
        rng = self.rng
        if isinstance(value, dict):
            switch = self.switch(key, node, value)
            rest = {k: v for k, v in value.items() if switch is None or k != switch[0]}
            inner = self.obj_mentions(node, rest, depth + 1)
            if switch is not None:  # "retry on, every 5 minutes, 3 retries"
                if not inner:
                    return [switch[1]]
                sep = rng.choice([", ", ", ", ": ", " - ", " with "])
                return [switch[1] + [Seg(TEXT, sep)] + _join(inner, rng, ", ")]
            if not inner:
                return [[Seg(TEXT, "no "), Seg(LABEL, self.label(key, node))]]
            first = rng.random() < 0.55  # drawn at every depth, so flat schemas keep their stream
            if first if depth == 0 else rng.random() < 0.5:
                head = [Seg(LABEL, self.label(key, node)), Seg(TEXT, rng.choice([": ", " - ", " (", ": "]))]
                closing = ")" if head[1].text == " (" else ""
                return [head + _join(inner, rng, ", ") + ([Seg(TEXT, closing)] if closing else [])]
            if depth > 0 or any(k in shared_keys(self.nav) for k in value):
                # the fields said on their own, each named with the object's label ("retry interval")
                return [self.qualify(m, self.label(key, node)) for m in inner]
            return inner
        if isinstance(value, list):
            return [self.array(key, node, value, depth)]
        return [self.scalar(key, node, value)]

    def switch(self, key: str, node: dict[str, Any], value: dict[str, Any]) -> tuple[str, Mention] | None:
        """(its key, the mention) for an `enabled`-like boolean of this object said by the object's
        name ("retry on", "disable the instance id"), or None."""
        rng = self.rng
        keys = [k for k, v in value.items() if isinstance(v, bool) and vocab.is_switch(k, self.nav.child(node, k))]
        if not keys or rng.random() >= 0.6:
            return None
        on = value[keys[0]]
        forms = (["{L} on", "{L} enabled", "enable {L}", "turn on {L}", "{L}: on", "{L} switched on",
                  "{L}: enabled", "{L} yes", "with {L} on", "{L} turned on"] if on else
                 ["{L} off", "{L} disabled", "disable {L}", "turn off {L}", "{L}: off", "{L} switched off",
                  "no {L}", "without {L}", "{L} turned off", "disable the {L}"])
        return keys[0], _fill(rng.choice(forms), Seg(LABEL, self.label(key, node)), None)

    @staticmethod
    def qualify(mention: Mention, parent: str) -> Mention:
        """The mention with the object's label before the field's ("retry seconds: 5"); a field said
        with its own description is left as it is."""
        if any(seg.kind == DESC for seg in mention):
            return mention
        for i, seg in enumerate(mention):
            if seg.kind == LABEL:
                if seg.text.startswith(parent):
                    return mention
                return [*mention[:i], Seg(LABEL, f"{parent} {seg.text}"), *mention[i + 1:]]
        return [Seg(LABEL, parent), Seg(TEXT, " "), *mention]

    def array(self, key: str, node: dict[str, Any], value: list[Any], depth: int) -> Mention:
        rng = self.rng
        lab = Seg(LABEL, self.label(key, node))
        item = self.nav.items(node)
        if not value:
            form = rng.choice(["no {L}", "{L}: none", "zero {L}", "without any {L}", "{L}: none so far", "no {L}"])
            return _fill(form, lab, None)
        if all(not isinstance(v, dict | list) for v in value):
            vals = [Seg(VALUE, self.value_text(key, item, v)) for v in value]
            body = _join([[v] for v in vals], rng, ", ", final=rng.choice([" and ", ", "]))
            head = rng.choice([[lab, Seg(TEXT, ": ")], [lab, Seg(TEXT, " ")],
                               [Seg(TEXT, f"{vocab.count_word(len(value), rng)} "), lab, Seg(TEXT, ": ")]])
            return head + body
        count = vocab.count_word(len(value), rng)
        head = rng.choice([[Seg(TEXT, f"{count} "), lab, Seg(TEXT, ": ")], [lab, Seg(TEXT, ": ")],
                           [lab, Seg(TEXT, f" ({count}): ")]])
        parts: list[Mention] = []
        ordinal = rng.choice(["plain", "numbered", "words"])
        for i, v in enumerate(value, 1):
            inner = self.obj_mentions(item, v, depth + 1) if isinstance(v, dict) else \
                [self.scalar(key, item, v)]
            body = _join(inner, rng, ", ")
            if ordinal == "numbered":
                body = [Seg(TEXT, f"{i}) ")] + body
            elif ordinal == "words":
                body = [Seg(TEXT, ["first ", "second ", "third ", "fourth ", "fifth "][min(i, 5) - 1]
                            if rng.random() < 0.5 else ["one ", "another ", "and one more ", "one more ",
                                                        "last "][min(i, 5) - 1])] + body
            parts.append(body)
        return head + _join(parts, rng, "; ", final=rng.choice(["; and ", "; "]))

    def obj_mentions(self, node: dict[str, Any], value: dict[str, Any], depth: int) -> list[Mention]:
        keys = self.nav.ordered(node, value)
        if depth > 0 and self.rng.random() < 0.3:
            self.rng.shuffle(keys)
        out: list[Mention] = []
        for k in keys:
            out.extend(self.field(k, self.nav.child(node, k), value[k], depth))
        return out

    # -- the request ------------------------------------------------------------------------------
    def request(self, instance: Any, title: str) -> str:
        rng = self.rng
        root = self.nav.deref(self.nav.schema.raw)
        self.currency = vocab.instance_currency(instance)
        if isinstance(instance, dict):
            keys = self.nav.ordered(root, instance)
            if rng.random() < 0.6:  # users state fields in any order, often the subject first
                first, rest = keys[:1], keys[1:]
                rng.shuffle(rest)
                keys = first + rest if rng.random() < 0.6 else rest + first
            mentions: list[Mention] = []
            for k in keys:
                mentions.extend(self.field(k, self.nav.child(root, k), instance[k], 0))
        else:
            mentions = [self.field("value", root, instance, 0)[0]]
        if not mentions:
            mentions = [[Seg(TEXT, "nothing to add")]]
        body = self.sentences(mentions)
        opener = rng.choice(OPENERS).format(title=title, Title=title[:1].upper() + title[1:])
        closer = rng.choice(CLOSERS)
        bare = bool(body) and body[-1].kind == VALUE  # the facts end on a value: words after it must not
        if bare and closer[1:2].isalpha():  # run on from it ("task KTistwAZQE o1L thanks" is ambiguous)
            closer = "." + closer
        segs = [Seg(TEXT, opener), *body, Seg(TEXT, closer)]
        if rng.random() < 0.25:  # an aside before or after the facts
            aside = Seg(TEXT, rng.choice(ASIDES))
            after = ". " if bare and not closer else " "
            segs = [aside, Seg(TEXT, " "), *segs] if rng.random() < 0.5 else [*segs, Seg(TEXT, after), aside]
        return render(restyle(segs, rng))

    def sentences(self, mentions: list[Mention]) -> list[Seg]:
        rng = self.rng
        chunks: list[list[Mention]] = []
        i = 0
        while i < len(mentions):
            size = rng.choice([1, 2, 2, 3, 3, 4])
            chunks.append(mentions[i:i + size])
            i += size
        out: list[Seg] = []
        for c, chunk in enumerate(chunks):
            if c:
                out.append(Seg(TEXT, rng.choice(BREAKS)))
            out += _join(chunk, rng, rng.choice(JOINERS), final=rng.choice([" and ", ", ", ", and "]))
        return out


_SHARED: dict[str, frozenset[str]] = {}
_SIBLINGS: dict[str, dict[str, frozenset[str]]] = {}


def _objects(nav: Any) -> list[list[str]]:
    """The property keys of each object the schema declares (refs followed, six levels deep)."""
    out: list[list[str]] = []

    def walk(n: Any, depth: int) -> None:
        if depth > 6:
            return
        n = nav.deref(n)
        props = n.get("properties")
        if isinstance(props, dict):
            out.append(list(props))
            for sub in props.values():
                walk(sub, depth + 1)
        elif isinstance(n.get("items"), dict):
            walk(n["items"], depth + 1)

    walk(nav.schema.raw, 0)
    return out


def shared_keys(nav: Any) -> frozenset[str]:
    """Property keys that more than one object of the schema declares: a field with such a key, said
    without its object's name, would not say which object it sets (computed once per schema)."""
    sha = nav.schema.sha256
    if sha not in _SHARED:
        counts: dict[str, int] = {}
        for keys in _objects(nav):
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
        if len(_SHARED) > 256:
            _SHARED.clear()
        _SHARED[sha] = frozenset(k for k, c in counts.items() if c > 1)
    return _SHARED[sha]


def sibling_keys(nav: Any) -> dict[str, frozenset[str]]:
    """For each property key, the other keys of every object that declares it (computed once per
    schema): `vocabulary.labels` names a count by its noun only where no sibling shares that noun."""
    sha = nav.schema.sha256
    if sha not in _SIBLINGS:
        out: dict[str, set[str]] = {}
        for keys in _objects(nav):
            for k in keys:
                out.setdefault(k, set()).update(o for o in keys if o != k)
        if len(_SIBLINGS) > 256:
            _SIBLINGS.clear()
        _SIBLINGS[sha] = {k: frozenset(v) for k, v in out.items()}
    return _SIBLINGS[sha]


def _fill(form: str, lab: Seg | None, value: Seg | None, filler: str = TEXT) -> Mention:
    """The form's `{L}` and `{V}` as the label and value segments, the rest as `filler` segments."""
    out: Mention = []
    for piece in re.split(r"(\{L\}|\{V\})", form):
        if piece == "{L}" and lab is not None:
            out.append(Seg(LABEL, lab.text))
        elif piece == "{V}" and value is not None:
            out.append(value)
        elif piece:
            out.append(Seg(filler, piece))
    return out


def _join(parts: list[Mention], rng: random.Random, sep: str, final: str | None = None) -> list[Seg]:
    out: list[Seg] = []
    for i, p in enumerate(parts):
        if i:
            out.append(Seg(TEXT, final if final is not None and i == len(parts) - 1 else sep))
        out += p
    return out


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def restyle(segs: list[Seg], rng: random.Random) -> list[Seg]:
    """Case and typos on filler and labels only (values stay exact); tidy spaces and punctuation."""
    case = rng.choices(["keep", "lower", "upper_first"], [0.6, 0.3, 0.1])[0]
    typo = rng.random() < 0.15
    out = []
    for s in segs:
        text = s.text
        if s.kind != VALUE:
            if case == "lower":
                text = text.lower()
            if typo and s.kind == TEXT:
                words = [w for w in re.findall(r"[A-Za-z]{5,}", text) if w.lower() not in PROTECTED]
                if words:
                    w = rng.choice(words)
                    text = text.replace(w, _typo(w, rng), 1)
                    typo = False
        out.append(Seg(s.kind, text))
    return out


def render(segs: list[Seg]) -> str:
    """Join the segments; collapse doubled spaces and punctuation in filler (never inside values)."""
    text = "".join(s.text for s in segs)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,;.])(?=\s|$)", r"\1", text)
    text = re.sub(r"([.;,])[.;,]+(?=\s|$)", r"\1", text)
    return text.strip()
