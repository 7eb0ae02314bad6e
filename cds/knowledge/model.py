"""Typed views of rules/: what the loader builds and the engine reads.

Nothing here holds clinical content; every value comes from the YAML files.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cds.knowledge.conditions import Condition, FactField


@dataclass(frozen=True)
class Reference:
    id: str
    kind: str  # label | label-non-us | paper
    short: str  # how a card names it ("Gablofen label")
    title: str
    url: str
    setid: str | None = None
    pmid: str | None = None
    doi: str | None = None


@dataclass(frozen=True)
class Terminology:
    key: str
    system: str
    title: str
    code_page: str

    def page(self, code: str) -> str:
        return self.code_page.replace("{code}", code)


@dataclass(frozen=True)
class Source:
    """Where an item comes from: a reference and section, a terminology, or local policy."""

    ref: str | None = None
    section: str | None = None
    terminology: str | None = None
    code: str | None = None
    policy: str | None = None  # the reason, for "local policy: <reason>"

    @property
    def is_local_policy(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True)
class Code:
    system_key: str
    system: str  # the URI
    code: str
    display: str
    status: str
    evidence: str = ""
    prefix: bool = False


_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Negation:
    """Words that negate a finding written after them, within a few words and not across
    punctuation (the NegEx approach)."""

    cues: tuple[str, ...]
    scope_words: int

    @property
    def reach(self) -> int:
        """How many words before a finding a negation of it can span: its cue's words, the
        scope, and one more for a cue glued to what precedes it ("(no")."""
        return max((len(c.split()) for c in self.cues), default=1) + self.scope_words + 1

    @property
    def pattern(self) -> re.Pattern[str]:
        cues = "|".join(re.escape(c) for c in sorted(self.cues, key=len, reverse=True))
        return re.compile(rf"(?<![a-z])(?:{cues})(?:\s+[^\s,;:.!?()]+){{0,{self.scope_words}}}"
                          r"\s*$")


@dataclass(frozen=True)
class CodeSet:
    """Codes compared on system AND code; ICD-10-CM families by prefix; optional words."""

    name: str
    about: str = ""
    codes: tuple[Code, ...] = ()
    words: tuple[str, ...] = ()
    exact: frozenset[tuple[str, str]] = frozenset()
    prefixes: tuple[tuple[str, str], ...] = ()
    negated: re.Pattern[str] | None = None  # text just before a word that negates it
    word_pattern: re.Pattern[str] | None = None  # the words, whole (a plural allowed)
    negation_reach: int = 0  # Negation.reach

    @classmethod
    def of(cls, name: str, about: str, codes: tuple[Code, ...], words: tuple[str, ...] = (),
           negation: Negation | None = None) -> CodeSet:
        lowered = tuple(w.lower() for w in words)
        whole = sorted({w.strip() for w in lowered if w.strip()}, key=len, reverse=True)
        pattern = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in whole)
                             + r")(?:s|es)?(?![a-z0-9])") if whole else None
        return cls(name, about, codes, lowered,
                   frozenset((c.system, c.code) for c in codes if not c.prefix),
                   tuple((c.system, c.code) for c in codes if c.prefix),
                   negation.pattern if negation and words else None, pattern,
                   negation.reach if negation else 0)

    # JSON objects are dicts: isinstance(x, dict) is several times cheaper than Mapping's
    # ABC check, and these run for every coding of every reading.
    def matches_coding(self, coding: Any) -> bool:
        if not isinstance(coding, dict):
            return False
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            return False
        if (system, code) in self.exact:
            return True
        return any(system == s and code.startswith(p) for s, p in self.prefixes)

    def matches_concept(self, concept: Any) -> bool:
        """A CodeableConcept with a matching coding, or (for word sets) matching text."""
        if not isinstance(concept, dict):
            return False
        codings = concept.get("coding")
        if isinstance(codings, list) and any(self.matches_coding(c) for c in codings):
            return True
        return bool(self.words) and self.matches_text(concept_text(concept))

    def matches_text(self, text: str) -> bool:
        """A word of the set in `text` (lower case), as a whole word ("ok" is not in
        "broken", "eri" not in "period"), unless negated ("not pregnant", "no alarm",
        "denies seizures")."""
        if self.word_pattern is None:
            return False
        padded = f" {text} "
        word_starts: list[int] | None = None
        for found in self.word_pattern.finditer(padded):
            if self.negated is None:
                return True
            # Only the last few words before a finding can negate it: searching those
            # alone, not all the text before it, keeps a long text linear (issue 25.1:
            # "no fever no fever ..." was quadratic). The negation pattern ends at `$`,
            # which search() places at its end position.
            if word_starts is None:
                word_starts = [m.start() for m in _WORD.finditer(padded)]
            first = bisect_left(word_starts, found.start()) - self.negation_reach
            window = word_starts[first] if first > 0 else 0
            if not self.negated.search(padded, window, found.start()):
                return True
        return False

    def tokens(self) -> list[str]:
        return sorted(f"{s}|{c}" for s, c in self.exact)


class ByCodeSet:
    """A call's resources sorted once into the code sets of an index (one hash lookup per
    coding of `field`), so each finder walks its own few resources instead of every one of
    the record: the same answer as CodeSet.matches_concept (an index built with
    codes_first=False)."""

    def __init__(self, index: CodeIndex, resources: Sequence[Mapping],
                 field: str = "code") -> None:
        self._position = {id(s): p for p, s in enumerate(index.sets)}
        self._resources = resources
        self._indices: dict[int, list[int]] = {}
        for i, resource in enumerate(resources):
            for position in index.positions(resource.get(field)):
                self._indices.setdefault(position, []).append(i)

    def of(self, *code_sets: CodeSet) -> list[Mapping]:
        """The resources any of `code_sets` matches, in record order."""
        found: set[int] = set()
        for code_set in code_sets:
            found.update(self._indices.get(self._position[id(code_set)], ()))
        return [self._resources[i] for i in sorted(found)]


class CodeIndex:
    """Which of many code sets a concept matches, in one pass over its codings: a hash
    lookup per coding instead of a scan per set (hundreds of readings per call)."""

    def __init__(self, sets: Iterable[CodeSet], codes_first: bool = True) -> None:
        self.sets: tuple[CodeSet, ...] = tuple({id(s): s for s in sets}.values())
        self.codes_first = codes_first
        exact: dict[tuple[str, str], set[int]] = {}
        prefixes: list[tuple[str, str, int]] = []
        for position, code_set in enumerate(self.sets):
            for key in code_set.exact:
                exact.setdefault(key, set()).add(position)
            prefixes += [(system, prefix, position) for system, prefix in code_set.prefixes]
        self._exact = {key: frozenset(found) for key, found in exact.items()}
        self._prefixes = tuple(prefixes)
        # A coding of a system no set matches by prefix (LOINC, RxNorm) is settled by
        # its exact lookup alone.
        self._prefix_systems = frozenset(system for system, _, _ in prefixes)
        self._worded = tuple((p, s) for p, s in enumerate(self.sets) if s.words)
        words = sorted({w for _, s in self._worded for w in s.words}, key=len, reverse=True)
        # One search tells most texts apart from every worded set at once.
        self._any_word = re.compile("|".join(re.escape(w) for w in words)) if words else None
        self._memo: dict[tuple, frozenset[int]] = {}

    def positions(self, concept: Any) -> frozenset[int] | set[int]:
        """Positions (in `sets`) of the sets `concept` matches. With `codes_first`, words
        are the fallback for a concept none of whose codings any set knows (a flowsheet
        row with a local code): a reading coded as a heart rate is never re-read by its
        text. Without, every set is tried as CodeSet.matches_concept does (a diagnosis
        whose text names a second sign). Do not change the set returned."""
        if not isinstance(concept, dict):
            return frozenset()
        codings = concept.get("coding")
        if isinstance(codings, list) and len(codings) == 1 and self.codes_first:
            coding = codings[0]  # the usual shape, answered by one lookup
            if isinstance(coding, dict):
                system, code = coding.get("system"), coding.get("code")
                if type(system) is str and type(code) is str:  # else: matches nothing below
                    hit = self._exact.get((system, code))
                    if hit is not None and system not in self._prefix_systems:
                        return hit
        # A record repeats a few concepts hundreds of times (a year of heights and
        # weights): the slower answer (prefixes, words) is remembered per concept.
        key = _concept_key(codings, concept.get("text"))
        if key is not None:
            known = self._memo.get(key)
            if known is None:
                known = frozenset(self._positions(codings, concept))
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()  # why: bounded; hostile requests vary concepts
                self._memo[key] = known
            return known
        return self._positions(codings, concept)

    def _positions(self, codings: Any, concept: dict) -> set[int]:
        found: set[int] = set()
        for coding in codings if isinstance(codings, list) else ():
            if not isinstance(coding, dict):
                continue
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(system, str) or not isinstance(code, str):
                continue
            found |= self._exact.get((system, code), frozenset())
            found.update(p for s, prefix, p in self._prefixes
                         if system == s and code.startswith(prefix))
        if (found and self.codes_first) or self._any_word is None:
            return found
        text = concept_text(concept)
        if not text or not self._any_word.search(f" {text} "):
            return found
        for position, code_set in self._worded:
            if position not in found and code_set.matches_text(text):
                found.add(position)
        return found

    def where(self, sets: Iterable[CodeSet]) -> frozenset[int]:
        """Positions of `sets` in this index."""
        wanted = {id(s) for s in sets}
        return frozenset(p for p, s in enumerate(self.sets) if id(s) in wanted)


MEMO_SIZE = 4096  # concepts remembered per index


def _concept_key(codings: Any, text: Any) -> tuple | None:
    """What positions() reads of a concept, as a hashable key; None when unusual."""
    if codings is None:
        parts: tuple = ()
    elif isinstance(codings, list) and len(codings) <= 8:
        parts = tuple((c.get("system"), c.get("code"), c.get("display"))
                      if isinstance(c, dict) else None for c in codings)
    else:
        return None
    key = (parts, text)
    try:
        hash(key)
    except TypeError:  # a list or object where a string belongs
        return None
    return key


def concept_text(concept: Any) -> str:
    """Lower-cased text and coding displays of a CodeableConcept, for last-resort matching."""
    if not isinstance(concept, dict):
        return ""
    parts: list[str] = []
    if isinstance(concept.get("text"), str):
        parts.append(concept["text"])
    codings = concept.get("coding")
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            parts.append(coding["display"])
    return " ".join(parts).lower()


@dataclass(frozen=True)
class Threshold:
    key: str
    value: float
    unit: str
    type: str
    source: Source
    minimum: float | None = None
    maximum: float | None = None
    overridable: bool = True
    label: str | None = None  # how a card names it


@dataclass(frozen=True)
class ProductCode:
    code: Code
    usable_for_dose: bool  # verified, strength-confirmed or inferred


@dataclass(frozen=True)
class ProductEntry:
    """One row of rules/products.yaml."""

    id: str
    name: str
    form: str
    route: str
    source: Source
    strength_mg: float | None = None
    packet_strengths_mg: tuple[float, ...] = ()
    concentration_mg_per_ml: float | None = None  # liquids, and injections converted
    names: tuple[str, ...] = ()
    codes: tuple[ProductCode, ...] = ()

    @property
    def strength_usable(self) -> bool:
        """A strength the planner may order: it has a code confirmed for this strength."""
        return any(c.usable_for_dose for c in self.codes)


@dataclass(frozen=True)
class Reading:
    """An Observation reading that shows a sign or a patient fact."""

    code_set: CodeSet
    unit: str | None = None
    compare: str | None = None
    threshold: str | None = None
    value: float | None = None
    fetch_with: CodeSet | None = None
    unless: str | None = None  # a patient fact under which the reading shows no sign


@dataclass(frozen=True)
class SignDef:
    key: str
    label: str
    points_to: str  # withdrawal | toxicity | either
    severity: Mapping[str, str]  # route -> severe | early
    readings: tuple[Reading, ...]
    recorded_as: CodeSet | None
    supersedes: tuple[str, ...]
    source: Source
    resolved_by: tuple[str, ...] = ()

    def severity_for(self, route: str) -> str:
        return self.severity.get(route, self.severity.get("any", "early"))


@dataclass(frozen=True)
class MeasurementDef:
    """A value read from Observations (the latest usable reading), in one unit: a body
    weight, a creatinine, an eGFR; `estimate` names the equation that works it out from
    other measurements when no reading is on record."""

    key: str
    label: str
    readings: tuple[Reading, ...]  # code set and the unit the value is expressed in
    unit: str
    source: Source
    estimate: str | None = None
    estimate_source: Source | None = None


@dataclass(frozen=True)
class Finder:
    """One way to find a patient fact in the record."""

    # condition | observation | allergy | patient | measurement | procedure | device |
    # medication
    kind: str
    code_set: CodeSet | None = None
    unit: str | None = None
    compare: str | None = None
    threshold: str | None = None
    value: float | None = None
    answer_in: CodeSet | None = None
    value_after_now: bool = False
    within_days: float | None = None
    latest: bool = False
    only_without: CodeSet | None = None
    recent: bool = False
    patient_field: str | None = None
    measurement: str | None = None
    within_hours: float | None = None
    answer_not_in: CodeSet | None = None  # answered, and not with one of these (no growth)
    planned: bool = False  # a procedure being prepared, not yet done
    # procedure: the set is looked for in what a done procedure found (its outcome,
    # complications and notes), not in what the procedure was
    findings: bool = False
    unless_later: CodeSet | None = None  # procedure: a done one of these after it ends it


@dataclass(frozen=True)
class PatientFactDef:
    key: str
    label: str
    finders: tuple[Finder, ...]
    source: Source


@dataclass(frozen=True)
class RiskFactorDef:
    key: str
    label: str
    source: Source
    when: Condition | None = None
    codes: CodeSet | None = None
    evidence: str = ""
    replaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class DerivedFact:
    key: str
    when: Condition
    source: Source


@dataclass(frozen=True)
class RuleDef:
    id: str
    title: str
    when: Condition
    then: str  # a card kind, or "no-cards"
    source: Source


@dataclass(frozen=True)
class Variant:
    text: str
    when: Condition | None = None

    def applies(self, facts: Mapping[str, Any]) -> bool:
        return self.when is None or self.when.holds(facts)


@dataclass(frozen=True)
class CardKind:
    kind: str
    indicator: str
    group: str
    priority: int
    topic: Mapping[str, str]
    references: tuple[tuple[str, str], ...]  # (reference id, section)
    summary: tuple[Variant, ...]
    actions: tuple[Variant, ...]
    override_reasons: tuple[Mapping[str, str], ...]
    # Indicators of other cards about the same baclofen that make this card redundant.
    not_beside: frozenset[str] = frozenset()
    texts: Mapping[str, Any] = field(default_factory=dict)  # kind-specific extra wording
    withdrawal_risk: bool = True  # the detail has a withdrawal-risk section


@dataclass
class Knowledge:
    """Everything the service believes, after a site override: built once at start-up."""

    references: dict[str, Reference]
    terminologies: dict[str, Terminology]
    code_sets: dict[str, CodeSet]
    solid_dose_units: frozenset[str]
    timing_per_day: dict[str, float]
    timing_system: str
    stop_reason_codes: dict[str, str]
    stop_reason_system: str
    stop_reason_words: dict[str, tuple[str, ...]]
    order_categories: dict[str, tuple[str, ...]]
    category_system: str
    products: dict[str, ProductEntry]
    text_recognition: Mapping[str, Any]
    thresholds: dict[str, Threshold]
    signs: dict[str, SignDef]
    patient_facts: dict[str, PatientFactDef]
    measurements: dict[str, MeasurementDef]
    equations: Mapping[str, Any]
    risk_factors: dict[str, RiskFactorDef]
    risk_high_when_at_least: int
    derived: dict[str, DerivedFact]
    rules: tuple[RuleDef, ...]
    card_groups: tuple[str, ...]
    cards: dict[str, CardKind]
    card_service: Mapping[str, str]
    detail_texts: Mapping[str, Any]
    taper: Any  # cds.taper.params.TaperParams
    fact_fields: dict[str, FactField]
    unit_aliases: dict[str, str]  # lower-cased spelling -> UCUM unit
    unit_conversions: tuple[tuple[str, str, float, float, tuple[str, ...]], ...]
    unitless_units: frozenset[str]
    unit_display: Mapping[str, str]  # UCUM unit -> how a card writes it
    sig_words: Mapping[str, Any]
    fingerprint: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # for the review sheet

    def threshold(self, key: str) -> float:
        return self.thresholds[key].value

    @property
    def threshold_values(self) -> dict[str, float]:
        return {k: t.value for k, t in self.thresholds.items()}

    def reference_url(self, ref: str) -> str:
        return self.references[ref].url

    def source_short(self, source: Source) -> str:
        """A source as a card names it: 'Gablofen label', 'local policy'."""
        if source.policy is not None:
            return "local policy"
        if source.terminology is not None:
            return self.terminologies[source.terminology].title
        return self.references[source.ref or ""].short

    def source_text(self, source: Source) -> str:
        """A source as one line of card or sheet text."""
        if source.policy is not None:
            return f"local policy: {source.policy}"
        if source.terminology is not None:
            title = self.terminologies[source.terminology].title
            return f"{title} {source.code}" if source.code else title
        reference = self.references[source.ref or ""]
        return f"{reference.title}, {source.section}" if source.section else reference.title
