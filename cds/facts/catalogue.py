"""The facts the engine computes for each subject (a route the patient is or was on).

rules/ names these in conditions and card texts; the knowledge loader checks every name
against this list (plus the sign, patient-fact, risk-factor and derived-fact names the
knowledge files define themselves). The review sheet prints it for clinicians.
"""

from __future__ import annotations

from cds.knowledge.conditions import FactField

HOOKS = ("order-select", "order-sign", "patient-view", "encounter-start", "encounter-discharge")
EVENTS = ("none", "stop", "hold", "cut", "fast-step", "omission")
STOP_REASONS = ("none", "serious-reaction", "toxicity", "intolerance", "duplicate", "interruption",
                "pregnancy", "other")

CORE_FACTS: tuple[FactField, ...] = (
    FactField("route", "choice", "the route this subject is about", ("oral", "intrathecal")),
    FactField("hook", "choice", "the CDS Hooks hook that called the service", HOOKS),
    FactField("event", "choice",
              "what happened to baclofen by this route: stopped, put on hold, cut by a large "
              "fraction, stepped down faster than the taper policy, left out at a care "
              "transition, or none", EVENTS),
    FactField("draft", "flag", "the event is in the orders being signed or selected now"),
    FactField("scheduled_end", "flag", "the event is an end date set in the future by the draft"),
    FactField("event_time_known", "flag", "when the event happened is known or estimated"),
    FactField("event_time_estimated", "flag",
              "the event time is an estimate (the order's last-updated time)"),
    FactField("event_age_hours", "number", "hours since the event (0 for a draft)"),
    FactField("ambiguity", "choice",
              "two readings of the record the card names: a new order replacing or added to "
              "the current one (addition), or one of two same-dose orders stopped, which is "
              "either no change or a drop (duplicate)", ("none", "addition", "duplicate")),
    FactField("on_baclofen", "flag", "baclofen by this route continues now (not held, not ended)"),
    FactField("exposure_known", "flag", "when the course started is known"),
    FactField("exposure_days", "number", "days on baclofen by this route, up to the event or now"),
    FactField("dose_known", "flag", "the daily dose before the event is known"),
    FactField("daily_dose", "number",
              "daily dose before the event (or now): mg/day oral, mcg/day intrathecal"),
    FactField("most_daily_dose", "number",
              "the most the running orders allow per day: the regular dose plus the largest "
              "as-needed allowance (what accumulates when the kidneys clear little)"),
    FactField("new_daily_dose", "number", "daily dose after the event (0 for a stop)"),
    FactField("cut_percent", "number", "how much the event lowers the daily dose, in percent"),
    FactField("taper_in_progress", "flag",
              "recent step-downs follow the taper policy and the taper is still running"),
    FactField("ordered_in_encounter", "flag",
              "baclofen by this route is already ordered for this encounter (an inpatient order)"),
    FactField("sporadic_as_needed", "flag",
              "only an as-needed order, given on few days (administrations on record)"),
    FactField("stop_reason", "choice", "why the order was stopped, from statusReason or text",
              STOP_REASONS),
    FactField("recognition_weak", "flag",
              "the route was recognised from text or context only, not from a code or route"),
    FactField("withdrawal_severe", "count",
              "severe signs that point to withdrawal, since the event"),
    FactField("withdrawal_early", "count", "early signs that point to withdrawal, since the event"),
    FactField("either_severe", "count", "severe signs seen in both withdrawal and toxicity"),
    FactField("toxicity_signs", "count", "signs of central depression (point to toxicity)"),
    FactField("any_signs", "count", "all signs in the subject's window"),
    FactField("delivery_order_being_signed", "flag",
              "an order of this route that continues delivery (a refill, a new dose) is among "
              "the orders being signed"),
    FactField("signs_before_change", "count",
              "withdrawal or either-way signs of the recent window that predate an oral change "
              "being signed now (a fever already present did not come from this stop, unless "
              "doses were already missed)"),
    FactField("severe_sign_count", "count",
              "severe signs pointing to withdrawal or either way (withdrawal_severe + "
              "either_severe)"),
    FactField("consciousness_or_breathing_depressed", "flag",
              "any reduced level of consciousness, slow breathing or low oxygen saturation "
              "on record in the look-back window: no advice to give baclofen or sedatives"),
    FactField("home_listing_active", "flag",
              "an order of this route outside the hospital stay (a home listing) is still active "
              "in the record"),
    FactField("oral_bridge_running", "flag",
              "for the intrathecal route: an oral baclofen order runs now beside it (a bridge)"),
    FactField("draft_dose_unknown", "flag",
              "an order of this route being signed continues delivery at a dose that could not "
              "be read (no strength, no unit, no frequency)"),
    FactField("replaced_dose_unknown", "flag",
              "an order of this route being signed, at a dose that can be read, replaces (or "
              "may add to) a running scheduled order whose dose could not be read: whether it "
              "keeps, raises or cuts the dose cannot be told"),
    FactField("dose_needs_weight", "flag",
              "the dose is ordered per kg of body weight and no body weight is on record"),
    FactField("kidney_reading_unreadable", "flag",
              "the latest creatinine or eGFR on record is in a unit that cannot be read, and no "
              "kidney measurement could be used"),
    FactField("consciousness_from_withdrawal", "flag",
              "a reduced level of consciousness is read as withdrawal's altered mental status "
              "(an interruption of baclofen_cleared_hours or more, no reason for an overdose "
              "and no other sign of central depression): it does not remove withdrawal "
              "treatment, and the card puts the airway first"),
    FactField("hours_without_baclofen", "number",
              "hours the route has delivered nothing: since an oral stop, hold or omission of "
              "known time, or since the pump reservoir ran dry by the estimate"),
    FactField("recent_increase", "flag", "the dose was raised within recent_increase_days"),
    FactField("recent_restart", "flag",
              "baclofen was started again within recent_restart_days after an interruption"),
    FactField("recent_pump_procedure", "flag",
              "a pump refill, reprogramming or implant within pump_procedure_recent_hours"),
    FactField("risk_high", "flag", "the withdrawal risk is high (rules/risk.yaml)"),
    FactField("risk_factor_count", "count", "how many risk factors were found"),
    FactField("age_known", "flag", "the patient's age is known"),
    FactField("age_years", "number", "the patient's age in years"),
    FactField("pump_known", "flag", "an implanted pump is known (order, device or procedure)"),
    FactField("pump_alarm", "flag", "a pump alarm (low reservoir or critical) is recorded"),
    FactField("pump_refill_overdue", "flag",
              "the reservoir is expected at its alarm volume already (last refill, volume, dose)"),
    FactField("pump_depletion_soon", "flag",
              "the reservoir is expected at its alarm volume within pump_refill_warning_days"),
    FactField("pump_battery_low", "flag", "the pump battery is at its replacement indicator"),
    FactField("pump_delivery_at_risk", "flag", "any of the pump flags above"),
    FactField("days_to_depletion", "number", "days until the reservoir reaches its alarm volume"),
)
