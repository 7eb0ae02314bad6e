"""The knowledge loader: rules/ loads, every bad edit or override refuses to start, every
source is followable, and nothing rules/ allows can fail at request time."""

from __future__ import annotations

import copy
import math
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds.assessment import ClinicalEngine
from cds.fixtures import list_fixtures, load_fixture
from cds.knowledge import KnowledgeError, load_knowledge
from cds.knowledge.loader import FILES, _read_packaged
from cds.knowledge.review import review_markdown
from tests.support import paths
from tests.support.fixtures import clinical_data

K = load_knowledge()
RAW = {name: _read_packaged(name) for name in FILES}
NOW = datetime.now(UTC)
SAMPLE = [load_fixture(p, NOW) for p in list_fixtures()[::7]]  # a spread of scenarios


def load(documents: dict[str, Any]) -> Any:
    return load_knowledge(documents=documents)


def mutated(name: str, change) -> dict[str, Any]:
    documents = copy.deepcopy(RAW)
    change(documents[name])
    return documents


def assess_sample(knowledge) -> None:
    """A knowledge that loads must answer every scenario without raising."""
    engine = ClinicalEngine(knowledge)
    for fixture in SAMPLE:
        request = fixture.request
        engine.assess(request["hook"], request["context"], clinical_data(request, knowledge),
                      NOW)


# ---------------------------------------------------------------- the shipped files


def test_shipped_knowledge_loads_and_holds_every_part():
    assert len(K.rules) >= 15 and len(K.cards) >= 10 and len(K.signs) >= 15
    assert {"oral", "intrathecal"} <= {p.route for p in K.products.values()}
    assert K.fingerprint and K.fingerprint == load_knowledge().fingerprint


def test_every_card_kind_is_given_by_a_rule_and_every_rule_names_a_kind():
    given = {r.then for r in K.rules}
    assert set(K.cards) <= given
    assert given - set(K.cards) <= {"no-cards"}


def test_one_product_table_serves_recognition_and_the_taper():
    tablet = K.taper.product("tablet")
    codes = {c.rxcui: c.strength_mg for c in tablet.codes}
    for product in K.products.values():
        if product.form == "tablet" and product.strength_usable:
            assert codes[product.codes[0].code.code] == product.strength_mg


# ---------------------------------------------------------------- sources


SOURCE_FORMS = (
    re.compile(r"^local policy: .{12,}"),
)


