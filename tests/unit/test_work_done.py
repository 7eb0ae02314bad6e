"""Work done per request (not timing): the hot path models only what the rules can use."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.payloads import order_sign_stop, patient_view_no_baclofen

NOW = datetime.now(UTC)


def outcome(app, service_id, request):
    return app.extensions["cds"].pipeline.call(service_id, request)


def test_no_baclofen_patient_view_builds_no_order_or_observation_models(app):
    result = outcome(app, "baclofen-patient-view", patient_view_no_baclofen(NOW, 300))
    assert result.response == {"cards": []}
    assert result.models_built["MedicationRequest"] == 0
    assert result.models_built["Observation"] == 0
    assert result.models_built["Condition"] == 0
    assert result.models_built["Patient"] == 1


def test_a_year_of_vitals_models_only_the_recent_sign_observations(app):
    request = order_sign_stop(NOW, observations=300, medication_requests=20)
    result = outcome(app, "baclofen-order-sign", request)
    assert [c["extension"]["org.baclofen-cds"]["kind"] for c in result.response["cards"]] == [
        "supervised-taper"]
    # 1 baclofen order in the record + 1 draft; the 19 other drugs are never modelled.
    assert result.models_built["MedicationRequest"] == 2
    # 300 readings over a year, all in the normal range: none can be a withdrawal sign,
    # so none is modelled, except the newest of 33 creatinines (kidney function reads
    # only the latest).
    assert result.models_built["Observation"] == 1


def test_old_fever_does_not_count_but_recent_fever_does(app):
    from datetime import timedelta

    from bench.payloads import observation

    request = order_sign_stop(NOW, observations=0, medication_requests=5)
    entries = request["prefetch"]["observations"]["entry"]
    entries.append({"resource": observation("8310-5", "Body temperature", "Cel", 39.4,
                                            NOW - timedelta(days=200))})
    cards = outcome(app, "baclofen-order-sign", request).response["cards"]
    assert [c["extension"]["org.baclofen-cds"]["kind"] for c in cards] == ["supervised-taper"]
    assert "39.4" not in cards[0]["detail"]
    entries.append({"resource": observation("8310-5", "Body temperature", "Cel", 39.4,
                                            NOW - timedelta(hours=2))})
    cards = outcome(app, "baclofen-order-sign", request).response["cards"]
    # The stop is being signed now: a fever two hours old did not come from it, but the
    # card names it (doses may already have been missed).
    assert [c["extension"]["org.baclofen-cds"]["kind"] for c in cards] == ["supervised-taper"]
    assert "Signs already on record before this change" in cards[0]["detail"]
    assert "39.4" in cards[0]["detail"]


def test_issued_cards_are_recorded_for_governance(app):
    request = order_sign_stop(NOW, observations=10, medication_requests=3)
    result = outcome(app, "baclofen-order-sign", request)
    card = result.response["cards"][0]
    assert app.extensions["cds"].pipeline.recorder.flush()
    rows = app.extensions["cds"].store.issued_card_rows()
    assert [(r["card_uuid"], r["kind"], r["hook"]) for r in rows] == [
        (card["uuid"], "supervised-taper", "order-sign")]


def test_only_readings_that_are_signs_are_modelled(app):
    from datetime import timedelta

    from bench.payloads import observation

    request = order_sign_stop(NOW, observations=0, medication_requests=2)
    recent = NOW - timedelta(hours=3)
    entries = request["prefetch"]["observations"]["entry"]
    entries += [{"resource": observation("8867-4", "Heart rate", "/min", v, recent)}
                for v in (72, 80, 95, 128)]
    entries.append({"resource": observation("8310-5", "Body temperature", "[degF]", 101.3,
                                            recent)})
    entries.append({"resource": observation("8310-5", "Body temperature", "[degF]", 98.6,
                                            recent)})
    result = outcome(app, "baclofen-order-sign", request)
    assert result.models_built["Observation"] == 2  # HR 128 and 101.3 degF
    detail = result.response["cards"][0]["detail"]
    assert "128" in detail and "101.3" in detail and " 95" not in detail
