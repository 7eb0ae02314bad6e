"""durable_rules adapter: the rule set of rules/rules.yaml, one short-lived session per call.

Every rule of rules.yaml becomes one durable_rules rule over a `subject` fact; its
conditions are compiled from the same parsed conditions the loader checked. durable
keeps facts per session id (sid) inside one host: each `run` asserts its facts under a
fresh sid, collects what fired, and deletes the session's state, so concurrent calls
never see each other's facts. The host's C engine is not documented as thread-safe, so
sessions run one at a time under a lock (each is well under a millisecond). Our host
starts no background dispatch threads: no timers or queued messages are used.

Why one fact per rule: durable_rules 2.0.28 crashed (memory corruption in its C engine)
on joins across facts, so every subject's facts are flattened into one fact.
"""

from __future__ import annotations

import contextlib
import math
import threading
import uuid
from dataclasses import dataclass

from durable import engine as durable_engine
from durable import lang as durable_lang
from durable.lang import m, ruleset, when_all

from cds.knowledge import Knowledge

SESSION_OPENED = "session_opened"
# Opens every session so at least one rule fires in it.
# why: durable_rules 2.0.28 could crash deleting a session in which nothing fired.
_SESSION_MARKER = {"id": "session", "kind": SESSION_OPENED}


@dataclass(frozen=True, order=True)
class RuleFiring:
    rule: str  # a rule id of rules.yaml
    subject_id: str


class _QuietHost(durable_engine.Host):
    """A durable_rules host without the polling threads (no timers or queues are used)."""

    def _run(self) -> None:
        return None


_HOST = _QuietHost()
_HOST_LOCK = threading.Lock()
_RULESETS: dict[str, str] = {}  # knowledge fingerprint -> registered ruleset name
_COLLECTED: dict[str, list[RuleFiring]] = {}  # sid -> firings of the running session


def _action(rule_id: str):
    def fire(c) -> None:
        _COLLECTED.setdefault(c.s.sid, []).append(RuleFiring(rule_id, c.m.id))
    return fire


def _define(name: str, knowledge: Knowledge) -> ruleset:
    rules = ruleset(name)
    with rules:
        when_all(m.kind == SESSION_OPENED)(_action(SESSION_OPENED))
        for rule in knowledge.rules:
            when_all((m.kind == "subject") & rule.when.to_durable(m))(_action(rule.id))
    return rules


def _ruleset_for(knowledge: Knowledge) -> str:
    """Build and register the ruleset for this knowledge once (thresholds are baked in)."""
    with _HOST_LOCK:
        name = _RULESETS.get(knowledge.fingerprint)
        if name is None:
            name = f"baclofen_{knowledge.fingerprint}"
            rules = _define(name, knowledge)
            # why: `ruleset(...)` also queues itself for durable's global host; we own ours.
            durable_lang._rulesets.pop(name, None)
            full_name, definition = rules.define()
            _HOST.register_rulesets({full_name: definition})
            _RULESETS[knowledge.fingerprint] = name
        return name


# durable_rules' JSON reader fails on a number written with an exponent and no decimal
# point ("1e+16", "9e-05": error 204) and on infinities, which is how Python writes floats
# from 1e16 up and below 1e-4: a dose of 1e15 tablets made every such call a 500 (issue
# 26.5). Floats reach it inside the range Python writes plainly; no threshold of rules/
# lies beyond it (a dose of 1e15 mg and of 1e20 mg compare alike with all of them).
ENGINE_NUMBER_LIMIT = 1e15
ENGINE_NUMBER_RESOLUTION = 1e-4


def engine_number(value: object) -> object:
    """A float as the engine can read it (see above); anything else as it is."""
    if not isinstance(value, float):
        return value
    if math.isnan(value):
        return 0.0
    if abs(value) >= ENGINE_NUMBER_LIMIT:
        return math.copysign(ENGINE_NUMBER_LIMIT, value)
    if abs(value) < ENGINE_NUMBER_RESOLUTION:
        return 0.0
    return value


def _assert_one(ruleset_name: str, fact: dict) -> None:
    """Assert one fact. A fact no rule matches is normal here, not an error.

    why one at a time: a batch with an unmatched fact raises midway in durable_rules 2.0.28,
    leaving the session half-processed; every rule reads a single fact, so order is moot.
    """
    with contextlib.suppress(durable_engine.MessageNotHandledException):
        _HOST.assert_fact(ruleset_name, fact)


class RulesEngine:
    """Runs the rule set over one call's subjects (flat fact dicts with an `id`)."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.ruleset_name = _ruleset_for(knowledge)

    def run(self, subjects: list[dict]) -> list[RuleFiring]:
        """Fire the rules on `subjects` in a fresh session; firings sorted for determinism."""
        if not subjects:
            return []
        sid = uuid.uuid4().hex
        with _HOST_LOCK:
            _COLLECTED[sid] = []
            try:
                for fact in [_SESSION_MARKER, *({**s, "kind": "subject"} for s in subjects)]:
                    readable = {key: engine_number(value) for key, value in fact.items()}
                    _assert_one(self.ruleset_name, dict(readable, sid=sid))
            finally:
                firings = _COLLECTED.pop(sid, [])
                _HOST.delete_state(self.ruleset_name, sid)
        return sorted(f for f in set(firings) if f.rule != SESSION_OPENED)

    def session_exists(self, sid: str) -> bool:
        """For tests: does durable_rules still hold state for this session id?"""
        with _HOST_LOCK:
            try:
                _HOST.get_facts(self.ruleset_name, sid)
            except Exception:  # durable raises a bare Exception with an error code
                return False
            return True
