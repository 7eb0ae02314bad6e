"""Every fixture through the real HTTP server, and one fixture of each outcome through
`baclofen-cds evaluate` (each run is a process that loads rules/, about 2 s of CPU: all
400 fixtures took 7 of CI's 30 minutes, and the engine test already runs every one).

Each fixture states the cards it should produce (kind and indicator, in order); dates
inside are relative to now, so the scenarios never rot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from cds.cards.extension import card_kind
from cds.fixtures import list_fixtures, load_fixture
from tests.support.cards import response_problems
from tests.support.live import LiveServer
from tests.support.openapi import check_response

FIXTURES = list_fixtures()
EXE = str(Path(sys.executable).with_name("baclofen-cds"))


def expected(fixture) -> list[tuple[str, str]]:
    return [(c["kind"], c["indicator"]) for c in fixture.expect["cards"]]


def produced(response: dict) -> list[tuple[str, str]]:
    return [(card_kind(c), c["indicator"]) for c in response["cards"]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fixtures")
    live = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'f.db'}"})
    live.start(tmp / "server.log")
    yield live
    live.stop()


def test_there_are_enough_fixtures():
    assert len(FIXTURES) >= 25


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_outcome_over_http(server, path):
    fixture = load_fixture(path, datetime.now(UTC))
    url = f"{server.base_url}/cds-services/{fixture.service}"
    response = requests.post(url, json=fixture.request, timeout=30)
    status = fixture.expect.get("status", 200)
    assert response.status_code == status, response.text[:500]
    body = response.json()
    check_response("POST", f"/cds-services/{fixture.service}", status, body)
    if status == 200:
        assert response_problems(body) == []
        assert produced(body) == expected(fixture)


def _evaluate(path: Path) -> tuple[Path, int, str, str]:
    result = subprocess.run([EXE, "evaluate", str(path)], capture_output=True, text=True,
                            timeout=120)
    return path, result.returncode, result.stdout, result.stderr


def one_of_each_outcome(paths: list[Path], now: datetime) -> list[Path]:
    """The first fixture of each service, status and expected cards (kind and indicator)."""
    chosen: dict[tuple, Path] = {}
    for path in paths:
        fixture = load_fixture(path, now)
        key = (fixture.service, fixture.expect.get("status", 200), tuple(expected(fixture)))
        chosen.setdefault(key, path)
    return list(chosen.values())


def test_evaluate_cli_prints_the_same_outcomes():
    now = datetime.now(UTC)
    sample = one_of_each_outcome(FIXTURES, now)
    # Every service, every card kind and the quiet answers are in the sample.
    kinds = {kind for path in sample for kind, _ in expected(load_fixture(path, now))}
    assert kinds == {kind for path in FIXTURES for kind, _ in expected(load_fixture(path, now))}
    assert len(sample) < len(FIXTURES) / 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_evaluate, sample))
    for path, code, stdout, stderr in results:
        fixture = load_fixture(path, now)
        if fixture.expect.get("status", 200) != 200:
            assert code == 1, path.stem
            continue
        assert code == 0, f"{path.stem}: {stderr[-500:]}"
        assert produced(json.loads(stdout)) == expected(fixture), path.stem
