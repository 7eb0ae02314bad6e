"""Loads the clinical knowledge files (codes, thresholds, signs, card texts) and a site override.

The YAML files beside this module are the reviewable source of truth; this module only
reads them, validates a site's override against the declared ranges, and offers the
matching helpers the fact extractors need.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cds.product import Product

KNOWLEDGE_FILES = ("codes.yaml", "thresholds.yaml", "signs.yaml", "cards.yaml")


class KnowledgeError(ValueError):
    """The knowledge files or a site override are invalid; start-up must stop."""


@dataclass(frozen=True)
class CodeSet:
    """Codes compared on system AND code; ICD-10-CM style families by prefix; optional words."""

    name: str
    exact: frozenset[tuple[str, str]] = frozenset()
    prefixes: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()

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
        """True when a CodeableConcept has a matching coding (or, for word sets, text)."""
        if not isinstance(concept, dict):
            return False
        codings = concept.get("coding")
        if isinstance(codings, list) and any(self.matches_coding(c) for c in codings):
            return True
        if self.words:
            text = concept_text(concept)
            return any(w in text for w in self.words)
        return False

    def tokens(self) -> list[str]:
        return sorted(f"{s}|{c}" for s, c in self.exact)


def concept_text(concept: dict) -> str:
    """Lower-cased text and coding displays of a CodeableConcept, for last-resort matching."""
    parts: list[str] = []
    if isinstance(concept.get("text"), str):
        parts.append(concept["text"])
    for coding in _codings(concept):
        if isinstance(coding.get("display"), str):
            parts.append(coding["display"])
    return " ".join(parts).lower()


def _codings(concept: Any) -> list[dict]:
    """The dict codings of a CodeableConcept; anything malformed reads as none."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


@dataclass(frozen=True)
class RiskConditionSet:
    key: str
    label: str
    source: str
    codes: CodeSet


