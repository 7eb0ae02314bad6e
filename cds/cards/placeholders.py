"""The {placeholders} card texts may use, beyond fact and threshold names.

The knowledge loader refuses a card text naming anything else, so a wording edit can
never fail at request time. Values marked (request) come from the request and are
escaped before they reach a card.
"""

from __future__ import annotations

# Besides these, `{<patient fact>_evidence}` is what showed that patient fact (request text,
# escaped), e.g. {antipsychotic_recent_evidence}: "Haloperidol 5 mg/mL injection (ordered)".
PLACEHOLDERS: dict[str, str] = {
    "draft_dose_reason": "why the dose of the order being signed could not be read",
    "current_dose_reason": "why the dose of the running order a new order replaces could not be "
                           "read",
    "hours_without_text": "how long the route has delivered nothing, in words ('3 days')",
    # whole-card values
    "sign_list": "the signs shown, by label ('fever, tachycardia and hallucinations')",
    "event_phrase": "', after baclofen was stopped' style phrase for the event (empty if none)",
    "event_verb": "'stopped', 'put on hold', 'cut', 'stepped down fast', 'left out', 'running'",
    "event_ago": "how long ago the event was ('2 days', '30 hours')",
    "event_ago_short": "'2 days ago', 'on 2026-11-20', or 'at an unknown time'",
    "event_date": "the event's date and time (UTC)",
    "estimated_suffix": "', estimated from the record' when the time is an estimate",
    "daily_dose_text": "the daily dose before the event ('60 mg/day', 'an unknown dose')",
    "most_dose_text": "the most the running orders allow per day ('up to 30 mg/day' when an "
                      "as-needed allowance adds to the regular dose, else daily_dose_text)",
    "new_dose_text": "the daily dose after the event",
    "just_before_text": "the dose right before the event, when lowered within the reference "
                        "window (detail.lowered_line only)",
    "new_dose_suffix": "' (only an as-needed order up to 15 mg/day)' style note, or empty",
    "previous_dose_text": "the last dose held before the latest step",
    "exposure": "how long baclofen was taken ('8 months', 'an unknown time')",
    "steps_text": "the recent dose steps with dates ('60 -> 15 mg/day on ..., -> 0 on ...')",
    "addition_total_text": "the total if a new order is added to the current one",
    "addition_above_max": "the sentence part saying the total is above the labelled maximum",
    "risk_level": "'high' or 'standard'",
    "renal_evidence": "what shows impaired renal function ('eGFR 28 on 2026-11-20')",
    "renal_severe_evidence": "what shows severely impaired renal function ('eGFR 24 ...')",
    "unreadable_text": "(request) the readings whose unit could not be read "
                       "('Creatinine 310 in \"units\"')",
    "reading": "the name of a reading ('Creatinine')",
    "value": "a value as recorded",
    "renal_dose_note": "', at a dose adjusted for renal function' when kidneys are impaired",
    "stop_reason_text": "why the order was stopped ('a serious adverse reaction (angioedema)')",
    "pump_alarm_text": "(request) what the pump alarm reading says",
    "depletion_when": "when the reservoir reaches its alarm volume ('in 3 days', '2 days ago')",
    "pump_procedure_ago": "when the last pump procedure was ('7 hours ago')",
    "increase_ago": "when the dose was last raised ('5 days ago')",
    "high_interval": "the high-risk taper step interval in days (rules/taper.yaml)",
    "it_cut_percent": "the intrathecal large-cut threshold as a percentage",
    "weak_recognition_text": "the weak-recognition sentence for this order",
    "rule_titles": "the titles of the rules that fired",
    "threshold_text": "the thresholds the rules used, with values and sources",
    # one line of a list
    "label": "the label of a sign or risk factor",
    "evidence": "(request) what in the record shows a sign or risk factor",
    "source": "the source of a risk factor",
    "order_line": "one order, as an order_line text",
    "draft_word": "'Draft order' for an order being signed, else 'Order'",
    "status": "(request) the order's status",
    "product": "(request) the product as the order names it",
    "route_text": "'oral route' or 'intrathecal route'",
    "dose_text": "an order's daily dose, frequency and as-needed note",
    "dates_text": "an order's dates",
    "recognition": "how the order was recognised as baclofen ('RxNorm product code')",
    "exposure_days": "days on baclofen, rounded",
    "exposure_days_text": "days on baclofen in words ('1 day', '397 days')",
    "course_start": "the date the course started",
    "prn_max_text": "the as-needed maximum per day",
    "prn_use_text": "what administrations say about as-needed use",
    # the small word templates of cards.yaml detail.words
    "duration": "a duration in words ('2 days')",
    "n": "a number",
    "date": "a date (UTC)",
    "amount": "a dose with its unit ('15 mg/day')",
    "text": "(request) free text the record gave",
    "before": "the daily dose before a step",
    "after": "the daily dose after a step",
    "unit": "'mg/day' or 'mcg/day'",
    "window": "the window in days",
    "steps": "the daily doses of an order's dated steps ('60 → 45 → 30')",
    "basis": "how the reservoir estimate was made",
    "weight": "the body weight a dose per kg was worked out with ('body weight 18 kg on ...')",
    "when": "when the reservoir reaches its alarm volume",
    # taper plan texts
    "target": "the taper's target dose ('20 mg/day')",
    "start": "the taper's starting dose",
    "days": "the taper's length in days",
    "plan": "the taper in one line",
    "reason": "why no plan could be drawn (doses only, no patient data)",
    "min_days": "the standard minimum taper duration",
    "max_step": "the largest step of the standard policy (mg/day)",
    "interval": "the standard step interval (days)",
    "high_min_days": "the high-risk minimum taper duration",
    "form_text": "the tablets or liquid the taper is ordered in",
}
