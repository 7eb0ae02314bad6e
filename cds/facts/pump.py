"""What the record says about an intrathecal pump, and when its reservoir runs low.

Read (see docs/pumps.md): Device (the implanted pump: its type or name; alarms in its
properties or status reason; its low-reservoir alarm volume), Procedure (implant,
refill, analysis, reprogramming: CPT codes or words; a refill note's volume and
concentration), MedicationAdministration of intrathecal baclofen (a refill: volume in
mL, concentration from the product), and the site's flowsheet Observations (reservoir
volume, programmed daily dose, alarm, battery) found by their codes or names.

The reservoir reaches its alarm volume on
    last refill or reading + (volume - alarm volume) x concentration / daily dose,
and the pump is at risk when that date has passed or comes within
pump_refill_warning_days. With no refill or reading, no volume, no concentration or no
daily dose on record, nothing is computed and nothing is claimed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cds.facts.orders import Administration
from cds.facts.patient import annotations, procedure_time
from cds.facts.signs import observation_time
from cds.facts.timeutil import days_after, fmt_date, parse_fhir_datetime
from cds.facts.units import convert, quantity
from cds.knowledge import Knowledge
from cds.knowledge.model import concept_text

# A number starts only where no digit precedes, nor a digit and a comma: the same
# readings, in linear time (cds/facts/sig.py says why), except that the "5" of "1,5 mg/mL"
# (a decimal comma) is no longer read as 5 mg/mL on its own.
_VOLUME = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*ml\b")
_CONC = re.compile(r"(?<!\d)(?<!\d,)(\d+(?:,\d{3})*(?:\.\d+)?)\s*(mcg|micrograms?|ug|µg|mg)"
                   r"\s*/\s*ml")


@dataclass
class PumpState:
    known: bool = False  # an implanted pump (device or procedure) is on record
    alarm: str | None = None  # what the alarm says
    battery_low: str | None = None
    depletion_at: datetime | None = None  # when the reservoir reaches its alarm volume
    empty_at: datetime | None = None  # when it holds nothing more to deliver
    basis: str = ""  # how the depletion date was computed
    last_procedure_at: datetime | None = None
    last_refill_at: datetime | None = None  # a refill with its volume on record
    daily_dose_mcg: float | None = None

    def flags(self, now: datetime, warning_days: float) -> dict[str, Any]:
        overdue = self.depletion_at is not None and self.depletion_at <= now
        soon = (self.depletion_at is not None and not overdue
                and self.depletion_at <= now + timedelta(days=warning_days))
        days = (self.depletion_at - now).total_seconds() / 86400 if self.depletion_at else 0.0
        return {
            "pump_known": self.known,
            "pump_alarm": self.alarm is not None,
            "pump_refill_overdue": overdue,
            "pump_depletion_soon": soon,
            "pump_battery_low": self.battery_low is not None,
            "pump_delivery_at_risk": bool(self.alarm or self.battery_low or overdue or soon),
            "days_to_depletion": round(days, 1),
        }


class PumpReader:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        sets = knowledge.code_sets
        self.device = sets["pump_device"]
        self.procedure = sets["pump_procedure"]
        self.refill = sets["pump_refill"]
        self.risk_procedure = sets["pump_risk_procedure"]
        self.volume = sets["pump_reservoir_volume"]
        self.alarm = sets["pump_alarm"]
        self.normal = sets["pump_reading_normal"]
        self.battery = sets["pump_battery"]
        self.battery_low = sets["pump_battery_low"]
        self.implant = sets["pump_implant"]
        self.battery_fine = sets["pump_battery_fine"]
        self.dose = sets["pump_daily_dose"]
        self.margin = sets["pump_margin"]

    def on_record(self, resources: list[dict]) -> bool:
        """An implanted pump device or a pump procedure is on record (cheap)."""
        return any(self._is_device(r) or self._is_procedure(r) for r in resources
                   if isinstance(r, dict))

    def _is_device(self, resource: Mapping) -> bool:
        return resource.get("resourceType") == "Device" and resource.get("status") != \
            "entered-in-error" and self.device.matches_text(_device_text(resource))

    def _is_procedure(self, resource: Mapping) -> bool:
        return resource.get("resourceType") == "Procedure" and resource.get("status") in (
            "completed", "in-progress") and self.procedure.matches_concept(resource.get("code"))

    def read(self, resources: list[dict], administrations: list[Administration],
             order_dose_mcg: float | None, order_concentration: float | None, now: datetime
             ) -> PumpState:
        state = PumpState(known=self.on_record(resources))
        devices = [r for r in resources if isinstance(r, dict) and self._is_device(r)]
        margin = self.knowledge.threshold("pump_low_reservoir_margin_ml")
        for device in devices:
            margin = self._device_margin(device) or margin
            alarm, battery = self._device_status(device)
            state.alarm = alarm or state.alarm
            state.battery_low = battery or state.battery_low
        anchors: list[tuple[datetime, float, float | None, str]] = []  # (when, mL, mg/mL, how)
        procedures: list[Mapping] = []
        for resource in resources:
            if not isinstance(resource, dict):
                continue
            if self._is_procedure(resource):
                procedures.append(resource)
                at = parse_fhir_datetime(resource.get("performedDateTime")) or \
                    parse_fhir_datetime((resource.get("performedPeriod") or {}).get("start")
                                        if isinstance(resource.get("performedPeriod"), dict)
                                        else None)
                if at is not None and at <= now:
                    text = concept_text(resource.get("code")) + " " + _notes(resource)
                    if self.risk_procedure.matches_concept(resource.get("code")) or \
                            self.risk_procedure.matches_text(text):
                        # Refills, reprogramming and implants are the labels' overdose risk
                        # moments; reading or imaging the pump is not.
                        state.last_procedure_at = max(filter(None, [state.last_procedure_at,
                                                                    at]))
                    volume, conc = _volume(text), _concentration(text)
                    if self.refill.matches_text(text) and volume is not None:
                        state.last_refill_at = max(filter(None, [state.last_refill_at, at]))
                        anchors.append((at, volume, conc, f"refill of {volume:g} mL on "
                                                          f"{fmt_date(at)}"))
            elif resource.get("resourceType") == "Observation":
                self._observation(resource, state, anchors, now)
        state.battery_low = state.battery_low or self._battery_in_notes(procedures, devices, now)
        for given in administrations:
            if given.route == "intrathecal" and given.volume_ml and given.at <= now:
                state.last_procedure_at = max(filter(None, [state.last_procedure_at, given.at]))
                state.last_refill_at = max(filter(None, [state.last_refill_at, given.at]))
                anchors.append((given.at, given.volume_ml, given.concentration_mg_per_ml,
                                f"refill of {given.volume_ml:g} mL on {fmt_date(given.at)}"))
        dose = order_dose_mcg or state.daily_dose_mcg
        state.daily_dose_mcg = dose
        if anchors and dose:
            at, volume, conc, how = max(anchors, key=lambda a: a[0])
            conc = conc or _latest_concentration(anchors, at) or order_concentration
            if conc:
                days = max(0.0, volume - margin) * conc * 1000 / dose
                state.depletion_at = days_after(at, days)  # None: beyond any calendar
                state.empty_at = days_after(at, volume * conc * 1000 / dose)
                state.basis = (f"{how}; {conc * 1000:g} mcg/mL at {dose:g} mcg/day, alarm "
                               f"volume {margin:g} mL")
        return state

    def _observation(self, obs: Mapping, state: PumpState,
                     anchors: list[tuple[datetime, float, float | None, str]], now: datetime
                     ) -> None:
        if obs.get("status") not in ("final", "amended", "corrected", "preliminary"):
            return
        name = concept_text(obs.get("code"))
        at = observation_time(obs)
        if at is None or at > now or not name:
            return
        value, unit = quantity(obs)
        text = _value_text(obs)
        if self.volume.matches_text(name):
            millilitres = convert(value, unit, "mL", self.knowledge)
            if millilitres is not None:
                anchors.append((at, millilitres, None, f"reservoir {millilitres:g} mL on "
                                                       f"{fmt_date(at)}"))
        elif self.dose.matches_text(name):
            if value is not None and isinstance(unit, str) and unit.lower().startswith(
                    ("ug", "mcg", "µg")):
                state.daily_dose_mcg = value
        elif self.battery.matches_text(name):
            if self._says_battery_low(text):
                state.battery_low = text
        elif self.alarm.matches_text(name) and text and not self.normal.matches_text(text):
            state.alarm = text

    def _battery_in_notes(self, procedures: list[Mapping], devices: list[Mapping],
                          now: datetime) -> str | None:
        """A battery at its replacement point written in words: a pump check's outcome or
        notes, or the device's notes. The latest text that speaks of the battery decides
        (undated device notes rank below dated ones); a pump implanted or replaced after
        it means a new battery."""
        said: list[tuple[datetime, str]] = []
        implanted: list[datetime] = []
        undated = datetime.min.replace(tzinfo=now.tzinfo)
        for device in devices:
            for time, text in annotations(device):
                at = parse_fhir_datetime(time)
                said.append((at if at is not None and at <= now else undated, text))
        for proc in procedures:
            at = procedure_time(proc)
            if at is None or at > now:
                continue
            if self.implant.matches_concept(proc.get("code")) or self.implant.matches_text(
                    concept_text(proc.get("code")).lower()):
                implanted.append(at)
            said += [(at, text) for text in _findings_texts(proc)]
        about_battery = [(at, sentence) for at, text in said for sentence in _sentences(text)
                         if self.battery.matches_text(sentence.lower())]
        if not about_battery:
            return None
        at, text = max(about_battery, key=lambda s: s[0])
        if any(i >= at for i in implanted) or not self._says_battery_low(text):
            return None
        return text

    def _says_battery_low(self, text: str) -> bool:
        """A sentence names the replacement point and nothing in it says it is not due
        ("ERI not reached", "battery OK")."""
        sentences = [s.lower() for s in _sentences(text)]
        return any(self.battery_low.matches_text(s) and not self.battery_fine.matches_text(s)
                   for s in sentences)

    def _device_status(self, device: Mapping) -> tuple[str | None, str | None]:
        """(alarm, battery at replacement) from Device.statusReason and its properties:
        a battery at its replacement indicator still delivers, so it is no alarm."""
        texts = [concept_text(r) for r in device.get("statusReason") or []
                 if isinstance(r, Mapping)]
        for prop in device.get("property") or []:
            if isinstance(prop, Mapping) and (
                    self.alarm.matches_text(concept_text(prop.get("type")))
                    or self.battery.matches_text(concept_text(prop.get("type")))):
                texts += [concept_text(v) for v in prop.get("valueCode") or []
                          if isinstance(v, Mapping)]
        alarm = battery = None
        for text in texts:
            if not text:
                continue
            if self._says_battery_low(text):
                battery = battery or text
            elif self.alarm.matches_text(text) and not self.normal.matches_text(text):
                alarm = alarm or text
        return alarm, battery

    def _device_margin(self, device: Mapping) -> float | None:
        for prop in device.get("property") or []:
            if isinstance(prop, Mapping) and self.margin.matches_text(
                    concept_text(prop.get("type"))):
                for q in prop.get("valueQuantity") or []:
                    value = convert(*quantity({"valueQuantity": q}), "mL", self.knowledge)
                    if value is not None and value >= 0:
                        return value
        return None


def _device_text(device: Mapping) -> str:
    parts = [concept_text(device.get("type"))]
    for name in device.get("deviceName") or []:
        if isinstance(name, Mapping) and isinstance(name.get("name"), str):
            parts.append(name["name"].lower())
    return " ".join(parts)


def _notes(resource: Mapping) -> str:
    return " ".join(n["text"].lower() for n in resource.get("note") or []
                    if isinstance(n, Mapping) and isinstance(n.get("text"), str))


def _value_text(obs: Mapping) -> str:
    if isinstance(obs.get("valueString"), str):
        return obs["valueString"].lower()
    return concept_text(obs.get("valueCodeableConcept"))


def _volume(text: str) -> float | None:
    match = _VOLUME.search(text)
    return float(match.group(1)) if match else None


def _concentration(text: str) -> float | None:
    """mg per mL written in a note ('2000 mcg/mL', '2 mg/mL')."""
    match = _CONC.search(text)
    if not match:
        return None
    amount = float(match.group(1).replace(",", ""))
    return amount if match.group(2) == "mg" else amount / 1000


def _latest_concentration(anchors: list[tuple[datetime, float, float | None, str]],
                          before: datetime) -> float | None:
    known = [a for a in anchors if a[2] and a[0] <= before]
    return max(known, key=lambda a: a[0])[2] if known else None



_SENTENCE_END = re.compile(r"[.;\n]+(?:\s|$)")


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def _findings_texts(proc: Mapping) -> list[str]:
    """What a pump procedure found, in words: its outcome, complications and notes."""
    complications = proc.get("complication")
    concepts = [proc.get("outcome"), *(complications if isinstance(complications, list) else [])]
    texts = [concept_text(c) for c in concepts if isinstance(c, Mapping)]
    return [t for t in texts if t] + [text for _, text in annotations(proc)]