@dataclass
class Knowledge:
    """Everything the rules know, after the site override has been applied."""

    systems: dict[str, str]
    thresholds: dict[str, float]
    threshold_meta: dict[str, dict]
    baclofen_ingredient: CodeSet
    products_by_rxcui: dict[str, Product]
    generic_names: tuple[str, ...]
    brands: tuple[dict, ...]
    intrathecal_routes: CodeSet
    oral_routes: CodeSet
    risk_conditions: dict[str, RiskConditionSet]
    renal_impairment: CodeSet
    sign_conditions: dict[str, CodeSet]
    observations: dict[str, CodeSet]
    signs: dict[str, dict]
    cards: dict[str, Any]
    fingerprint: str = field(default="")

    def threshold(self, name: str) -> float:
        return self.thresholds[name]

    # -- relevance: cheap checks on raw JSON, before any fhir.resources model is built --

    def is_relevant(self, resource: dict, now: datetime | None = None) -> bool:
        """Could the rules read this resource? Keeps prefetch modelling to what matters.

        With `now`, sign Observations older than the look-back window are dropped too:
        a year of vital signs must not cost a model each when only weeks can matter.
        """
        if not isinstance(resource, dict):
            return False
        rtype = resource.get("resourceType")
        if rtype in ("Patient", "Encounter", "Medication"):
            return True
        if rtype == "MedicationRequest":
            return self.could_be_baclofen_request(resource)
        if rtype == "Observation":
            return self._observation_relevant(resource, now)
        if rtype == "Condition":
            return self._any_condition_set.matches_concept(resource.get("code"))
        return False

    @cached_property
    def _any_condition_set(self) -> CodeSet:
        """Every Condition code set the rules read, merged for one pass per resource."""
        sets = self._condition_sets()
        return CodeSet(
            "any-condition",
            frozenset().union(*(cs.exact for cs in sets)),
            tuple(p for cs in sets for p in cs.prefixes),
            tuple(sorted({w for cs in sets for w in cs.words})),
        )

    @cached_property
    def _observation_index(self) -> dict[tuple[str, str], bool]:
        """(system, code) -> True when the code is a sign read only inside the window."""
        unbounded = {"egfr", "creatinine"}  # renal function: the latest value counts, however old
        index: dict[tuple[str, str], bool] = {}
        for name, code_set in self.observations.items():
            for pair in code_set.exact:
                index[pair] = index.get(pair, True) and name not in unbounded
        return index

    @cached_property
    def _observation_words(self) -> bool:
        return any(cs.prefixes or cs.words for cs in self.observations.values())

    def _observation_relevant(self, resource: dict, now: datetime | None) -> bool:
        hit = self.observation_relevance(
            resource, self.relevance_cutoff(now) if now is not None else None)
        return hit is not None

    def observation_relevance(self, resource: dict, cutoff: str | None) -> bool | None:
        """None: the rules never read this Observation (code, or a sign reading taken
        before `cutoff`, an ISO date). True: a sign reading in the window. False: read
        whatever its date (eGFR for the renal risk)."""
        code = resource.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        windowed: bool | None = None
        if isinstance(codings, list):
            for coding in codings:
                system = coding.get("system") if isinstance(coding, dict) else None
                code_value = coding.get("code") if isinstance(coding, dict) else None
                if isinstance(system, str) and isinstance(code_value, str):
                    hit = self._observation_index.get((system, code_value))
                    if hit is not None:
                        windowed = hit if windowed is None else windowed and hit
        if windowed is None:
            if not self._observation_words or not any(
                    cs.matches_concept(code) for cs in self.observations.values()):
                return None
            windowed = True
        if windowed and cutoff is not None and _older_than(resource, cutoff):
            return None
        return windowed

    def relevance_cutoff(self, now: datetime) -> str:
        """ISO date before which a sign reading cannot matter (see relevance_window_days)."""
        return _cutoff_text(now, self.relevance_window_days)

    @property
    def relevance_window_days(self) -> float:
        """Signs count only after a stop within the look-back window (plus a day's margin)."""
        return self.thresholds["lookback_days"] + 1 + self.thresholds["recent_sign_hours"] / 24

    def could_be_baclofen_request(self, request: dict) -> bool:
        if isinstance(request.get("medicationReference"), dict):
            return True  # resolved later against Medication resources, contained or not
        if self.is_baclofen_concept(request.get("medicationCodeableConcept")):
            return True
        return any(
            isinstance(c, dict)
            and c.get("resourceType") == "Medication"
            and self.is_baclofen_concept(c.get("code"))
            for c in (request.get("contained") if isinstance(request.get("contained"), list)
                      else [])
        )

    def is_baclofen_concept(self, concept: Any) -> bool:
        if not isinstance(concept, dict):
            return False
        for coding in _codings(concept):
            if self.baclofen_ingredient.matches_coding(coding):
                return True
            code = coding.get("code")
            if (
                coding.get("system") == self.systems["rxnorm"]
                and isinstance(code, str)
                and code in self.products_by_rxcui
            ):
                return True
        text = concept_text(concept)
        return bool(text) and any(n in text for n in self.all_names())

    @cached_property
    def _all_names(self) -> tuple[str, ...]:
        return self.generic_names + tuple(b["name"] for b in self.brands)

    def all_names(self) -> tuple[str, ...]:
        return self._all_names

    def _condition_sets(self) -> list[CodeSet]:
        sets = [r.codes for r in self.risk_conditions.values()]
        return sets + [self.renal_impairment, *self.sign_conditions.values()]

    # -- prefetch templates --

    def observation_code_tokens(self) -> list[str]:
        """"system|code" tokens of every Observation code the rules read."""
        return sorted({t for cs in self.observations.values() for t in cs.tokens()})

    def condition_code_tokens(self) -> list[str]:
        """"system|code" tokens of exact Condition codes the rules read.

        ICD-10-CM families matched by prefix (e.g. G35, S24.1) cannot be written as FHIR
        tokens; a server that keeps such conditions needs an unfiltered Condition search.
        """
        return sorted({t for cs in self._condition_sets() for t in cs.tokens()})


# ---------------------------------------------------------------- loading


def load_knowledge(override_path: str | None = None) -> Knowledge:
    """Read the knowledge files shipped in this package and apply a site override file."""
    raw = {name: _read_packaged_yaml(name) for name in KNOWLEDGE_FILES}
    thresholds_doc = raw["thresholds.yaml"].get("thresholds")
    if not isinstance(thresholds_doc, dict):
        raise KnowledgeError("thresholds.yaml: missing 'thresholds' mapping")
    _check_sources(thresholds_doc)
    thresholds = {k: v["value"] for k, v in thresholds_doc.items()}
    if override_path:
        thresholds.update(_read_override(Path(override_path), thresholds_doc))
    knowledge = _build(raw, thresholds, thresholds_doc)
    digest = json.dumps(thresholds, sort_keys=True).encode()
    knowledge.fingerprint = hashlib.sha256(digest).hexdigest()[:16]
    return knowledge


def _read_packaged_yaml(name: str) -> dict:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{name}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise KnowledgeError(f"{name}: expected a mapping at the top level")
    return doc


def _check_sources(thresholds_doc: dict) -> None:
    for key, entry in thresholds_doc.items():
        if not isinstance(entry, dict) or "value" not in entry or not entry.get("source"):
            raise KnowledgeError(f"thresholds.yaml: '{key}' needs a value and a source")


