"""durable_rules adapter: rulesets built once, one short-lived session per assessment.

durable_rules keeps facts per session id (sid) inside one host. Each `run` asserts its
facts under a fresh sid, collects what the rules emit for that sid, and deletes the
session's state, so concurrent assessments never see each other's facts. The host's C
engine is not documented as thread-safe, so sessions run one at a time under a lock
(each takes well under a millisecond of rule work). Our host starts no background
dispatch threads: we use no timers or queued messages.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass

from durable import engine as durable_engine
from durable import lang as durable_lang

from rules import Knowledge
from rules.withdrawal_rules import SESSION_OPENED, define_withdrawal_rules

# Opens every session so at least one rule fires in it (see rules/withdrawal_rules.py).
_SESSION_MARKER = {"id": "session", "kind": "session_opened"}


@dataclass(frozen=True, order=True)
class RuleFiring:
    rule: str
    subject_id: str  # an event id or the intrathecal course id


class _QuietHost(durable_engine.Host):
    """A durable_rules host without the polling threads (no timers or queues are used)."""

    def _run(self) -> None:
        return None


_HOST = _QuietHost()
_HOST_LOCK = threading.Lock()
_RULESETS: dict[str, str] = {}  # knowledge fingerprint -> registered ruleset name
_COLLECTED: dict[str, list[RuleFiring]] = {}  # sid -> firings of the running session


def _emit(rule: str, sid: str, subject_id: str) -> None:
    _COLLECTED.setdefault(sid, []).append(RuleFiring(rule, subject_id))


def _ruleset_for(knowledge: Knowledge) -> str:
    """Build and register the ruleset for this knowledge once (thresholds are baked in)."""
    with _HOST_LOCK:
        name = _RULESETS.get(knowledge.fingerprint)
        if name is None:
            name = f"baclofen_withdrawal_{knowledge.fingerprint}"
            rules = define_withdrawal_rules(name, knowledge, _emit)
            # why: `ruleset(...)` also queues itself for durable's global host; we own ours.
            durable_lang._rulesets.pop(name, None)
            full_name, definition = rules.define()
            _HOST.register_rulesets({full_name: definition})
            _RULESETS[knowledge.fingerprint] = name
        return name


def _assert_one(ruleset_name: str, fact: dict) -> None:
    """Assert one fact. A fact no rule matches is normal here, not an error.

    why one at a time: a batch with an unmatched fact raises midway in durable_rules 2.0.28,
    leaving the session half-processed; every rule reads a single fact, so order is moot.
    """
    with contextlib.suppress(durable_engine.MessageNotHandledException):
        _HOST.assert_fact(ruleset_name, fact)


class RulesEngine:
    """Runs the withdrawal rules over one assessment's facts."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.ruleset_name = _ruleset_for(knowledge)

    def run(self, facts: list[dict]) -> list[RuleFiring]:
        """Fire the rules on `facts` in a fresh session; firings sorted for determinism."""
        if not facts:
            return []
        sid = uuid.uuid4().hex
        with _HOST_LOCK:
            _COLLECTED[sid] = []
            try:
                for fact in [_SESSION_MARKER, *facts]:
                    _assert_one(self.ruleset_name, dict(fact, sid=sid))
            finally:
                firings = _COLLECTED.pop(sid, [])
                _HOST.delete_state(self.ruleset_name, sid)
        firings = [f for f in set(firings) if f.rule != SESSION_OPENED]
        return sorted(firings)

    def session_exists(self, sid: str) -> bool:
        """For tests: does durable_rules still hold state for this session id?"""
        with _HOST_LOCK:
            try:
                _HOST.get_facts(self.ruleset_name, sid)
            except Exception:  # durable raises a bare Exception with an error code
                return False
            return True
