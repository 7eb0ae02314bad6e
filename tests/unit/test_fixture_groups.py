"""`fixtures list` shows a newcomer the showcase first and folds the long probe rounds."""

from __future__ import annotations

import json
import re

from cds.cli import main
from cds.fixtures import SHOWCASE, fixture_groups, list_fixtures

LISTED = re.compile(r"^  (\S+)\s+baclofen-", re.M)


def listed_names(capsys, *extra: str) -> list[str]:
    assert main(["fixtures", "list", *extra]) == 0
    return LISTED.findall(capsys.readouterr().out)


def test_the_list_starts_with_the_showcase_and_stays_short(capsys):
    names = listed_names(capsys)
    assert names[: len(SHOWCASE)] == list(SHOWCASE)
    assert len(names) <= 60, f"{len(names)} lines are more than a newcomer reads"
    probes = [n for n in names if n.startswith("probe") and n not in SHOWCASE]
    assert probes == [], "probe rounds are folded into a count by default"


def test_all_lists_every_fixture_once(capsys):
    names = listed_names(capsys, "--all")
    assert sorted(names) == sorted(path.stem for path in list_fixtures())


def test_groups_cover_every_fixture_once():
    grouped = [name for group in fixture_groups() for name in group.names]
    assert sorted(grouped) == sorted(path.stem for path in list_fixtures())


def test_the_showcase_shows_a_card_of_each_main_kind():
    kinds = set()
    for path in list_fixtures():
        if path.stem in SHOWCASE:
            cards = json.loads(path.read_text(encoding="utf-8"))["expect"]["cards"]
            assert cards, f"{path.stem} shows no card"
            kinds.update(card["kind"] for card in cards)
    assert len(kinds) >= 9, kinds