def override_schema(thresholds_doc: dict) -> dict:
    """JSON Schema for an override file, derived from the declared thresholds and ranges."""
    props: dict[str, dict] = {}
    for key, entry in thresholds_doc.items():
        if entry.get("overridable", True) is False:
            continue
        prop: dict[str, Any] = {"type": entry.get("type", "number")}
        if "min" in entry:
            prop["minimum"] = entry["min"]
        if "max" in entry:
            prop["maximum"] = entry["max"]
        props[key] = prop
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "thresholds": {"type": "object", "additionalProperties": False, "properties": props}
        },
    }


def _read_override(path: Path, thresholds_doc: dict) -> dict[str, float]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"rules override {path}: cannot read ({exc.strerror})") from None
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"rules override {path}: not valid JSON/YAML ({exc})") from None
    if doc is None:
        return {}
    fixed = [
        k
        for k in (doc.get("thresholds") or {} if isinstance(doc, dict) else {})
        if isinstance(thresholds_doc.get(k), dict) and thresholds_doc[k].get("overridable") is False
    ]
    if fixed:
        raise KnowledgeError(
            f"rules override {path}: thresholds.{fixed[0]} restates a label fact "
            "and cannot be overridden"
        )
    validator = jsonschema.Draft202012Validator(override_schema(thresholds_doc))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise KnowledgeError(f"rules override {path}: {where}: {err.message}")
    return dict(doc.get("thresholds") or {})


def _code_set(name: str, entries: Any, systems: dict[str, str], words: Any = ()) -> CodeSet:
    exact: set[tuple[str, str]] = set()
    prefixes: list[tuple[str, str]] = []
    for entry in entries or []:
        system = systems.get(entry.get("system"), entry.get("system"))
        if "prefix" in entry:
            prefixes.append((system, str(entry["prefix"])))
        else:
            exact.add((system, str(entry["code"])))
    return CodeSet(name, frozenset(exact), tuple(prefixes), tuple(w.lower() for w in words or ()))


def _build(raw: dict[str, dict], thresholds: dict, thresholds_doc: dict) -> Knowledge:
    codes = raw["codes.yaml"]
    try:
        systems = dict(codes["systems"])
        products = {
            str(p["rxcui"]): Product(
                name=p["name"],
                form=p["form"],
                route=p["route"],
                strength_mg=p.get("strength_mg"),
                concentration_mg_per_ml=p.get("concentration_mg_per_ml"),
                rxcui=str(p["rxcui"]),
            )
            for p in codes["baclofen_products"]["products"]
        }
        risk = {
            key: RiskConditionSet(
                key,
                entry["label"],
                entry["source"],
                _code_set(key, entry.get("codes"), systems, entry.get("text_words")),
            )
            for key, entry in codes["risk_conditions"].items()
        }
        return Knowledge(
            systems=systems,
            thresholds=thresholds,
            threshold_meta={k: {kk: vv for kk, vv in v.items() if kk != "value"}
                            for k, v in thresholds_doc.items()},
            baclofen_ingredient=_code_set(
                "baclofen", codes["baclofen_ingredient"]["codes"], systems),
            products_by_rxcui=products,
            generic_names=tuple(n.lower() for n in codes["baclofen_names"]["generic"]),
            brands=tuple(codes["baclofen_names"]["brands"]),
            intrathecal_routes=_code_set(
                "intrathecal", codes["routes"]["intrathecal"], systems,
                codes["routes"]["intrathecal_words"]),
            oral_routes=_code_set(
                "oral", codes["routes"]["oral"], systems, codes["routes"]["oral_words"]),
            risk_conditions=risk,
            renal_impairment=_code_set("renal", codes["renal_impairment"]["codes"], systems),
            sign_conditions={
                k: _code_set(k, v["codes"], systems) for k, v in codes["sign_conditions"].items()
            },
            observations={k: _code_set(k, v, systems) for k, v in codes["observations"].items()},
            signs=dict(raw["signs.yaml"]["signs"]),
            cards=raw["cards.yaml"],
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise KnowledgeError(f"knowledge files: malformed entry ({exc!r})") from None


@lru_cache(maxsize=64)
def _cutoff_text(now: datetime, window_days: float) -> str:
    # A day of slack for time zones: ISO date text compares correctly as text.
    return (now - timedelta(days=window_days + 1)).strftime("%Y-%m-%d")


def _older_than(observation: dict, cutoff: str) -> bool:
    """Compares ISO date prefixes as text (no parsing on the hot path); unknown -> keep."""
    period = observation.get("effectivePeriod")
    when = (observation.get("effectiveDateTime") or observation.get("effectiveInstant")
            or (period.get("end") or period.get("start") if isinstance(period, dict) else None)
            or observation.get("issued"))
    if not isinstance(when, str) or len(when) < 10:
        return False
    return when[:10] < cutoff
