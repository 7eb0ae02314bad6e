"""The handout's parts alone: the plan and its payload, the seal, the texts, the key, the
settings and the base URL of a link."""

from __future__ import annotations

import contextlib
import copy
import json
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet, MultiFernet
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.config import ConfigError, Settings
from cds.handout.keys import load_keys, read_key_file
from cds.handout.link import HandoutSealer, LinkError
from cds.handout.plan import (
    MalformedPlan,
    from_payload,
    from_pump,
    from_taper_plan,
    to_payload,
)
from cds.handout.texts import load_catalog
from cds.knowledge import load_knowledge
from cds.knowledge.errors import KnowledgeError
from cds.product import Product
from cds.storage import Store
from cds.taper.planner import plan_taper
from cds.taper.products import find_product

K = load_knowledge()
START = date(2026, 3, 2)


def plan(dose: float, product: str, frequency: int | None = 3, target: float = 0.0,
         risk: str = "standard"):
    found = find_product(product, K.taper) or Product(name="baclofen (form not known)")
    return plan_taper(dose, found, frequency, risk, START, K.taper, target)


PLANS = {
    "tablets 85 mg qid": plan(85, "197391", 4, risk="high"),
    "cut 60 to 20": plan(60, "197392", 3, target=20),
    "suspension 5 mg/mL": plan(30, "fleqsuvy", 3),
    "solution 1 mg/mL": plan(15, "ozobax", 3),
    "granules": plan(30, "lyvispah", 3),
    "unknown product": plan(30, "not a product we know", 3),
}
FORMS = {"tablets 85 mg qid": "tablet", "cut 60 to 20": "tablet",
         "suspension 5 mg/mL": "suspension", "solution 1 mg/mL": "solution",
         "granules": "granules", "unknown product": "mg"}


@pytest.mark.parametrize("name", PLANS)
def test_the_handout_plan_is_the_taper_plan_dose_by_dose(name):
    taper_plan = PLANS[name]
    handout = from_taper_plan(taper_plan, via_tube=False).taper
    assert handout.form == FORMS[name]
    steps = [*taper_plan.steps, *([taper_plan.maintenance] if taper_plan.maintenance else [])]
    assert [s.start for s in handout.steps] == [s.start for s in steps]
    assert [s.days for s in handout.steps] == [s.days for s in steps]
    for ours, theirs in zip(handout.steps, steps, strict=True):
        assert ours.daily_mg == theirs.daily_mg
        assert len(ours.doses) == theirs.administrations_per_day
        for dose in ours.doses:
            if handout.form in ("tablet", "granules"):
                assert sum(s * c for s, c in dose.units) == pytest.approx(dose.mg)
            if handout.form in ("solution", "suspension"):
                assert dose.ml * handout.concentration_mg_per_ml == pytest.approx(dose.mg)
    assert handout.stop == (None if taper_plan.maintenance else taper_plan.target_date)
    # The payload carries the same plan back.
    again, language = from_payload(json.loads(json.dumps(to_payload(
        from_taper_plan(taper_plan, True), "es"))))
    assert language == "es" and again.taper == from_taper_plan(taper_plan, True).taper


def test_pump_payload_round_trip():
    for moment in (datetime(2026, 5, 1, 23, 30, tzinfo=UTC), None):
        handout = from_pump(moment)
        assert from_payload(to_payload(handout, "en")) == (handout, "en")
    assert from_pump(datetime(2026, 5, 1, 23, 30, tzinfo=UTC)).pump.refill_by == date(2026, 5, 1)


def _good() -> dict:
    return to_payload(from_taper_plan(PLANS["tablets 85 mg qid"], False), "en")