def _sources(node: Any, where: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "source" or key.endswith("_source"):
                yield f"{where}.{key}", value
            else:
                yield from _sources(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _sources(item, f"{where}[{index}]")


def test_every_source_is_a_label_paper_terminology_or_local_policy_with_a_reason():
    references = RAW["sources.yaml"]["references"]
    terminologies = RAW["sources.yaml"]["terminologies"]
    found = 0
    for name, document in RAW.items():
        for where, source in _sources(document, name):
            found += 1
            if isinstance(source, str):
                assert SOURCE_FORMS[0].match(source), f"{where}: {source!r}"
            elif "ref" in source:
                reference = references[source["ref"]]
                assert source.get("section"), f"{where}: a reference needs its section"
                if reference["kind"] == "label":
                    assert re.fullmatch(r"https://dailymed\.nlm\.nih\.gov/dailymed/drugInfo\.cfm"
                                        r"\?setid=[0-9a-f-]{36}", reference["url"]), where
                elif reference["kind"] == "paper":
                    assert reference.get("pmid") or reference.get("doi"), where
            else:
                assert source["terminology"] in terminologies, where
    assert found > 100


def test_every_card_reference_links_to_a_specific_label_or_paper():
    for kind in K.cards.values():
        for ref, section in kind.references:
            url = K.references[ref].url
            assert "search" not in url and section, (kind.kind, url)


def test_every_code_carries_its_verification():
    for code_set in K.code_sets.values():
        for code in code_set.codes:
            assert code.status in ("verified", "unverified") and code.evidence, code
    for product in K.products.values():
        for product_code in product.codes:
            assert product_code.code.status and product_code.code.evidence, product.id


@pytest.mark.parametrize("folder", ["rules", "cds", "docs"])
def test_nothing_cites_the_digest_or_an_absolute_path(folder):
    offenders = []
    for path in (paths.ROOT / folder).rglob("*"):
        if path.suffix not in (".yaml", ".py", ".md", ".json", ".html", ".js") or \
                "screenshots" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        if "CLINICAL.md" in text or re.search(r"(?<![\w.])/(work|home|root|tmp)/\w", text):
            offenders.append(str(path.relative_to(paths.ROOT)))
    assert offenders == []


# ---------------------------------------------------------------- bad edits refuse to start


def test_a_threshold_outside_its_range_refuses():
    for key, entry in RAW["thresholds.yaml"]["thresholds"].items():
        for value in [entry.get("min", 0) - 1, entry.get("max", 0) + 1] if "min" in entry \
                else []:
            documents = mutated("thresholds.yaml",
                                lambda d, k=key, v=value: d["thresholds"][k].update(value=v))
            with pytest.raises(KnowledgeError, match=key):
                load(documents)


@pytest.mark.parametrize("value", [0, -5, 1e9, "x", None])
def test_taper_parameters_out_of_range_refuse(value):
    documents = mutated("taper.yaml",
                        lambda d: d["steps"]["standard"].update(max_step_mg_per_day=value))
    with pytest.raises(KnowledgeError, match="taper.yaml"):
        load(documents)


def _definitions() -> list[tuple[str, tuple[str, ...]]]:
    """(file, path) of every named definition other files may refer to."""
    found = [("sources.yaml", ("references", k)) for k in RAW["sources.yaml"]["references"]]
    found += [("sources.yaml", ("terminologies", k)) for k in RAW["sources.yaml"]["terminologies"]]
    found += [("terminology.yaml", ("code_sets", k)) for k in RAW["terminology.yaml"]["code_sets"]]
    found += [("thresholds.yaml", ("thresholds", k)) for k in RAW["thresholds.yaml"]["thresholds"]]
    found += [("signs.yaml", ("signs", k)) for k in RAW["signs.yaml"]["signs"]]
    found += [("patient.yaml", ("facts", k)) for k in RAW["patient.yaml"]["facts"]]
    found += [("risk.yaml", ("factors", k)) for k in RAW["risk.yaml"]["factors"]]
    found += [("rules.yaml", ("derived", k)) for k in RAW["rules.yaml"]["derived"]]
    found += [("cards.yaml", ("kinds", k)) for k in RAW["cards.yaml"]["kinds"]]
    return found


def _condition_tokens() -> tuple[set[str], set[str]]:
    """(facts named in `when:` conditions or {placeholders}, names on the value side)."""
    facts: set[str] = set()
    values: set[str] = set()

    def condition(text: str) -> None:
        match = re.match(r"\s*(?:not\s+)?([a-z_][a-z0-9_]*)\s*(.*)$", text)
        if match:
            facts.add(match.group(1))
            values.update(re.findall(r"[a-z_][a-z0-9_-]*", match.group(2)))

    def conditions(node: Any) -> None:
        if isinstance(node, str):
            condition(node)
        elif isinstance(node, list):
            for item in node:
                conditions(item)
        elif isinstance(node, dict):
            for item in node.values():
                conditions(item)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "when":
                    conditions(value)
                elif isinstance(value, str):
                    facts.update(re.findall(r"\{([a-z_]+)\}", value))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for document in RAW.values():
        walk(document)
    return facts, values


def _values_of(node: Any, keys: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys:
                if isinstance(value, str):
                    found.add(value)
                elif isinstance(value, list):
                    found.update(v for v in value if isinstance(v, str))
            found |= _values_of(value, keys)
    elif isinstance(node, list):
        for item in node:
            found |= _values_of(item, keys)
    return found


def _referenced(path: tuple[str, str]) -> bool:
    """Is the definition at `path` used elsewhere (structurally, not by mere mention)?"""
    from cds.knowledge import requirements

    section, key = path
    tokens, value_side = _condition_tokens()
    uses = {
        "references": lambda: key in _values_of(RAW, ("ref",)),
        "terminologies": lambda: key in _values_of(RAW, ("system", "terminology")),
        "code_sets": lambda: key in requirements.CODE_SETS or key in _values_of(
            RAW, ("observation", "fetch_with", "recorded_as", "condition", "answer_in",
                  "only_without", "for")),
        "thresholds": lambda: key in requirements.THRESHOLDS or key in value_side
        or key in tokens or key in _values_of(RAW, ("threshold",)),
        "signs": lambda: key in requirements.SIGNS or key in tokens
        or key in _values_of(RAW, ("supersedes",)),
        "facts": lambda: key in requirements.PATIENT_FACTS or key in tokens,
        "factors": lambda: key in tokens or key in _values_of(RAW, ("replaces",)),
        "derived": lambda: key in tokens,
        "kinds": lambda: key in requirements.CARD_KINDS or key in _values_of(RAW, ("then",)),
    }
    return uses[section]()


@pytest.mark.parametrize("name,path", _definitions(), ids=lambda v: "/".join(v) if
                         isinstance(v, tuple) else v)
def test_deleting_a_definition_refuses_when_referenced_and_never_breaks_a_request(name, path):
    documents = mutated(name, lambda d: d[path[0]].pop(path[1]))
    if _referenced(path):
        with pytest.raises(KnowledgeError):
            load(documents)
        return
    try:
        knowledge = load(documents)
    except KnowledgeError:
        return  # refusing is always safe
    assess_sample(knowledge)


def test_a_card_text_naming_an_unknown_placeholder_refuses():
    documents = mutated("cards.yaml", lambda d: d["kinds"]["supervised-taper"]["summary"][0]
                        .update(text="Stopped {no_such_value}"))
    with pytest.raises(KnowledgeError, match="no_such_value"):
        load(documents)


def test_a_rule_naming_an_unknown_fact_or_threshold_refuses():
    for condition in ("no_such_fact > 0", "exposure_days >= no_such_threshold",
                      "event == exploded", "route in [oral, nasal]", "risk_high > 2"):
        documents = mutated("rules.yaml", lambda d, c=condition: d["rules"][1]["when"].append(c))
        with pytest.raises(KnowledgeError):
            load(documents)


def test_random_edits_either_refuse_or_keep_answering():
    """Mutation fuzz: no edit that loads can make a request fail."""
    rng = random.Random(20261127)
    leaves = [(name, path) for name, document in RAW.items() for path in _leaf_paths(document)]
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(120):
        name, path = rng.choice(leaves)
        replacement = rng.choice([None, -1, 0, 10**9, "", "x", [], {}, math.inf])
        documents = mutated(name, lambda d, p=path, r=replacement: _set(d, p, r))
        try:
            knowledge = load(documents)
        except KnowledgeError:
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        assess_sample(knowledge)
    assert outcomes["refused"] > 50, outcomes


def _leaf_paths(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*path, i))]
    return [path]


def _set(document: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


# ---------------------------------------------------------------- site override


def test_override_changes_thresholds_taper_and_adds_site_codes(tmp_path: Path):
    override = tmp_path / "site.yaml"
    override.write_text(yaml.safe_dump({
        "thresholds": {"fever_celsius": 38.5},
        "taper": {"steps": {"standard": {"max_step_mg_per_day": 10}}},
        "code_sets": {"pump_reservoir_volume": {"codes": [
            {"system": "urn:oid:1.2.3.4", "code": "ITB-RESV", "display": "Reservoir volume",
             "status": "verified", "verified_by": "site flowsheet dictionary"}]}},
    }))
    knowledge = load_knowledge(override)
    assert knowledge.threshold("fever_celsius") == 38.5
    assert knowledge.taper.standard.max_step_mg_per_day == 10
    assert knowledge.code_sets["pump_reservoir_volume"].matches_coding(
        {"system": "urn:oid:1.2.3.4", "code": "ITB-RESV"})
    assert knowledge.fingerprint != K.fingerprint


@pytest.mark.parametrize("override,problem", [
    ({"thresholds": {"fever_celsius": 45}}, "outside its range"),
    ({"thresholds": {"label_max_mg_per_day": 120}}, "cannot be overridden"),
    ({"thresholds": {"no_such": 1}}, "no such threshold"),
    ({"taper": {"steps": {"standard": {"max_step_mg_per_day": 0}}}}, "taper"),
    ({"taper": {"oral_route": {"code": "x"}}}, "only numbers"),
    ({"taper": {"nonsense": 1}}, "no such taper parameter"),
    ({"code_sets": {"no_such_set": {"codes": []}}}, "no such code set"),
    ({"code_sets": {"heart_rate": {"codes": [{"system": "loinc", "code": "1"}]}}}, "code_sets"),
    ({"surprise": 1}, "Additional properties"),
])
def test_bad_overrides_refuse_naming_the_key(tmp_path: Path, override, problem):
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(override))
    with pytest.raises(KnowledgeError, match=problem):
        load_knowledge(path)


def test_unreadable_override_refuses(tmp_path: Path):
    path = tmp_path / "site.yaml"
    path.write_text("thresholds: [unclosed")
    with pytest.raises(KnowledgeError, match="not valid"):
        load_knowledge(path)
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_knowledge(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- the review sheet


def test_committed_review_sheet_is_current():
    committed = (paths.DOCS / "knowledge-review.md").read_text(encoding="utf-8")
    assert committed == review_markdown(K), (
        "docs/knowledge-review.md is stale: run `.venv/bin/baclofen-cds knowledge review`")


def test_review_sheet_lists_every_rule_sign_threshold_and_unverified_code():
    sheet = review_markdown(K)
    for rule in K.rules:
        assert f"`{rule.id}`" in sheet
    for key in [*K.signs, *K.thresholds, *K.cards]:
        assert key in sheet
    assert "unverified" in sheet and "strength-confirmed" in sheet


def test_every_rules_name_the_python_reads_is_declared_as_required():
    """A name of rules/ written as a string in cds/ must be in cds/knowledge/requirements.py,
    so the loader refuses rules/ without it instead of a request failing."""
    import ast

    from cds.knowledge import requirements

    declared = {*requirements.CODE_SETS, *requirements.THRESHOLDS, *requirements.SIGNS,
                *requirements.PATIENT_FACTS, *requirements.CARD_KINDS, *requirements.MEASUREMENTS,
                *requirements.RISK_FACTORS}
    names = {*K.code_sets, *K.thresholds, *K.signs, *K.patient_facts, *K.cards,
             *K.measurements, *K.risk_factors}
    used: dict[str, str] = {}
    for path in (paths.ROOT / "cds").rglob("*.py"):
        if path.name == "requirements.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in names:
                used.setdefault(node.value, str(path.relative_to(paths.ROOT)))
    # Words that are also ordinary values elsewhere (a route, an event) are not reads of rules/.
    ordinary = {"oral", "intrathecal", "stop", "hold", "cut", "omission", "none", "deceased",
                "pregnancy"}
    missing = {name: where for name, where in used.items()
               if name not in declared and name not in ordinary}
    assert missing == {}


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_infinite_or_nan_numbers_are_refused_anywhere(value):
    """YAML's .inf and .nan pass JSON Schema's "number"; a strength of .inf made a taper
    card fail at request time (found by the seeded edit fuzz above)."""
    documents = mutated("thresholds.yaml", lambda d: d["thresholds"][
        "omission_after_hours"].__setitem__("value", value))
    with pytest.raises(KnowledgeError, match="finite"):
        load(documents)
