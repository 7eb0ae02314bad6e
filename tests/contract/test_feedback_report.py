"""The governance feedback report: counts per card kind, as a table, CSV, JSON and HTTP."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from cds.cli import main
from cds.report import build_report, parse_since, render_csv, render_table, report_json
from cds.storage import FeedbackEntry, IssuedCard, Store
from tests.support.requests import stop_order_request

REASON_SYSTEM = "https://baclofen-cds.org/fhir/CodeSystem/override-reason"


@pytest.fixture
def store(settings) -> Store:
    store = Store(settings.database_url)
    store.create_schema()
    return store


OFFERED_REASONS = (
    (REASON_SYSTEM, "taper-elsewhere", "Taper is managed elsewhere"),
    (REASON_SYSTEM, "not-taking", "Patient is not taking baclofen"),
)


def issue(store: Store, uuid: str, kind: str, suggestions=()) -> None:
    store.record_cards([IssuedCard(uuid, "baclofen-order-sign", "order-sign", kind, "warning",
                                   tuple(suggestions), override_reasons=OFFERED_REASONS)])


def answer(store: Store, card: str, outcome: str, at: datetime, suggestion: str | None = None,
           code: str | None = None, display: str | None = None) -> None:
    store.save_feedback([FeedbackEntry(
        "baclofen-order-sign", card, outcome, (suggestion,) if suggestion else (),
        REASON_SYSTEM if code else None, code, display, None, at)])


@pytest.fixture
def traffic(store: Store) -> datetime:
    """Four taper cards and one emergency card, with feedback on some of them."""
    now = datetime.now(UTC)
    taper_suggestions = (("s-taper", "Order a 2-week taper"), ("s-keep", "Keep current dose"))
    for uuid in ("t1", "t2", "t3", "t4"):
        issue(store, uuid, "supervised-taper", taper_suggestions)
    issue(store, "e1", "emergency-evaluation")
    answer(store, "t1", "accepted", now, suggestion="s-taper")
    answer(store, "t2", "accepted", now, suggestion="s-keep")
    answer(store, "t3", "overridden", now, code="taper-elsewhere",
           display="=HYPERLINK(\"https://evil.example\")")  # client text is never shown
    # t4: overridden first, accepted later; the later answer counts.
    answer(store, "t4", "overridden", now - timedelta(minutes=5), code="not-taking")
    answer(store, "t4", "accepted", now, suggestion="s-taper")
    answer(store, "e1", "overridden", now)  # no reason given
    answer(store, "never-issued", "overridden", now)
    return now


def test_counts_per_kind(store, traffic):
    report = {k.kind: k for k in build_report(store).kinds}
    taper = report["supervised-taper"]
    assert (taper.shown, taper.accepted, taper.overridden, taper.without_feedback) == (4, 3, 1, 0)
    assert dict(taper.accepted_by_suggestion) == {"Order a 2-week taper": 2,
                                                  "Keep current dose": 1}
    assert dict(taper.overridden_by_reason) == {"taper-elsewhere: Taper is managed elsewhere": 1}
    assert taper.acceptance_rate == 0.75 and taper.override_rate == 0.25
    emergency = report["emergency-evaluation"]
    assert (emergency.shown, emergency.overridden) == (1, 1)
    assert dict(emergency.overridden_by_reason) == {"no reason given": 1}
    assert build_report(store).unmatched_feedback == 1


def test_since_limits_to_cards_issued_from_that_time(store, traffic):
    assert build_report(store, traffic + timedelta(days=1)).kinds == []
    shown = sum(k.shown for k in build_report(store, traffic - timedelta(days=1)).kinds)
    assert shown == 5


def test_table_and_csv_carry_the_same_numbers(store, traffic):
    report = build_report(store)
    table = render_table(report)
    assert "supervised-taper" in table and "75.0%" in table and "25.0%" in table
    assert "accepted: Order a 2-week taper (2)" in table
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    taper = {(r["measure"], r["detail"]): r for r in rows if r["kind"] == "supervised-taper"}
    assert taper[("shown", "")]["count"] == "4"
    assert taper[("accepted", "")]["rate"] == "0.7500"
    assert taper[("accepted", "Keep current dose")]["count"] == "1"
    assert taper[("overridden", "taper-elsewhere: Taper is managed elsewhere")]["count"] == "1"
    assert report_json(report)["kinds"][1]["acceptedBySuggestion"] == {
        "Order a 2-week taper": 2, "Keep current dose": 1}


def test_parse_since_accepts_dates_and_times():
    assert parse_since("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_since("2024-03-01T12:30:00Z") == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_since("last week")


def test_cli_prints_table_csv_and_json(store, traffic, settings, monkeypatch, capsys):
    monkeypatch.setenv("CDS_DATABASE_URL", settings.database_url)
    assert main(["feedback-report"]) == 0
    assert "supervised-taper" in capsys.readouterr().out
    assert main(["feedback-report", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("kind,measure,detail,count,rate")
    since = (traffic - timedelta(days=1)).date().isoformat()
    assert main(["feedback-report", "--json", "--since", since]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {k["kind"]: k["shown"] for k in document["kinds"]} == {
        "emergency-evaluation": 1, "supervised-taper": 4}
    assert main(["feedback-report", "--since", "yesterday"]) == 2


def test_endpoint_reports_real_traffic(client):
    """End to end: cards issued by the pipeline, feedback posted over HTTP, JSON report."""
    card = client.post("/cds-services/baclofen-order-sign", json=stop_order_request()).get_json()[
        "cards"][0]
    reason = card["overrideReasons"][0]
    entry = {"card": card["uuid"], "outcome": "overridden",
             "outcomeTimestamp": datetime.now(UTC).isoformat(),
             "overrideReason": {"reason": reason}}
    assert client.post("/cds-services/baclofen-order-sign/feedback",
                       json={"feedback": [entry]}).status_code == 200
    response = client.get("/reports/feedback")
    assert response.status_code == 200
    kinds = {k["kind"]: k for k in response.get_json()["kinds"]}
    kind = card["extension"]["org.baclofen-cds"]["kind"]
    assert kinds[kind]["shown"] == 1 and kinds[kind]["overridden"] == 1
    assert kinds[kind]["overriddenByReason"] == {f"{reason['code']}: {reason['display']}": 1}
    assert client.get("/reports/feedback?since=not-a-date").status_code == 400


def test_accepted_suggestions_group_by_stable_name_not_label(client):
    """Taper labels carry doses and durations; the report groups them by what they do."""
    from cds.fixtures import list_fixtures, load_fixture

    now = datetime.now(UTC)
    paths = {p.stem: p for p in list_fixtures()}
    labels = set()
    for name in ("taper-stop-tablets", "taper-large-cut", "taper-above-labelled-max"):
        request = load_fixture(paths[name], now).request
        (card,) = client.post("/cds-services/baclofen-order-sign", json=request).get_json()["cards"]
        (replace,) = [s for s in card["suggestions"] if s["isRecommended"]]
        labels.add(replace["label"])
        entry = {"card": card["uuid"], "outcome": "accepted",
                 "acceptedSuggestions": [{"id": replace["uuid"]}],
                 "outcomeTimestamp": now.isoformat()}
        assert client.post("/cds-services/baclofen-order-sign/feedback",
                           json={"feedback": [entry]}).status_code == 200
    assert len(labels) == 3  # three different labels...
    kinds = {k["kind"]: k for k in client.get("/reports/feedback").get_json()["kinds"]}
    # ...counted as one kind of suggestion.
    assert kinds["supervised-taper"]["acceptedBySuggestion"] == {"replace-with-taper": 3}


def test_report_names_reasons_by_the_card_we_issued(store):
    """Issue 15 finding 4: the report showed client-sent override text verbatim; a client
    that sends only system and code now gets the display of our card."""
    now = datetime.now(UTC)
    issue(store, "c1", "supervised-taper")
    issue(store, "c2", "supervised-taper")
    issue(store, "c3", "supervised-taper")
    answer(store, "c1", "overridden", now, code="not-taking")  # no display sent
    answer(store, "c2", "overridden", now, code="taper-elsewhere", display="<b>pwned</b>")
    answer(store, "c3", "overridden", now, code="made-up", display="Give 10x dose")
    (taper,) = build_report(store).kinds
    assert dict(taper.overridden_by_reason) == {
        "not-taking: Patient is not taking baclofen": 1,
        "taper-elsewhere: Taper is managed elsewhere": 1,
        "a reason the card did not offer": 1,
    }
    text = render_table(build_report(store)) + render_csv(build_report(store))
    assert "pwned" not in text and "10x" not in text


def test_csv_cells_that_spreadsheets_run_as_formulas_are_quoted(store):
    now = datetime.now(UTC)
    store.record_cards([IssuedCard("f1", "baclofen-order-sign", "order-sign", "supervised-taper",
                                   "warning", (("s1", "=cmd|' /C calc'!A0"), ("s2", "@SUM(1)")))])
    answer(store, "f1", "accepted", now, suggestion="s1")
    rows = list(csv.reader(io.StringIO(render_csv(build_report(store)))))
    cells = [cell for row in rows for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)


def test_since_is_applied_in_sql_not_by_loading_every_row(store, monkeypatch):
    """Issue 15 finding 4: every feedback row was loaded on each call (0.6-0.7 s at 100k)."""
    now = datetime.now(UTC)
    issue(store, "old", "supervised-taper")
    answer(store, "old", "overridden", now, code="not-taking")
    monkeypatch.setattr(Store, "feedback_rows", lambda *a, **k: pytest.fail("loads all rows"))
    monkeypatch.setattr(Store, "issued_card_rows", lambda *a, **k: pytest.fail("loads all"))
    assert build_report(store, now + timedelta(days=1)).kinds == []
    assert build_report(store, now - timedelta(days=1)).kinds[0].overridden == 1
