"""docs/adding-a-rule.md tells the truth: its new-card example, applied to rules/ as the
doc says, loads and gives its card; and the doc claims no check that does not exist."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import yaml

from cds.assessment import ClinicalEngine
from cds.cards.extension import card_kind
from cds.fixtures import FIXTURE_DIR, load_fixture
from cds.knowledge import load_knowledge
from cds.knowledge.loader import FILES, _read_packaged
from tests.support import paths
from tests.support.fixtures import clinical_data

DOC = (paths.DOCS / "adding-a-rule.md").read_text(encoding="utf-8")
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)
EXAMPLE_FIXTURE = "30-new-baclofen-start"


def section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n## ", start)
    return DOC[start:] if end < 0 else DOC[start:end]


def test_the_new_card_kind_example_loads_and_gives_its_card():
    text = section("### A new kind of card")
    rule_block, kind_block = YAML_BLOCK.findall(text)
    (rule,) = yaml.safe_load(rule_block)
    kinds = yaml.safe_load(kind_block)
    groups = yaml.safe_load(re.search(r"`groups: (\[[^\]]*\])`", text).group(1))
    documents = {name: copy.deepcopy(_read_packaged(name)) for name in FILES}
    documents["rules.yaml"]["rules"].append(rule)
    documents["cards.yaml"]["kinds"].update(kinds)
    documents["cards.yaml"]["groups"] = groups
    knowledge = load_knowledge(documents=documents)

    now = datetime.now(UTC)
    fixture = load_fixture(FIXTURE_DIR / f"{EXAMPLE_FIXTURE}.json", now)
    request = fixture.request
    assessment = ClinicalEngine(knowledge).assess(
        request["hook"], request["context"], clinical_data(request, knowledge, now), now)
    assert [card_kind(card) for card in assessment.cards] == list(kinds)
    assert "{" not in assessment.cards[0]["summary"]


def test_the_doc_counts_a_new_card_as_more_than_one_rules_file():
    intro = DOC[: DOC.index("## 1.")]
    assert "rules/cards.yaml" in intro and "rules/rules.yaml" in intro and "group" in intro


def test_the_doc_claims_no_test_that_refuses_changed_expectations():
    # No test can tell a changed fixture expectation from a new one.
    assert not re.search(r"a test refuses changed expectations", DOC)
