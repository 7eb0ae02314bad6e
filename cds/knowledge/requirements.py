"""Names in rules/ that the engine's Python reads directly.

The interpreter has to name a few things: the code sets recognition and the pump reader
match against, the thresholds the timeline and windows use, the signs that forbid advice
to give baclofen or sedatives, the patient facts that change a card's plan. The loader
refuses rules/ without any of them, so removing one can never fail a request; a test
keeps this list in step with the code (tests/unit/test_knowledge.py).
"""

from __future__ import annotations

CODE_SETS = (
    "baclofen_ingredient", "route_intrathecal", "route_oral", "route_enteral_tube",  # recognition
    "pump_device", "pump_procedure", "pump_refill", "pump_reservoir_volume", "pump_alarm",
    "pump_reading_normal", "pump_battery", "pump_battery_low", "pump_battery_fine",
    "pump_implant", "pump_daily_dose",
    "pump_margin", "pump_risk_procedure",  # cds/facts/pump.py
    "serious_reaction",  # cds/facts/orders.py, patient.py: a stop for a serious reaction
)
THRESHOLDS = (
    "lookback_days", "recent_sign_hours", "max_course_gap_days", "reference_window_days",
    "replacement_gap_hours", "taper_step_gap_max_days", "large_cut_fraction",
    "taper_final_max_mg_per_day", "recent_increase_days", "recent_restart_days",
    "administration_continues_hours", "prn_use_window_days", "prn_regular_use_fraction",
    "intrathecal_large_cut_fraction", "intrathecal_step_interval_days",
    "pump_low_reservoir_margin_ml", "pump_refill_warning_days", "pump_procedure_recent_hours",
    "label_max_mg_per_day", "min_exposure_days", "omission_after_hours",
    "discharge_completed_within_hours",
    "baclofen_cleared_hours",
)
# Signs whose presence removes advice to give baclofen or sedatives (cds/facts/subjects.py).
SIGNS = ("depressed_consciousness", "respiratory_depression", "hypoxaemia",
         "altered_mental_status",
         # read together in spinal cord injury at T6 or above (cds/facts/subjects.py)
         "autonomic_dysreflexia_pattern", "bradycardia", "raised_blood_pressure")
# Risk factors the facts read by name.
RISK_FACTORS = ("spinal_cord_injury_t6_or_above",)
# Patient facts a card's plan or wording depends on (cds/cards, cds/taper/proposal.py).
PATIENT_FACTS = ("renal_impairment", "renal_impairment_severe", "swallowing_problem",
                 "comfort_care", "feeding_tube",
                 "catheter_problem")  # cds/facts/subjects.py: since when a pump delivers nothing
# Measurements the facts read by name (a dose per kg, the kidneys).
MEASUREMENTS = ("body_weight", "egfr", "serum_creatinine")
# Card kinds with engine-built parts (the taper plan; headline sign order; thresholds shown).
CARD_KINDS = ("supervised-taper", "possible-toxicity", "intrathecal-stop")
