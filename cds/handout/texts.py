"""The handout's words and rules, from rules/handout/, checked before the service starts.

handout.yaml says which card kinds link which handout, how a day's doses map to times of
day, which signs each handout lists (keys of rules/signs.yaml) and the source of every
statement. Each language file (en.yaml, es.yaml, and any a site adds through
CDS_HANDOUT_TEXTS_DIR) words them; English is the reference: every other language must
have the same keys, lists of the same length and the same {placeholders} in each text,
so no translation can drop a warning or a dose.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cds.knowledge import Knowledge
from cds.knowledge.errors import KnowledgeError
from cds.knowledge.model import Source

REFERENCE_LANGUAGE = "en"
HANDOUT_KINDS = ("taper", "pump")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
FORMATTER = string.Formatter()


@dataclass(frozen=True)
class LanguageTexts:
    code: str
    name: str
    checked: str
    decimal_separator: str
    doc: Mapping[str, Any]  # the whole file, checked against the reference language

    def __getitem__(self, section: str) -> Any:
        return self.doc[section]


@dataclass(frozen=True)
class SignList:
    route: str
    call_today: tuple[str, ...]
    emergency: tuple[str, ...]


@dataclass(frozen=True)
class HandoutCatalog:
    link_kinds: Mapping[str, str]  # card kind -> "taper" | "pump"
    times_of_day: Mapping[int, tuple[str, ...]]
    signs: Mapping[str, SignList]  # "taper" | "pump" -> the signs it lists
    statement_sources: Mapping[str, Source]
    sign_sources: Mapping[str, Source]
    fever_threshold_celsius: float
    languages: Mapping[str, LanguageTexts]  # the reference language first

    def language(self, code: str) -> LanguageTexts | None:
        return self.languages.get(code)


def load_catalog(knowledge: Knowledge, site_dir: str | None = None) -> HandoutCatalog:
    """rules/handout/ (and a site's language files), checked against `knowledge`."""
    rules = _read_yaml_text(_packaged("handout.yaml"), "rules/handout/handout.yaml")
    docs: dict[str, tuple[str, Any]] = {}
    for name in sorted(p.name for p in resources.files("rules").joinpath("handout").iterdir()
                       if p.name.endswith(".yaml") and p.name != "handout.yaml"):
        docs[name.removesuffix(".yaml")] = (f"rules/handout/{name}",
                                            _read_yaml_text(_packaged(name), name))
    if site_dir:
        directory = Path(site_dir)
        if not directory.is_dir():
            raise KnowledgeError("CDS_HANDOUT_TEXTS_DIR", f"{site_dir} is not a directory")
        for path in sorted(directory.glob("*.yaml")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise KnowledgeError(str(path), f"cannot read ({type(error).__name__})") from None
            docs[path.stem] = (str(path), _read_yaml_text(text, str(path)))
    catalog = _build_rules(rules, knowledge)
    if REFERENCE_LANGUAGE not in docs:
        raise KnowledgeError("rules/handout", "the reference language file en.yaml is missing")
    reference = docs[REFERENCE_LANGUAGE][1]
    languages: dict[str, LanguageTexts] = {}
    for code in [REFERENCE_LANGUAGE, *sorted(c for c in docs if c != REFERENCE_LANGUAGE)]:
        where, doc = docs[code]
        languages[code] = _language(code, doc, reference, where, catalog)
    return HandoutCatalog(**{**catalog, "languages": languages})


def _packaged(name: str) -> str:
    try:
        return resources.files("rules").joinpath("handout", name).read_text(encoding="utf-8")
    except OSError as error:
        raise KnowledgeError(f"rules/handout/{name}", f"cannot read ({error})") from None


def _read_yaml_text(text: str, where: str) -> Any:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KnowledgeError(where, f"not valid YAML ({error.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise KnowledgeError(where, "must be a mapping")
    return doc


def _source(raw: Any, knowledge: Knowledge, where: str) -> Source:
    if isinstance(raw, str) and raw.startswith("local policy: ") and len(raw) > 20:
        return Source(policy=raw.removeprefix("local policy: "))
    if isinstance(raw, Mapping) and raw.get("ref") in knowledge.references \
            and isinstance(raw.get("section"), str) and raw["section"].strip():
        return Source(ref=raw["ref"], section=raw["section"])
    raise KnowledgeError(where, "a source is {ref: <sources.yaml id>, section: ...} or "
                                "'local policy: <why>'")


def _build_rules(doc: Mapping[str, Any], knowledge: Knowledge) -> dict[str, Any]:
    where = "rules/handout/handout.yaml"
    link_kinds: dict[str, str] = {}
    for handout, kinds in (doc.get("link_from") or {}).items():
        if handout not in HANDOUT_KINDS:
            raise KnowledgeError(f"{where}: link_from", f"no handout '{handout}'")
        for kind in kinds or []:
            if kind not in knowledge.cards:
                raise KnowledgeError(f"{where}: link_from.{handout}",
                                     f"no card kind '{kind}' in cards.yaml")
            link_kinds[kind] = handout
    _source(doc.get("link_from_source"), knowledge, f"{where}: link_from_source")
    _source(doc.get("times_of_day_source"), knowledge, f"{where}: times_of_day_source")
    times: dict[int, tuple[str, ...]] = {}
    for count, slots in (doc.get("times_of_day") or {}).items():
        if not isinstance(count, int) or not isinstance(slots, list) or len(slots) != count \
                or len(set(slots)) != count:
            raise KnowledgeError(f"{where}: times_of_day.{count}",
                                 "N doses a day need N different times of day")
        times[count] = tuple(slots)
    if set(times) != set(range(1, 7)):
        raise KnowledgeError(f"{where}: times_of_day", "give times for 1 to 6 doses a day")
    signs: dict[str, SignList] = {}
    sign_sources: dict[str, Source] = {}
    for handout in HANDOUT_KINDS:
        raw = (doc.get("signs") or {}).get(handout)
        if not isinstance(raw, Mapping):
            raise KnowledgeError(f"{where}: signs", f"no sign list for the {handout} handout")
        route = raw.get("route")
        lists = SignList(route, tuple(raw.get("call_today") or ()),
                         tuple(raw.get("emergency") or ()))
        for severity, keys in (("early", lists.call_today), ("severe", lists.emergency)):
            for key in keys:
                sign = knowledge.signs.get(key)
                if sign is None:
                    raise KnowledgeError(f"{where}: signs.{handout}", f"no sign '{key}' in "
                                                                      "signs.yaml")
                if sign.severity_for(route) != severity:
                    # The sheet and the cards must agree on what is an emergency.
                    raise KnowledgeError(f"{where}: signs.{handout}.{key}",
                                         f"signs.yaml calls it {sign.severity_for(route)} "
                                         f"for the {route} route, not {severity}")
                sign_sources[key] = sign.source
        signs[handout] = lists
    statements = {key: _source((entry or {}).get("source"), knowledge,
                               f"{where}: statements.{key}")
                  for key, entry in (doc.get("statements") or {}).items()}
    fever = knowledge.thresholds.get(doc.get("fever_threshold"))
    if fever is None or fever.unit != "Cel":
        raise KnowledgeError(f"{where}: fever_threshold", "name a threshold in Cel")
    return {"link_kinds": link_kinds, "times_of_day": times, "signs": signs,
            "statement_sources": statements, "sign_sources": sign_sources,
            "fever_threshold_celsius": float(fever.value)}


def _language(code: str, doc: Mapping[str, Any], reference: Mapping[str, Any], where: str,
              catalog: Mapping[str, Any]) -> LanguageTexts:
    if not _LANGUAGE_CODE.match(code) or doc.get("language") != code:
        raise KnowledgeError(where, f"the file name and `language` must be the same language "
                                    f"code (got '{code}' and '{doc.get('language')}')")
    for field in ("name", "checked"):
        if not isinstance(doc.get(field), str) or not doc[field].strip():
            raise KnowledgeError(f"{where}: {field}", "must be a non-empty text")
    if doc.get("decimal_separator") not in (".", ","):
        raise KnowledgeError(f"{where}: decimal_separator", "must be '.' or ','")
    if code == REFERENCE_LANGUAGE:
        _reference_covers(doc, catalog, where)
    else:
        _same_shape(reference, doc, where, "")
    return LanguageTexts(code=code, name=doc["name"].strip(), checked=doc["checked"].strip(),
                         decimal_separator=doc["decimal_separator"], doc=doc)


def _reference_covers(doc: Mapping[str, Any], catalog: Mapping[str, Any], where: str) -> None:
    """The reference language words every statement, sign and time of day the rules use."""
    for section, needed in (
            ("statements", set(catalog["statement_sources"])),
            ("signs", {k for lists in catalog["signs"].values()
                       for k in (*lists.call_today, *lists.emergency)}),
            ("times_of_day", {s for slots in catalog["times_of_day"].values() for s in slots}),
            ("link", set(HANDOUT_KINDS))):
        have = set(doc.get(section) or {})
        if have != needed:
            raise KnowledgeError(f"{where}: {section}", f"missing {sorted(needed - have)}, "
                                                        f"unknown {sorted(have - needed)}")
    dates = doc.get("dates") or {}
    if len(dates.get("weekdays") or []) != 7 or len(dates.get("months") or []) != 12:
        raise KnowledgeError(f"{where}: dates", "7 weekdays (Monday first) and 12 months")


def _same_shape(reference: Any, doc: Any, where: str, path: str) -> None:
    """`doc` has the reference's keys, list lengths and each text's placeholders."""
    here = f"{where}: {path or '(top)'}"
    if isinstance(reference, Mapping):
        if not isinstance(doc, Mapping):
            raise KnowledgeError(here, "must be a mapping, as in en.yaml")
        if set(reference) != set(doc):
            missing, extra = sorted(set(reference) - set(doc)), sorted(set(doc) - set(reference))
            raise KnowledgeError(here, f"keys differ from en.yaml: missing {missing}, "
                                       f"unknown {extra}")
        for key in reference:
            if path == "" and key in ("language", "name", "checked", "decimal_separator"):
                continue
            _same_shape(reference[key], doc[key], where, f"{path}.{key}".lstrip("."))
    elif isinstance(reference, list):
        if not isinstance(doc, list) or len(doc) != len(reference):
            raise KnowledgeError(here, f"must be a list of {len(reference)}, as in en.yaml")
        for index, (ref_item, item) in enumerate(zip(reference, doc, strict=True)):
            _same_shape(ref_item, item, where, f"{path}[{index}]")
    else:
        if not isinstance(doc, str) or not doc.strip():
            raise KnowledgeError(here, "must be a non-empty text")
        if placeholders(doc) != placeholders(str(reference)):
            raise KnowledgeError(here, f"placeholders {sorted(placeholders(doc))} differ from "
                                       f"en.yaml's {sorted(placeholders(str(reference)))}")


def placeholders(text: str) -> set[str]:
    try:
        return {name for _literal, name, _spec, _conv in FORMATTER.parse(text) if name}
    except ValueError:
        return {"(unbalanced braces)"}
