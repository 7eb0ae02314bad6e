"""Load rules/ and a site override, check everything, build the typed Knowledge.

Run by `serve` and `evaluate` before anything else, and by `baclofen-cds knowledge
check`. Any problem raises KnowledgeError naming the file, the key and what is wrong:
nothing in rules/ can fail later, at the bedside.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import string
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cds.cards.placeholders import PLACEHOLDERS
from cds.facts.catalogue import CORE_FACTS
from cds.knowledge import card_placeholders, requirements, schemas, ucum
from cds.knowledge.codes import LOINC_SYSTEM, loinc_problem
from cds.knowledge.conditions import Condition, FactField, parse_conditions
from cds.knowledge.errors import KnowledgeError
from cds.knowledge.model import (
    CardKind,
    Code,
    CodeSet,
    DerivedFact,
    Finder,
    Knowledge,
    MeasurementDef,
    Negation,
    PatientFactDef,
    ProductCode,
    ProductEntry,
    Reading,
    Reference,
    RiskFactorDef,
    RuleDef,
    SignDef,
    Source,
    Terminology,
    Threshold,
    Variant,
)

FILES = tuple(schemas.FILES)
NO_CARDS = "no-cards"
USABLE_PRODUCT_STATUSES = ("verified", "strength-confirmed", "inferred")
_FORMATTER = string.Formatter()


def load_knowledge(override_path: str | Path | None = None,
                   documents: Mapping[str, Any] | None = None) -> Knowledge:
    """rules/ (or `documents`, for tests) with an optional site override applied."""
    raw = {name: copy.deepcopy(documents[name]) if documents and name in documents
           else _read_packaged(name) for name in FILES}
    for name, doc in raw.items():
        _validate(doc, schemas.FILES[name], f"rules/{name}")
    if override_path:
        _apply_override(raw, Path(override_path))
    knowledge = _Builder(raw).build()
    digest = json.dumps(raw, sort_keys=True, default=str).encode()
    knowledge.fingerprint = hashlib.sha256(digest).hexdigest()[:16]
    return knowledge


def _read_packaged(name: str) -> dict:
    try:
        text = resources.files("rules").joinpath(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"rules/{name}", f"cannot read ({exc})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"rules/{name}", f"not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise KnowledgeError(f"rules/{name}", "expected a mapping at the top level")
    return doc


def _validate(doc: Any, schema: dict, where: str) -> None:
    # YAML writes infinity and NaN (.inf, .nan) and JSON Schema's "number" takes them; no
    # dose, strength or threshold can be one, so they are refused everywhere.
    bad = _non_finite(doc)
    if bad is not None:
        raise KnowledgeError(f"{where}: {'.'.join(map(str, bad)) or '(top level)'}",
                             "not a finite number")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise KnowledgeError(f"{where}: {path}", error.message)


def _non_finite(node: Any, path: tuple = ()) -> tuple | None:
    """The path of the first infinite or NaN number in a document, or None."""
    stack = [(node, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where
        if isinstance(value, dict):
            stack.extend((v, (*where, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(value))
    return None


# ---------------------------------------------------------------- site override


def _apply_override(raw: dict[str, dict], path: Path) -> None:
    where = f"rules override {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(where, f"cannot read ({exc.strerror})") from None
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise KnowledgeError(where, f"not valid JSON/YAML ({exc})") from None
    if doc is None:
        return
    _validate(doc, schemas.OVERRIDE_FILE, where)
    declared = raw["thresholds.yaml"]["thresholds"]
    for key, value in (doc.get("thresholds") or {}).items():
        entry = declared.get(key)
        if entry is None:
            raise KnowledgeError(f"{where}: thresholds.{key}", "no such threshold")
        if entry.get("overridable", True) is False:
            raise KnowledgeError(f"{where}: thresholds.{key}",
                                 "restates a label fact and cannot be overridden")
        entry["value"] = value
    _merge_taper(raw["taper.yaml"], doc.get("taper") or {}, f"{where}: taper")
    _validate(raw["taper.yaml"], schemas.TAPER_FILE, f"{where}: taper (after merging)")
    code_sets = raw["terminology.yaml"]["code_sets"]
    for name, addition in (doc.get("code_sets") or {}).items():
        if name not in code_sets:
            raise KnowledgeError(f"{where}: code_sets.{name}", "no such code set")
        code_sets[name]["codes"] = [*code_sets[name]["codes"], *addition.get("codes", [])]
        code_sets[name]["words"] = [*code_sets[name].get("words", []), *addition.get("words", [])]


def _merge_taper(target: dict, patch: Mapping, where: str) -> None:
    """Numbers in the override replace numbers in taper.yaml; nothing else may change."""
    for key, value in patch.items():
        if key not in target:
            raise KnowledgeError(f"{where}.{key}", "no such taper parameter")
        if isinstance(value, Mapping) and isinstance(target[key], dict):
            _merge_taper(target[key], value, f"{where}.{key}")
        elif _is_number(value) and _is_number(target[key]):
            target[key] = value
        else:
            raise KnowledgeError(f"{where}.{key}", "only numbers may be overridden")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------- building


class _Builder:
    """Builds Knowledge from validated documents, checking every cross-reference."""

    def __init__(self, raw: dict[str, dict]) -> None:
        self.raw = raw
        self.references: dict[str, Reference] = {}
        self.terminologies: dict[str, Terminology] = {}
        self.code_sets: dict[str, CodeSet] = {}
        self.thresholds: dict[str, Threshold] = {}
        self.fields: dict[str, FactField] = {}

    def build(self) -> Knowledge:
        self._sources()
        terminology = self.raw["terminology.yaml"]
        negations = terminology["negations"]
        self.negation = Negation(tuple(w.lower() for w in negations["words"]),
                                 negations["scope_words"])
        for name, entry in terminology["code_sets"].items():
            where = f"terminology.yaml: code_sets.{name}"
            self.code_sets[name] = self._code_set(name, entry, where, allow_uri=True)
        self._thresholds()
        units = self._units(terminology["units"])
        products = self._products()
        signs = self._signs(units)
        self.measurements = self._measurements(units)
        self.equations = self._equations()
        patient_facts = self._patient_facts(units)
        for sign in signs.values():
            for index, reading in enumerate(sign.readings):
                if reading.unless is not None and reading.unless not in patient_facts:
                    raise KnowledgeError(f"signs.yaml: signs.{sign.key}.readings[{index}].unless",
                                         f"no patient fact '{reading.unless}'")
        self._add_fields(CORE_FACTS, "the engine")
        self._add_fields((FactField(k, "flag", f"sign: {s.label}") for k, s in signs.items()),
                         "signs.yaml")
        self._add_fields((FactField(k, "flag", f"patient fact: {f.label}")
                          for k, f in patient_facts.items()), "patient.yaml")
        risk_doc = self.raw["risk.yaml"]
        self._add_fields((FactField(k, "flag", f"risk factor: {v['label']}")
                          for k, v in risk_doc["factors"].items()), "risk.yaml")
        risk_factors = self._risk_factors(risk_doc)
        derived = self._derived()
        cards = self._cards()
        rules = self._rules(cards)
        self._engine_needs(signs, patient_facts, cards)
        taper = self._taper(products)
        return Knowledge(
            references=self.references, terminologies=self.terminologies,
            code_sets=self.code_sets,
            solid_dose_units=frozenset(u.strip().lower()
                                       for u in terminology["solid_dose_units"]["units"]),
            timing_per_day={k: float(v) for k, v in terminology["timing_codes"]["per_day"].items()},
            timing_system=self._system_uri(terminology["timing_codes"]["system"],
                                           "terminology.yaml: timing_codes"),
            stop_reason_codes=dict(terminology["stop_reasons"]["meanings"]),
            stop_reason_system=self._system_uri(terminology["stop_reasons"]["system"],
                                                "terminology.yaml: stop_reasons"),
            stop_reason_words={k: tuple(w.lower() for w in v)
                               for k, v in terminology["stop_reasons"]["words"].items()},
            order_categories={"inpatient": tuple(terminology["order_categories"]["inpatient"]),
                              "continuing": tuple(terminology["order_categories"]["continuing"])},
            category_system=self._system_uri(terminology["order_categories"]["system"],
                                             "terminology.yaml: order_categories"),
            products=products,
            text_recognition=self.raw["products.yaml"]["text_recognition"],
            thresholds=self.thresholds, signs=signs, patient_facts=patient_facts,
            measurements=self.measurements, equations=self.equations,
            risk_factors=risk_factors,
            risk_high_when_at_least=risk_doc["combine"]["high_when_at_least"],
            derived=derived, rules=rules,
            card_groups=tuple(self.raw["cards.yaml"]["groups"]), cards=cards,
            card_service=self.raw["cards.yaml"]["service"],
            detail_texts=self.detail,
            taper=taper, fact_fields=self.fields, raw=self.raw,
            unit_aliases=units["unit_aliases"], unit_conversions=units["unit_conversions"],
            unitless_units=units["unitless_units"], unit_display=units["unit_display"],
            sig_words={"numbers": {k.lower(): float(v) for k, v in
                                   terminology["sig_words"]["numbers"].items()},
                       "per_day": {k.lower(): float(v) for k, v in
                                   terminology["sig_words"]["per_day"].items()},
                       "as_needed": tuple(w.lower() for w in terminology["sig_words"]["as_needed"]),
                       "up_to": tuple(w.lower() for w in terminology["sig_words"]["up_to"]),
                       "single_dose": tuple(w.lower() for w in
                                            terminology["sig_words"]["single_dose"]),
                       "not_single_before": tuple(w.lower() for w in terminology[
                           "sig_words"]["not_single_before"])},
        )

    # -- sources and codes

    def _sources(self) -> None:
        doc = self.raw["sources.yaml"]
        for key, entry in doc["references"].items():
            if entry["kind"] == "label" and entry["setid"] not in entry["url"]:
                raise KnowledgeError(f"sources.yaml: references.{key}",
                                     "the url must be the DailyMed page of its setid")
            self.references[key] = Reference(key, entry["kind"], entry["short"], entry["title"],
                                             entry["url"],
                                             entry.get("setid"), entry.get("pmid"),
                                             entry.get("doi"))
        for key, entry in doc["terminologies"].items():
            self.terminologies[key] = Terminology(key, entry["system"], entry["title"],
                                                  entry["code_page"])
        self._walk_sources()

    def _walk_sources(self) -> None:
        """Every `source` anywhere in rules/ must name a known reference or terminology."""

        def walk(node: Any, where: str) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "source" or key.endswith("_source"):
                        self.source(value, f"{where}.{key}")
                    else:
                        walk(value, f"{where}.{key}")
            elif isinstance(node, list):
                for index, item in enumerate(node):
                    walk(item, f"{where}[{index}]")

        for name, doc in self.raw.items():
            if name != "sources.yaml":
                walk(doc, name)

    def source(self, raw: Any, where: str) -> Source:
        if isinstance(raw, str):
            if not raw.startswith("local policy: "):
                raise KnowledgeError(where, "a source is a reference, a terminology or "
                                            "'local policy: <reason>'")
            return Source(policy=raw.removeprefix("local policy: "))
        if not isinstance(raw, Mapping):
            raise KnowledgeError(where, "a source is a reference, a terminology or local policy")
        if "ref" in raw:
            if raw["ref"] not in self.references:
                raise KnowledgeError(where, f"no reference '{raw['ref']}' in sources.yaml")
            return Source(ref=raw["ref"], section=raw.get("section"))
        if raw.get("terminology") not in self.terminologies:
            raise KnowledgeError(where, f"no terminology '{raw.get('terminology')}' in "
                                        "sources.yaml")
        return Source(terminology=raw["terminology"], code=raw.get("code"))

    def _system_uri(self, key: str, where: str, allow_uri: bool = False) -> str:
        if key in self.terminologies:
            return self.terminologies[key].system
        if allow_uri and ":" in key:
            return key  # a site's own code system, added in its override
        raise KnowledgeError(where, f"unknown code system '{key}' (a terminology of sources.yaml)")

    def _code_set(self, name: str, entry: Mapping, where: str, allow_uri: bool = False
                  ) -> CodeSet:
        codes = tuple(
            Code(c["system"], self._system_uri(c["system"], f"{where}.codes[{i}]", allow_uri),
                 str(c["code"]), c["display"], c["status"],
                 c.get("verified_by") or c.get("note") or "", bool(c.get("prefix")))
            for i, c in enumerate(entry.get("codes") or []))
        for index, code in enumerate(codes):
            problem = loinc_problem(code.code) if code.system == LOINC_SYSTEM else None
            if problem:
                raise KnowledgeError(f"{where}.codes[{index}]", problem)
        words = tuple(entry.get("words") or ())
        if not codes and not words:
            raise KnowledgeError(where, "a code set needs codes or words")
        return CodeSet.of(name, entry.get("about", ""), codes, words, self.negation)

    def code_set(self, name: Any, where: str) -> CodeSet:
        if name not in self.code_sets:
            raise KnowledgeError(where, f"no code set '{name}' in terminology.yaml")
        return self.code_sets[name]

    # -- thresholds and units

    def _thresholds(self) -> None:
        for key, entry in self.raw["thresholds.yaml"]["thresholds"].items():
            where = f"thresholds.yaml: thresholds.{key}"
            value = entry["value"]
            if not math.isfinite(value):
                raise KnowledgeError(where, "the value must be finite")
            if entry["type"] == "integer" and value != int(value):
                raise KnowledgeError(where, f"{value} is not a whole number")
            low, high = entry.get("min"), entry.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                raise KnowledgeError(where, f"{value} is outside its range {low}..{high}")
            if not ucum.is_ucum(entry["unit"]):
                raise KnowledgeError(f"{where}.unit", f"'{entry['unit']}' is not a UCUM unit "
                                                      "code (such as /min, Cel, mg/d, 1)")
            self.thresholds[key] = Threshold(key, float(value), entry["unit"], entry["type"],
                                             self.source(entry["source"], f"{where}.source"),
                                             low, high, entry.get("overridable", True),
                                             entry.get("label"))

    def threshold(self, key: Any, where: str) -> float:
        if key not in self.thresholds:
            raise KnowledgeError(where, f"no threshold '{key}' in thresholds.yaml")
        return self.thresholds[key].value

    def _units(self, doc: Mapping) -> dict[str, Any]:
        aliases: dict[str, str] = {}
        for unit, spellings in doc["aliases"].items():
            if not ucum.is_ucum(unit):
                raise KnowledgeError(f"terminology.yaml: units.aliases.{unit}",
                                     f"'{unit}' is not a UCUM unit code (its spellings go "
                                     "in the list)")
            for spelling in [unit, *spellings]:
                aliases[spelling.strip().lower()] = unit
        conversions = []
        for index, c in enumerate(doc["conversions"]):
            where = f"terminology.yaml: units.conversions[{index}]"
            for end in ("from", "to"):
                if c[end] not in doc["aliases"]:
                    raise KnowledgeError(where, f"unit '{c[end]}' has no aliases entry")
            for name in c.get("for", []):
                self.code_set(name, where)
            conversions.append((c["from"], c["to"], float(c["factor"]),
                                float(c.get("offset", 0.0)), tuple(c.get("for", ()))))
        for unit in doc["unitless_means"]:
            if unit not in doc["aliases"]:
                raise KnowledgeError("terminology.yaml: units.unitless_means",
                                     f"unit '{unit}' has no aliases entry")
        display = dict(doc.get("display") or {})
        for unit in display:
            if unit not in doc["aliases"]:
                raise KnowledgeError("terminology.yaml: units.display",
                                     f"unit '{unit}' has no aliases entry")
        return {"unit_aliases": aliases, "unit_conversions": tuple(conversions),
                "unitless_units": frozenset(doc["unitless_means"]), "unit_display": display}

    def _unit(self, unit: str, units: Mapping, where: str) -> str:
        if unit not in set(units["unit_aliases"].values()):
            raise KnowledgeError(where, f"unit '{unit}' is not in terminology.yaml units")
        return unit

    # -- products

    def _products(self) -> dict[str, ProductEntry]:
        products: dict[str, ProductEntry] = {}
        seen_codes: dict[tuple[str, str], str] = {}
        for index, p in enumerate(self.raw["products.yaml"]["products"]):
            where = f"products.yaml: products[{index}] ({p['id']})"
            if p["id"] in products:
                raise KnowledgeError(where, "duplicate product id")
            form, route = p["form"], p["route"]
            if (form == "injection") != (route == "intrathecal"):
                raise KnowledgeError(where, "every injection is intrathecal and nothing else is")
            if form == "tablet" and "strength_mg" not in p:
                raise KnowledgeError(where, "a tablet needs strength_mg")
            if form == "granules" and "packet_strengths_mg" not in p:
                raise KnowledgeError(where, "granules need packet_strengths_mg")
            if form in ("solution", "suspension") and "concentration_mg_per_ml" not in p:
                raise KnowledgeError(where, "an oral liquid needs concentration_mg_per_ml")
            codes = []
            for c in p["codes"]:
                system = self._system_uri(c["system"], f"{where}.codes")
                key = (system, c["code"])
                if key in seen_codes:
                    raise KnowledgeError(where, f"code {c['code']} is also listed for "
                                                f"{seen_codes[key]}")
                seen_codes[key] = p["id"]
                codes.append(ProductCode(
                    Code(c["system"], system, c["code"], p["name"], c["status"],
                         c.get("verified_by") or c.get("note") or ""),
                    c["status"] in USABLE_PRODUCT_STATUSES))
            mcg = p.get("concentration_mcg_per_ml")
            products[p["id"]] = ProductEntry(
                id=p["id"], name=p["name"], form=form, route=route,
                source=self.source(p["source"], f"{where}.source"),
                strength_mg=p.get("strength_mg"),
                packet_strengths_mg=tuple(p.get("packet_strengths_mg") or ()),
                concentration_mg_per_ml=(p.get("concentration_mg_per_ml")
                                         or (mcg / 1000 if mcg else None)),
                names=tuple(n.lower() for n in p.get("names") or ()), codes=tuple(codes))
        return products

    # -- signs and patient facts

    def _reading(self, raw: Mapping, units: Mapping, where: str, key: str = "observation"
                 ) -> Reading:
        threshold = self.thresholds.get(raw.get("threshold"))
        if threshold is not None and "unit" in raw and threshold.unit != raw["unit"]:
            # The reading is converted to its unit and compared with the bare number.
            raise KnowledgeError(f"{where}.threshold",
                                 f"threshold '{threshold.key}' is in {threshold.unit}, but "
                                 f"this reading is compared in {raw['unit']}")
        return Reading(
            code_set=self.code_set(raw[key], f"{where}.{key}"),
            unit=self._unit(raw["unit"], units, f"{where}.unit") if "unit" in raw else None,
            compare=raw.get("compare"),
            threshold=raw.get("threshold"),
            value=self.threshold(raw["threshold"], f"{where}.threshold")
            if "threshold" in raw else None,
            fetch_with=self.code_set(raw["fetch_with"], f"{where}.fetch_with")
            if "fetch_with" in raw else None,
            unless=raw.get("unless"))

    def _signs(self, units: Mapping) -> dict[str, SignDef]:
        doc = self.raw["signs.yaml"]["signs"]
        signs: dict[str, SignDef] = {}
        for key, s in doc.items():
            where = f"signs.yaml: signs.{key}"
            severity = s["severity"]
            for other in s.get("supersedes", []):
                if other not in doc:
                    raise KnowledgeError(f"{where}.supersedes", f"no sign '{other}'")
            for other in s.get("resolved_by", []):
                if other not in doc:
                    raise KnowledgeError(f"{where}.resolved_by", f"no sign '{other}'")
            signs[key] = SignDef(
                key=key, label=s["label"], points_to=s["points_to"],
                severity={"any": severity} if isinstance(severity, str) else dict(severity),
                readings=tuple(self._reading(r, units, f"{where}.readings[{i}]")
                               for i, r in enumerate(s.get("readings", []))),
                recorded_as=self.code_set(s["recorded_as"], f"{where}.recorded_as")
                if "recorded_as" in s else None,
                supersedes=tuple(s.get("supersedes", [])),
                resolved_by=tuple(s.get("resolved_by", [])),
                source=self.source(s["source"], f"{where}.source"))
        return signs

    def _measurements(self, units: Mapping) -> dict[str, MeasurementDef]:
        found: dict[str, MeasurementDef] = {}
        for key, m in (self.raw["patient.yaml"].get("measurements") or {}).items():
            where = f"patient.yaml: measurements.{key}"
            readings = tuple(Reading(self.code_set(r["observation"], f"{where}.readings[{i}]"),
                                     self._unit(r["unit"], units, f"{where}.readings[{i}].unit"))
                             for i, r in enumerate(m["readings"]))
            if len({r.unit for r in readings}) != 1:
                raise KnowledgeError(where, "every reading of a measurement is read in one unit")
            estimate = m.get("estimate")
            if estimate is not None and estimate["equation"] not in (
                    self.raw["patient.yaml"].get("equations") or {}):
                raise KnowledgeError(f"{where}.estimate",
                                     f"no equation '{estimate['equation']}' in equations")
            found[key] = MeasurementDef(
                key, m["label"], readings, readings[0].unit or "",
                self.source(m["source"], f"{where}.source"),
                estimate["equation"] if estimate else None,
                self.source(estimate["source"], f"{where}.estimate.source") if estimate else None)
        return found

    def _equations(self) -> dict[str, Any]:
        """The equations' numbers, each with its parsed Source under `source`."""
        equations = {name: dict(raw) for name, raw in
                     (self.raw["patient.yaml"].get("equations") or {}).items()}
        ckd_epi = equations.get("ckd_epi_2021_creatinine")
        if ckd_epi is not None:
            where = "patient.yaml: equations.ckd_epi_2021_creatinine"
            source = self.measurements.get(ckd_epi["from"])
            if source is None:
                raise KnowledgeError(f"{where}.from", f"no measurement '{ckd_epi['from']}'")
            if source.unit != "mg/dL":
                raise KnowledgeError(f"{where}.from", "the equation reads creatinine in mg/dL")
            ckd_epi["source"] = self.source(ckd_epi["source"], f"{where}.source")
        return equations

    def _patient_facts(self, units: Mapping) -> dict[str, PatientFactDef]:
        facts: dict[str, PatientFactDef] = {}
        kinds = ("condition", "observation", "allergy", "patient", "measurement", "procedure",
                 "device", "medication")
        for key, f in self.raw["patient.yaml"]["facts"].items():
            where = f"patient.yaml: facts.{key}"
            finders = []
            for index, raw in enumerate(f["found_by"]):
                at = f"{where}.found_by[{index}]"
                kind = next(k for k in kinds if k in raw)
                if kind == "allergy":
                    if raw["allergy"] != "baclofen":
                        self.code_set(raw["allergy"], at)
                    finders.append(Finder("allergy", code_set=self.code_sets.get(raw["allergy"])))
                elif kind == "patient":
                    finders.append(Finder("patient", patient_field=raw["patient"]))
                elif kind == "condition":
                    finders.append(Finder("condition", self.code_set(raw["condition"], at),
                                          recent=bool(raw.get("recent"))))
                elif kind == "measurement":
                    finders.append(self._measurement_finder(raw, at))
                elif kind in ("procedure", "device", "medication"):
                    finders.append(Finder(kind, self.code_set(raw[kind], at),
                                          within_days=raw.get("within_days"),
                                          within_hours=raw.get("within_hours"),
                                          planned=bool(raw.get("planned")),
                                          findings=bool(raw.get("findings")),
                                          unless_later=self.code_set(
                                              raw["unless_later"], f"{at}.unless_later")
                                          if "unless_later" in raw else None))
                else:
                    if "compare" in raw and "unit" not in raw:
                        raise KnowledgeError(at, "a compared observation names its unit")
                    reading = self._reading(raw, units, at)
                    finders.append(Finder(
                        "observation", reading.code_set, reading.unit, reading.compare,
                        reading.threshold, reading.value,
                        answer_in=self.code_set(raw["answer_in"], f"{at}.answer_in")
                        if "answer_in" in raw else None,
                        answer_not_in=self.code_set(raw["answer_not_in"], f"{at}.answer_not_in")
                        if "answer_not_in" in raw else None,
                        value_after_now=bool(raw.get("value_after_now")),
                        within_days=raw.get("within_days"), latest=bool(raw.get("latest")),
                        only_without=self.code_set(raw["only_without"], f"{at}.only_without")
                        if "only_without" in raw else None))
            facts[key] = PatientFactDef(key, f["label"], tuple(finders),
                                        self.source(f["source"], f"{where}.source"))
        return facts

    def _measurement_finder(self, raw: Mapping, where: str) -> Finder:
        measurement = self.measurements.get(raw["measurement"])
        if measurement is None:
            raise KnowledgeError(where, f"no measurement '{raw['measurement']}' in measurements")
        if "compare" not in raw:
            raise KnowledgeError(where, "a measurement finder compares the value to a threshold")
        return Finder("measurement", compare=raw["compare"], threshold=raw["threshold"],
                      value=self.threshold(raw["threshold"], f"{where}.threshold"),
                      unit=measurement.unit, measurement=measurement.key,
                      only_without=self.code_set(raw["only_without"], f"{where}.only_without")
                      if "only_without" in raw else None)

    # -- names, conditions and texts

    def _add_fields(self, fields: Any, origin: str) -> None:
        for field in fields:
            if field.name in self.fields:
                raise KnowledgeError(origin, f"the name '{field.name}' is already a fact "
                                             "(names of signs, patient facts, risk factors and "
                                             "derived facts must be unique)")
            self.fields[field.name] = field

    def conditions(self, raw: Any, where: str) -> Condition:
        return parse_conditions(raw, self.fields, self.threshold_values, where)

    @property
    def threshold_values(self) -> dict[str, float]:
        return {k: t.value for k, t in self.thresholds.items()}

    def check_text(self, text: str, where: str, extra: tuple[str, ...] = ()) -> str:
        try:
            names = [name for _, name, spec, conv in _FORMATTER.parse(text) if name is not None]
        except ValueError as exc:
            raise KnowledgeError(where, f"malformed placeholder in '{text}' ({exc})") from None
        for _, name, spec, conversion in _FORMATTER.parse(text):
            if name is not None and (spec or conversion or name == ""):
                raise KnowledgeError(where, f"placeholder '{{{name}}}' may not carry a format "
                                            "or conversion; write {name} only")
        evidence = {f"{key}_evidence" for key in self.raw["patient.yaml"]["facts"]}
        for name in names:
            if not (name in PLACEHOLDERS or name in self.fields or name in self.thresholds
                    or name in extra or name in evidence):
                raise KnowledgeError(where, f"placeholder '{{{name}}}' is not one the engine "
                                            "provides (see the placeholder list)")
        return text

    def variants(self, raw: list, where: str) -> tuple[Variant, ...]:
        out = []
        for index, item in enumerate(raw):
            at = f"{where}[{index}]"
            card_placeholders.check_card_text(item["text"], item.get("when"), f"{at}.text")
            out.append(Variant(self.check_text(item["text"], f"{at}.text"),
                               self.conditions(item["when"], f"{at}.when")
                               if "when" in item else None))
        return tuple(out)

    def _risk_factors(self, doc: Mapping) -> dict[str, RiskFactorDef]:
        factors: dict[str, RiskFactorDef] = {}
        for key, f in doc["factors"].items():
            where = f"risk.yaml: factors.{key}"
            for other in f.get("replaces", []):
                if other not in doc["factors"]:
                    raise KnowledgeError(f"{where}.replaces", f"no risk factor '{other}'")
            codes = None
            if "condition" in f:
                codes = self._code_set(key, {"about": f["label"], **f["condition"]},
                                       f"{where}.condition")
            factors[key] = RiskFactorDef(
                key=key, label=f["label"], source=self.source(f["source"], f"{where}.source"),
                when=self.conditions(f["when"], f"{where}.when") if "when" in f else None,
                codes=codes,
                evidence=self.check_text(f.get("evidence", ""), f"{where}.evidence"),
                replaces=tuple(f.get("replaces", [])))
        return factors

    def _derived(self) -> dict[str, DerivedFact]:
        derived: dict[str, DerivedFact] = {}
        for key, d in self.raw["rules.yaml"]["derived"].items():
            where = f"rules.yaml: derived.{key}"
            # Each derived fact may use those defined above it, never itself or later ones.
            condition = self.conditions(d["when"], f"{where}.when")
            derived[key] = DerivedFact(key, condition, self.source(d["source"], f"{where}.source"))
            self._add_fields([FactField(key, "flag", f"derived: {condition.text}")], where)
        return derived

    def _cards(self) -> dict[str, CardKind]:
        doc = self.raw["cards.yaml"]
        groups = set(doc["groups"])
        self.detail = self._check_detail_texts(doc["detail"])
        cards: dict[str, CardKind] = {}
        for kind, c in doc["kinds"].items():
            where = f"cards.yaml: kinds.{kind}"
            if c["group"] not in groups:
                raise KnowledgeError(f"{where}.group", f"no group '{c['group']}' in groups")
            for index, ref in enumerate(c["references"]):
                self.source(ref, f"{where}.references[{index}]")
            extras = {k: c[k] for k in ("dose_unknown", "taper_plan") if k in c}
            if kind in requirements.CARD_KINDS[:1] and len(extras) < 2:
                raise KnowledgeError(where, "the taper card needs dose_unknown and taper_plan")
            self._check_nested_texts(extras, where)
            if c["summary"][-1].get("when") is not None:
                raise KnowledgeError(f"{where}.summary", "the last summary variant must have no "
                                                         "`when`, so every card has a summary")
            cards[kind] = CardKind(
                kind=kind, indicator=c["indicator"], group=c["group"], priority=c["priority"],
                topic=dict(c["topic"]),
                references=tuple((r["ref"], r["section"]) for r in c["references"]),
                summary=self.variants(c["summary"], f"{where}.summary"),
                actions=self.variants(c["actions"], f"{where}.actions"),
                override_reasons=tuple(dict(r) for r in c["override_reasons"]),
                not_beside=frozenset(c.get("not_beside", ())), texts=extras,
                withdrawal_risk=c.get("withdrawal_risk", True))
        return cards

    def _check_nested_texts(self, node: Any, where: str) -> None:
        if isinstance(node, str):
            self.check_text(node, where)
        elif isinstance(node, dict):
            for key, value in node.items():
                self._check_nested_texts(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                self._check_nested_texts(value, f"{where}[{index}]")

    def _check_detail_texts(self, detail: Mapping) -> dict[str, Any]:
        required = ("headings", "event", "ambiguity", "ambiguity_duplicate", "addition_above_max",
                    "order_line",
                    "earlier_line", "lowered_line", "exposure_known", "exposure_unknown",
                    "exposure_at_least", "prn_line",
                    "weak_recognition", "sign_line", "risk_line", "no_risk_factor",
                    "renal_line", "unreadable_line", "basis_line")
        for key in required:
            if key not in detail:
                raise KnowledgeError("cards.yaml: detail", f"missing '{key}'")
        headings = ("record", "severe_signs", "early_signs", "toxicity_signs", "risk", "actions",
                    "notes", "plan", "no_plan", "pump", "basis")
        for key in headings:
            if key not in detail["headings"]:
                raise KnowledgeError("cards.yaml: detail.headings", f"missing '{key}'")
        if detail["event"][-1].get("when") is not None:
            raise KnowledgeError("cards.yaml: detail.event", "the last variant must have no `when`")
        rest = {k: v for k, v in detail.items() if k != "event"}
        self._check_nested_texts(rest, "cards.yaml: detail")
        variants = self.variants(detail["event"], "cards.yaml: detail.event")
        return {**rest, "event_variants": variants}

    def _rules(self, cards: Mapping[str, CardKind]) -> tuple[RuleDef, ...]:
        rules = []
        ids: set[str] = set()
        for index, r in enumerate(self.raw["rules.yaml"]["rules"]):
            where = f"rules.yaml: rules[{index}] ({r['id']})"
            if r["id"] in ids:
                raise KnowledgeError(where, "duplicate rule id")
            ids.add(r["id"])
            if r["then"] != NO_CARDS and r["then"] not in cards:
                raise KnowledgeError(f"{where}.then", f"no card kind '{r['then']}' in cards.yaml")
            rules.append(RuleDef(r["id"], r["title"], self.conditions(r["when"], f"{where}.when"),
                                 r["then"], self.source(r["source"], f"{where}.source")))
        used = {r.then for r in rules}
        unused = sorted(set(cards) - used)
        if unused:
            raise KnowledgeError("cards.yaml: kinds", f"no rule gives the card kind(s) "
                                                      f"{', '.join(unused)}")
        return tuple(rules)

    def _engine_needs(self, signs: Mapping, patient_facts: Mapping, cards: Mapping) -> None:
        """Names the engine's Python reads (cds/knowledge/requirements.py) must exist."""
        for what, needed, have, where in (
                ("code set", requirements.CODE_SETS, self.code_sets, "terminology.yaml"),
                ("threshold", requirements.THRESHOLDS, self.thresholds, "thresholds.yaml"),
                ("sign", requirements.SIGNS, signs, "signs.yaml"),
                ("patient fact", requirements.PATIENT_FACTS, patient_facts, "patient.yaml"),
                ("measurement", requirements.MEASUREMENTS, self.measurements, "patient.yaml"),
                ("risk factor", requirements.RISK_FACTORS, self.raw["risk.yaml"]["factors"],
                 "risk.yaml"),
                ("card kind", requirements.CARD_KINDS, cards, "cards.yaml")):
            for name in needed:
                if name not in have:
                    raise KnowledgeError(where, f"the {what} '{name}' is required by the engine")

    def _taper(self, products: Mapping[str, ProductEntry]) -> Any:
        from cds.taper.params import build_taper_params

        return build_taper_params(self.raw["taper.yaml"], products, self.thresholds)
