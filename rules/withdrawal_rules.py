"""The baclofen withdrawal rulesets, in durable_rules.

Facts (built by cds/facts from the FHIR resources) are small and flat:

- `event`: a discontinuation. type = stop | cut | ended | omission; route = oral |
  intrathecal; exposure_days (with exposure_known); dose_known; and counts of the
  withdrawal signs observed in its window (from the stop, or the recent hours for a
  draft order or an omission): severe_signs, intrathecal_severe_signs (hypotension:
  severe only with a pump, Gablofen section 5.5) and early_signs.
- `intrathecal_course`: the patient is on intrathecal baclofen now. Pump or catheter
  failures leave no order behind, so recent signs are read with it even without an event;
  has_intrathecal_event says whether an intrathecal stop is on record.

Sign severities are in signs.yaml, their thresholds in thresholds.yaml. Each rule
reports (rule name, session id, subject id) through `emit`; the service turns those
into findings and cards.

Why counts instead of joins: durable_rules 2.0.28 crashed (memory corruption in its C
engine) on `none(...)` joins that reference another fact, so window matching is done
in Python and every rule here reads one fact.
"""

from __future__ import annotations

from collections.abc import Callable

from durable.lang import m, ruleset, when_all

from rules.knowledge import Knowledge

Emit = Callable[[str, str, str], None]  # (rule, session id, subject id)

# Rule names; cds/findings.py maps them to card kinds.
EMERGENCY_AFTER_EVENT = "emergency_after_discontinuation"
EMERGENCY_INTRATHECAL_EVENT_HYPOTENSION = "emergency_intrathecal_stop_hypotension"
EMERGENCY_INTRATHECAL_COURSE = "emergency_intrathecal_course"
SUPERVISED_TAPER = "supervised_taper"
INTRATHECAL_STOP = "intrathecal_stop_without_signs"
INTRATHECAL_EARLY_SIGNS = "intrathecal_early_signs"
SESSION_OPENED = "session_opened"


def define_withdrawal_rules(name: str, knowledge: Knowledge, emit: Emit) -> ruleset:
    """Build the ruleset (registered with a host by cds/engine.py)."""
    min_exposure = knowledge.threshold("min_exposure_days")
    event = m.kind == "event"
    pump = m.kind == "intrathecal_course"
    no_severe_sign = (m.severe_signs == 0) & (m.intrathecal_severe_signs == 0)

    rules = ruleset(name)
    with rules:

        # Every session opens with this fact, so every session runs at least one action.
        # why: durable_rules 2.0.28 could crash deleting a session in which nothing fired.
        @when_all(m.kind == "session_opened")
        def session_opened(c):
            emit(SESSION_OPENED, c.s.sid, c.m.id)

        # Baclofen stopped, cut, ended or omitted, then a severe sign: emergency evaluation.
        @when_all(event & (m.severe_signs > 0))
        def emergency_after_discontinuation(c):
            emit(EMERGENCY_AFTER_EVENT, c.s.sid, c.m.id)

        # Intrathecal stop followed by hypotension: emergency evaluation.
        @when_all(event & (m.route == "intrathecal") & (m.intrathecal_severe_signs > 0))
        def emergency_intrathecal_stop_hypotension(c):
            emit(EMERGENCY_INTRATHECAL_EVENT_HYPOTENSION, c.s.sid, c.m.id)

        # On intrathecal baclofen, no stop on record, recent severe sign: check the pump now.
        @when_all(pump & (m.has_intrathecal_event == False)  # noqa: E712
                  & ((m.severe_signs > 0) | (m.intrathecal_severe_signs > 0)))
        def emergency_intrathecal_course(c):
            emit(EMERGENCY_INTRATHECAL_COURSE, c.s.sid, c.m.id)

        # Oral stop or large cut after enough (or unknown) exposure, no severe sign: taper.
        @when_all(event & (m.route == "oral") & (m.severe_signs == 0)
                  & ((m.exposure_known == False) | (m.exposure_days >= min_exposure)))  # noqa: E712
        def supervised_taper(c):
            emit(SUPERVISED_TAPER, c.s.sid, c.m.id)

        # Intrathecal stop with no severe sign: reduce by pump reprogramming, never abruptly.
        @when_all(event & (m.route == "intrathecal") & no_severe_sign)
        def intrathecal_stop_without_signs(c):
            emit(INTRATHECAL_STOP, c.s.sid, c.m.id)

        # On intrathecal baclofen with early signs only (pruritus, spasticity...): check pump.
        @when_all(pump & (m.has_intrathecal_event == False) & no_severe_sign  # noqa: E712
                  & (m.early_signs > 0))
        def intrathecal_early_signs(c):
            emit(INTRATHECAL_EARLY_SIGNS, c.s.sid, c.m.id)

    return rules