@pytest.mark.parametrize("change", [
    lambda p: p.update(v=2),
    lambda p: p.update(k="other"),
    lambda p: p.update(f="capsule"),
    lambda p: p.update(c=5),  # a concentration for tablets
    lambda p: p.update(t="yes"),
    lambda p: p.update(s=[]),
    lambda p: p.update(extra=1),
    lambda p: p.pop("e"),
    lambda p: p["s"][0].__setitem__(0, "2026-02-30"),
    lambda p: p["s"][1].__setitem__(0, "2027-01-01"),  # steps must follow day after day
    lambda p: p["s"][0].__setitem__(1, 0),
    lambda p: p["s"][0].__setitem__(1, True),
    lambda p: p["s"][0][2].append(p["s"][0][2][0]) or p["s"][0][2].extend([p["s"][0][2][0]] * 3),
    lambda p: p["s"][0][2][0].__setitem__(0, 99),  # the tablets no longer add up
    lambda p: p["s"][0][2][0][1][0].__setitem__(1, 0),
    lambda p: p["s"][0][2][0].__setitem__(0, float("nan")),
    lambda p: p["s"][-1][2][0].__setitem__(0, 1000),  # a later step higher than the first
    lambda p: p.update(e="2030-01-01"),
    lambda p: p["s"][0].__setitem__(1, None),  # only the last step may go on
])
def test_payloads_that_are_no_plan_of_ours_are_refused(change):
    payload = _good()
    change(payload)
    with pytest.raises(MalformedPlan):
        from_payload(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["v", "k", "l", "f", "c", "t", "s", "e", "r", "x"]), children,
        max_size=8),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_is_a_plan_or_refused_never_an_error(value):
    # Refused or read: any other exception here would be a 500 on the page.
    with contextlib.suppress(MalformedPlan):
        from_payload(value)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_good_payloads_are_a_plan_or_refused(data):
    payload = copy.deepcopy(_good())
    steps = payload["s"]
    i = data.draw(st.integers(0, len(steps) - 1))
    j = data.draw(st.integers(0, 2))
    steps[i][j] = data.draw(json_values)
    with contextlib.suppress(MalformedPlan):
        from_payload(payload)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def sealer(clock=None, keys=None, days=30) -> HandoutSealer:
    return HandoutSealer(keys or MultiFernet([Fernet(Fernet.generate_key())]), days * 86400,
                         clock or Clock())


def test_seal_and_open_expire_and_refuse_changes():
    clock = Clock()
    s = sealer(clock)
    handout = from_taper_plan(PLANS["cut 60 to 20"], False)
    token = s.seal(handout, "en")
    assert len(token) < 600 and "=" not in token
    opened = s.open(token, "en")
    assert opened.plan == handout and opened.language == "en"
    assert opened.expires_at - opened.issued_at == 30 * 86400
    assert s.open(token, None).language == "en"  # the sealed language when none is asked
    with pytest.raises(LinkError) as changed:
        s.open(token, "es")
    assert changed.value.status == 400
    for bad in (token[:-1], token[:20] + ("x" if token[20] != "x" else "y") + token[21:], "",
                "é" * 10, "A" * 5000, token + "AAAA"):
        with pytest.raises(LinkError) as error:
            s.open(bad, "en")
        assert error.value.reason == "invalid" and error.value.status == 400
    clock.now += 30 * 86400 + 1
    with pytest.raises(LinkError) as expired:
        s.open(token, "en")
    assert expired.value.reason == "expired" and expired.value.status == 410
    clock.now -= 31 * 86400 + 120  # sealed "in the future" beyond the clock skew
    with pytest.raises(LinkError):
        s.open(token, "en")


def test_a_link_works_until_the_taper_has_ended_when_that_is_later():
    clock = Clock()
    today = datetime.fromtimestamp(clock.now, UTC).date()
    long_taper = plan_taper(85, find_product("197391", K.taper), 4, "high", today, K.taper, 0.0)
    handout = from_taper_plan(long_taper, False)
    stop = handout.taper.stop
    assert stop is not None and (stop - today).days > 30  # longer than the link's 30 days
    s = sealer(clock)
    token = s.seal(handout, "en")
    clock.now += (stop - today).days * 86400  # the first day without baclofen
    assert s.open(token, "en").plan == handout
    clock.now += 2 * 86400
    with pytest.raises(LinkError) as expired:
        s.open(token, "en")
    assert expired.value.status == 410


def test_rotated_keys_open_old_links_and_seal_with_the_first():
    old, new = Fernet.generate_key(), Fernet.generate_key()
    clock = Clock()
    before = sealer(clock, MultiFernet([Fernet(old)]))
    after = sealer(clock, MultiFernet([Fernet(new), Fernet(old)]))
    token = before.seal(from_pump(None), "en")
    assert after.open(token, "en").plan == from_pump(None)
    with pytest.raises(LinkError):
        sealer(clock, MultiFernet([Fernet(new)])).open(token, "en")


def test_a_well_sealed_payload_that_is_no_plan_is_refused():
    clock = Clock()
    keys = MultiFernet([Fernet(Fernet.generate_key())])
    s = sealer(clock, keys)
    for data in (b"not json", json.dumps({"v": 1}).encode(), b"[" * 100000,
                 json.dumps(_good() | {"l": "en"}).encode() + b"x"):
        token = keys.encrypt_at_time(zlib.compress(data), int(clock.now)).decode()
        with pytest.raises(LinkError):
            s.open(token.rstrip("="), None)
    bomb = keys.encrypt_at_time(zlib.compress(b" " * (10 * 2**20)), int(clock.now)).decode()
    with pytest.raises(LinkError):
        s.open(bomb.rstrip("="), None)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.one_of(st.none(), st.text(max_size=10)))
def test_any_text_as_a_token_is_refused_cleanly(token, language):
    with pytest.raises(LinkError):
        sealer().open(token, language)


# ---------------------------------------------------------------- texts


