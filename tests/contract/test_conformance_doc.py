"""docs/conformance.md stays true to the CDS Hooks 2.0 requirement list and to the tests.

One table row per requirement of docs/reference/cds-hooks-2.0-service-requirements.csv,
in CSV order, with the CSV's level; every SHALL / SHALL NOT row tested or explained; every
test the document cites exists. Test files are parsed with `ast`, never imported, so this
check cannot run or break them.
"""

from __future__ import annotations

import ast
import csv
import re
from dataclasses import dataclass
from functools import cache

from tests.support import paths

ROOT = paths.ROOT
DOC = ROOT / "docs" / "conformance.md"
# The HL7 requirement table is kept in the repository: the check never looks outside it.
CSV_PATH = paths.DOCS / "reference" / "cds-hooks-2.0-service-requirements.csv"

TESTED = "tested"
TESTED_MAY = "tested (MAY, implemented)"
NOT_APPLICABLE = "not applicable"
NOT_IMPLEMENTED_MAY = "not implemented (MAY)"
MEASURED = "measured (benchmark)"
DEVIATES = "deviates (SHOULD)"
BY_DESIGN = "by design (not tested)"
STATUSES = {TESTED, TESTED_MAY, NOT_APPLICABLE, NOT_IMPLEMENTED_MAY, MEASURED, DEVIATES,
            BY_DESIGN}
LEVELS = {"SHALL", "SHALL NOT", "SHOULD", "SHOULD NOT", "MAY", "DEPRECATED"}
MANDATORY = {"SHALL", "SHALL NOT"}
RECOMMENDATIONS = {"SHOULD", "SHOULD NOT", "DEPRECATED"}

ROW = re.compile(r"^\|\s*(\d+)\s*\|")
CITATION = re.compile(r"`(tests/[\w/.-]+\.py)::([\w:]+)`")


@dataclass(frozen=True)
class Row:
    id: str
    level: str
    paraphrase: str
    status: str
    evidence: str

    @property
    def citations(self) -> list[tuple[str, str]]:
        return CITATION.findall(self.evidence)

    @property
    def reason(self) -> str:
        """The evidence without its test citations: the words that explain."""
        return CITATION.sub("", self.evidence).strip(" .;")


@cache
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@cache
def rows() -> tuple[Row, ...]:
    found = []
    for line in doc_text().splitlines():
        if not ROW.match(line):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        assert len(cells) == 5, f"row needs 5 cells (id, level, text, status, evidence): {line}"
        found.append(Row(*cells))
    return tuple(found)


def csv_requirements() -> list[dict[str, str]]:
    with CSV_PATH.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def defined_tests(path: str) -> frozenset[str]:
    """Test functions in a file, as `name` or `Class::name`, read with ast."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body
                         if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef))
    return frozenset(n for n in names if n.split("::")[-1].startswith("test"))


def test_one_row_per_requirement_in_csv_order():
    requirements = csv_requirements()
    assert [r.id for r in rows()] == [r["id"] for r in requirements]


def test_levels_are_the_csv_levels():
    levels = {r["id"]: r["conformance"] for r in csv_requirements()}
    wrong = [(r.id, r.level, levels[r.id]) for r in rows() if r.level != levels.get(r.id)]
    assert wrong == [], "(id, document level, CSV level)"


def test_statuses_fit_their_levels():
    assert rows(), f"no requirement rows found in {DOC}"
    problems = []
    for row in rows():
        if row.level not in LEVELS:
            problems.append(f"{row.id}: unknown level {row.level!r}")
        if row.status not in STATUSES:
            problems.append(f"{row.id}: unknown status {row.status!r}")
        if row.level in MANDATORY and row.status not in (TESTED, NOT_APPLICABLE):
            problems.append(f"{row.id}: a {row.level} must be tested or not applicable")
        if row.status in (TESTED_MAY, NOT_IMPLEMENTED_MAY) and row.level != "MAY":
            problems.append(f"{row.id}: {row.status!r} is only for MAY rows")
        if row.status in (MEASURED, DEVIATES, BY_DESIGN) and row.level not in RECOMMENDATIONS:
            problems.append(f"{row.id}: {row.status!r} is only for SHOULD-type rows")
        if not row.paraphrase:
            problems.append(f"{row.id}: no paraphrase")
    assert problems == []


def test_tested_rows_cite_tests_and_others_give_a_reason():
    problems = []
    for row in rows():
        if row.status.startswith(TESTED) and not row.citations:
            problems.append(f"{row.id}: {row.status} but no test cited")
        if not row.status.startswith(TESTED) and len(row.reason.split()) < 3:
            problems.append(f"{row.id}: {row.status} needs a reason")
    assert problems == []


def test_every_cited_test_exists():
    cited = set(CITATION.findall(doc_text()))
    assert cited, "the document cites no tests"
    missing = []
    for path, name in sorted(cited):
        if not (ROOT / path).is_file():
            missing.append(f"{path} (no such file)")
        elif name not in defined_tests(path):
            missing.append(f"{path}::{name}")
    assert missing == []