def test_catalog_loads_english_first_and_spanish():
    catalog = load_catalog(K)
    assert list(catalog.languages) == ["en", "es"]
    assert catalog.link_kinds["supervised-taper"] == "taper"
    assert catalog.link_kinds["pump-delivery-risk"] == "pump"
    assert "emergency-evaluation" not in catalog.link_kinds
    assert "What was checked" not in catalog.languages["es"].checked
    assert "prospecto" in catalog.languages["es"].checked


def _site_language(tmp_path, change) -> str:
    doc = yaml.safe_load(Path("rules/handout/es.yaml").read_text(encoding="utf-8"))
    doc["language"] = "fr"
    change(doc)
    (tmp_path / "fr.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return str(tmp_path)


def test_a_site_adds_a_language_with_the_same_keys(tmp_path):
    catalog = load_catalog(K, _site_language(tmp_path, lambda d: d.update(name="Français")))
    assert list(catalog.languages) == ["en", "es", "fr"]


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["signs"].pop("seizure"), "keys differ"),
    (lambda d: d["statements"].update(taper_end_stop="Ya no tome baclofeno."), "placeholders"),
    (lambda d: d["dates"]["months"].pop(), "list of 12"),
    (lambda d: d["labels"].update(name=""), "non-empty"),
    (lambda d: d.update(checked=""), "checked"),
    (lambda d: d.update(language="de"), "same language code"),
    (lambda d: d.update(decimal_separator=";"), "decimal_separator"),
])
def test_a_translation_cannot_drop_a_warning_or_a_value(tmp_path, change, problem):
    with pytest.raises(KnowledgeError, match=problem):
        load_catalog(K, _site_language(tmp_path, change))


def test_handout_signs_agree_with_the_cards_on_what_is_an_emergency(monkeypatch):
    import cds.handout.texts as texts

    original = texts._packaged

    def swapped(name: str) -> str:
        text = original(name)
        if name == "handout.yaml":
            doc = yaml.safe_load(text)
            doc["signs"]["taper"]["call_today"].append("seizure")  # severe in signs.yaml
            return yaml.safe_dump(doc)
        return text

    monkeypatch.setattr(texts, "_packaged", swapped)
    with pytest.raises(KnowledgeError, match="severe"):
        load_catalog(K)


# ---------------------------------------------------------------- key, settings, base URL


def test_the_service_makes_its_key_once_and_every_instance_reads_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    one, two = Store(url), Store(url)
    one.create_schema()
    token = load_keys(None, one).encrypt(b"plan")
    assert load_keys(None, two).decrypt(token) == b"plan"


def test_key_file_rotation_and_errors(tmp_path):
    first, second = Fernet.generate_key(), Fernet.generate_key()
    path = tmp_path / "keys"
    path.write_text(f"# handout keys\n{first.decode()}\n\n{second.decode()}\n")
    assert read_key_file(str(path)) == [first, second]
    keys = load_keys(str(path), store=None)  # type: ignore[arg-type]
    assert Fernet(first).decrypt(keys.encrypt(b"x")) == b"x"
    path.write_text("not-a-key\n")
    with pytest.raises(ConfigError) as error:
        read_key_file(str(path))
    assert "not-a-key" not in str(error.value)  # a secret is never echoed
    path.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no key"):
        read_key_file(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        read_key_file(str(tmp_path / "missing"))


def test_handout_settings():
    s = Settings.from_env({"CDS_HANDOUT_LINK_DAYS": "7", "CDS_HANDOUT_LANGUAGES": "es, en",
                           "CDS_HANDOUT_CONTACT": "  Clinic   555-0100 ",
                           "CDS_HANDOUT_EMERGENCY_NUMBER": "112", "CDS_HANDOUT": "off"})
    assert (s.handout_link_days, s.handout_languages, s.handout_contact,
            s.handout_emergency_number, s.handout_enabled) == (7, ("es", "en"),
                                                               "Clinic 555-0100", "112", False)
    defaults = Settings.from_env({})
    assert (defaults.handout_link_days, defaults.handout_languages,
            defaults.handout_enabled) == (30, (), True)
    for env in ({"CDS_HANDOUT_LINK_DAYS": "0"}, {"CDS_HANDOUT_LINK_DAYS": "400"},
                {"CDS_HANDOUT_LANGUAGES": "en,../x"}, {"CDS_HANDOUT_CONTACT": "x" * 201}):
        with pytest.raises(ConfigError):
            Settings.from_env(env)


def test_plan_dates_come_from_the_plan_not_the_clock():
    handout = from_taper_plan(PLANS["cut 60 to 20"], False).taper
    assert handout.steps[0].start == START
    assert handout.steps[-1].days is None and handout.stop is None
    assert handout.dose_on(START - timedelta(days=1)) is None
    assert handout.dose_on(START + timedelta(days=400)) == handout.steps[-1]
