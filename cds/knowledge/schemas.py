"""JSON Schemas of the files in rules/ and of a site override: shape, types and ranges.

References between files (a code set named by a sign, a product named by the taper, a
placeholder in a card text) are checked by the loader after these.
"""

from __future__ import annotations

from typing import Any

_TEXT = {"type": "string", "minLength": 1}
_ANY_TEXT = {"type": "string"}
_KEY = {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"}
_NUMBER = {"type": "number"}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_COMPARE = {"enum": ["<", "<=", ">", ">="]}

SOURCE: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "pattern": "^local policy: .{12,}"},
        {"type": "object", "required": ["ref", "section"], "additionalProperties": False,
         "properties": {"ref": _TEXT, "section": _TEXT}},
        {"type": "object", "required": ["terminology"], "additionalProperties": False,
         "properties": {"terminology": _TEXT, "code": _TEXT}},
    ]
}

_CONDITIONS = {"type": "array", "minItems": 1}

CODE = {
    "type": "object",
    "required": ["system", "code", "display", "status"],
    "additionalProperties": False,
    "properties": {
        "system": _TEXT, "code": _TEXT, "display": _TEXT, "prefix": {"type": "boolean"},
        "status": {"enum": ["verified", "unverified"]}, "verified_by": _TEXT, "note": _TEXT,
    },
    "allOf": [
        {"if": {"properties": {"status": {"const": "verified"}}},
         "then": {"required": ["verified_by"]}},
        {"if": {"properties": {"status": {"const": "unverified"}}},
         "then": {"required": ["note"]}},
    ],
}

CODE_SET = {
    "type": "object",
    "required": ["about", "codes"],
    "additionalProperties": False,
    "properties": {
        "about": _TEXT,
        "codes": {"type": "array", "items": CODE},
        "words": {"type": "array", "items": _TEXT},
    },
}

SOURCES_FILE = {
    "type": "object",
    "required": ["references", "terminologies"],
    "additionalProperties": False,
    "properties": {
        "references": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object",
            "required": ["kind", "short", "title", "url"],
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": ["label", "label-non-us", "paper"]},
                "short": _TEXT, "title": _TEXT, "url": {"type": "string", "pattern": "^https://"},
                "setid": {"type": "string", "pattern": "^[0-9a-f-]{36}$"},
                "pmid": {"type": "string", "pattern": "^[0-9]+$"},
                "doi": {"type": "string", "pattern": "^10\\.[0-9]{4,}/"},
            },
            "allOf": [
                {"if": {"properties": {"kind": {"const": "label"}}},
                 "then": {"required": ["setid"], "properties": {"url": {
                     "pattern": "^https://dailymed\\.nlm\\.nih\\.gov/dailymed/drugInfo\\.cfm"
                                "\\?setid=[0-9a-f-]{36}$"}}}},
                {"if": {"properties": {"kind": {"const": "paper"}}},
                 "then": {"anyOf": [{"required": ["pmid"]}, {"required": ["doi"]}]}},
            ],
        }},
        "terminologies": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object",
            "required": ["kind", "title", "system", "code_page"],
            "additionalProperties": False,
            "properties": {"kind": {"const": "terminology"}, "title": _TEXT, "system": _TEXT,
                           "code_page": _TEXT},
        }},
    },
}

TERMINOLOGY_FILE = {
    "type": "object",
    "required": ["code_sets", "solid_dose_units", "timing_codes", "stop_reasons",
                 "order_categories", "units", "sig_words", "negations"],
    "additionalProperties": False,
    "properties": {
        "code_sets": {"type": "object", "minProperties": 1, "additionalProperties": CODE_SET},
        "solid_dose_units": {"type": "object", "required": ["units", "source"],
                             "additionalProperties": False,
                             "properties": {"units": {"type": "array", "items": {"type": "string"}},
                                            "source": SOURCE}},
        "timing_codes": {"type": "object", "required": ["system", "per_day", "source"],
                         "additionalProperties": False,
                         "properties": {"system": _TEXT, "source": SOURCE, "per_day": {
                             "type": "object", "additionalProperties": _POSITIVE}}},
        "stop_reasons": {"type": "object", "required": ["system", "meanings", "words", "source"],
                         "additionalProperties": False,
                         "properties": {"system": _TEXT, "source": SOURCE,
                                        "meanings": {"type": "object",
                                                     "additionalProperties": _TEXT},
                                        "words": {"type": "object", "additionalProperties": {
                                            "type": "array", "items": _TEXT}}}},
        "order_categories": {"type": "object",
                             "required": ["system", "inpatient", "continuing", "source"],
                             "additionalProperties": False,
                             "properties": {"system": _TEXT, "source": SOURCE,
                                            "inpatient": {"type": "array", "items": _TEXT},
                                            "continuing": {"type": "array", "items": _TEXT}}},
        "negations": {"type": "object", "required": ["words", "scope_words", "source"],
                      "additionalProperties": False,
                      "properties": {"words": {"type": "array", "minItems": 1, "items": _TEXT},
                                     "scope_words": {"type": "integer", "minimum": 0,
                                                     "maximum": 6},
                                     "source": SOURCE}},
        "sig_words": {"type": "object",
                      "required": ["numbers", "per_day", "as_needed", "up_to", "single_dose",
                                   "not_single_before", "source"],
                      "additionalProperties": False,
                      "properties": {
                          "numbers": {"type": "object", "additionalProperties": _POSITIVE},
                          "per_day": {"type": "object", "additionalProperties": _POSITIVE},
                          "as_needed": {"type": "array", "items": _TEXT},
                          "up_to": {"type": "array", "items": _TEXT},
                          "single_dose": {"type": "array", "items": _TEXT},
                          "not_single_before": {"type": "array", "items": _TEXT},
                          "source": SOURCE}},
        "units": {"type": "object", "required": ["aliases", "conversions", "unitless_means",
                                                 "source"],
                  "additionalProperties": False,
                  "properties": {
                      "aliases": {"type": "object", "additionalProperties": {
                          "type": "array", "items": {"type": "string"}}},
                      "unitless_means": {"type": "array", "items": _TEXT},
                      "conversions": {"type": "array", "items": {
                          "type": "object", "required": ["from", "to", "factor"],
                          "additionalProperties": False,
                          "properties": {"from": _TEXT, "to": _TEXT, "factor": _NUMBER,
                                         "offset": _NUMBER,
                                         "for": {"type": "array", "items": _TEXT}}}},
                      # How a card writes each unit ("Cel" -> "°C"); a unit not listed is
                      # written as its UCUM code.
                      "display": {"type": "object", "additionalProperties": _ANY_TEXT},
                      "source": SOURCE}},
    },
}

PRODUCT_CODE = {
    "type": "object",
    "required": ["system", "code", "status"],
    "additionalProperties": False,
    "properties": {
        "system": _TEXT, "code": {"type": "string", "pattern": "^[0-9]+$"},
        "status": {"enum": ["verified", "strength-confirmed", "inferred", "unverified"]},
        "verified_by": _TEXT, "note": _TEXT,
    },
    "allOf": [
        {"if": {"properties": {"status": {"const": "unverified"}}},
         "then": {"required": ["note"]}, "else": {"required": ["verified_by"]}},
    ],
}

PRODUCTS_FILE = {
    "type": "object",
    "required": ["products", "text_recognition"],
    "additionalProperties": False,
    "properties": {
        "products": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["id", "name", "form", "route", "codes", "source"],
            "additionalProperties": False,
            "properties": {
                "id": _KEY, "name": _TEXT,
                "form": {"enum": ["tablet", "solution", "suspension", "granules", "injection"]},
                "route": {"enum": ["oral", "intrathecal"]},
                "strength_mg": _POSITIVE,
                "packet_strengths_mg": {"type": "array", "minItems": 1, "items": _POSITIVE},
                "concentration_mg_per_ml": _POSITIVE,
                "concentration_mcg_per_ml": _POSITIVE,
                "names": {"type": "array", "items": _TEXT},
                "codes": {"type": "array", "items": PRODUCT_CODE},
                "source": SOURCE,
            },
        }},
        "text_recognition": {
            "type": "object",
            "required": ["baclofen_names", "intrathecal_words", "form_words", "source"],
            "additionalProperties": False,
            "properties": {
                "baclofen_names": {"type": "array", "minItems": 1, "items": _TEXT},
                "intrathecal_words": {"type": "array", "minItems": 1, "items": _TEXT},
                "form_words": {"type": "object", "additionalProperties": {
                    "type": "array", "items": _TEXT}},
                "source": SOURCE,
            },
        },
    },
}

THRESHOLDS_FILE = {
    "type": "object",
    "required": ["thresholds"],
    "additionalProperties": False,
    "properties": {"thresholds": {"type": "object", "minProperties": 1, "additionalProperties": {
        "type": "object",
        "required": ["value", "unit", "type", "source"],
        "additionalProperties": False,
        "properties": {
            "value": _NUMBER, "unit": {"type": "string"},
            # how a card names it ("least use before a stop gets a taper card")
            "label": _TEXT,
            "type": {"enum": ["number", "integer"]}, "min": _NUMBER, "max": _NUMBER,
            "overridable": {"type": "boolean"}, "source": SOURCE,
        },
        "if": {"not": {"properties": {"overridable": {"const": False}}}},
        "then": {"required": ["min", "max"]},
    }}},
}

_READING = {
    "type": "object",
    "required": ["observation", "unit", "compare", "threshold"],
    "additionalProperties": False,
    "properties": {"observation": _TEXT, "unit": {"type": "string"}, "compare": _COMPARE,
                   "threshold": _TEXT, "fetch_with": _TEXT,
                   # a patient fact under which the reading shows nothing (a GCS under sedation)
                   "unless": _TEXT},
}

SIGNS_FILE = {
    "type": "object",
    "required": ["signs"],
    "additionalProperties": False,
    "properties": {"signs": {"type": "object", "minProperties": 1, "additionalProperties": {
        "type": "object",
        "required": ["label", "points_to", "severity", "source"],
        "additionalProperties": False,
        "anyOf": [{"required": ["readings"]}, {"required": ["recorded_as"]}],
        "properties": {
            "label": _TEXT, "points_to": {"enum": ["withdrawal", "toxicity", "either"]},
            "severity": {"oneOf": [
                {"enum": ["severe", "early"]},
                {"type": "object", "required": ["oral", "intrathecal"],
                 "additionalProperties": False,
                 "properties": {"oral": {"enum": ["severe", "early"]},
                                "intrathecal": {"enum": ["severe", "early"]}}}]},
            "readings": {"type": "array", "minItems": 1, "items": _READING},
            "recorded_as": _TEXT,
            "supersedes": {"type": "array", "items": _TEXT},
            "resolved_by": {"type": "array", "items": _TEXT},
            "source": SOURCE,
        },
    }}},
}

_FINDER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "condition": _TEXT, "observation": _TEXT, "allergy": _TEXT,
        "patient": {"enum": ["deceased"]},
        "measurement": _TEXT, "procedure": _TEXT, "device": _TEXT, "medication": _TEXT,
        "unit": {"type": "string"}, "compare": _COMPARE, "threshold": _TEXT,
        "answer_in": _TEXT, "answer_not_in": _TEXT, "value_after_now": {"type": "boolean"},
        "within_days": _POSITIVE, "within_hours": _POSITIVE, "latest": {"type": "boolean"},
        "planned": {"type": "boolean"}, "findings": {"type": "boolean"},
        "unless_later": _TEXT,
        "only_without": _TEXT, "recent": {"type": "boolean"},
    },
    "oneOf": [{"required": ["condition"]}, {"required": ["observation"]},
              {"required": ["allergy"]}, {"required": ["patient"]},
              {"required": ["measurement"]}, {"required": ["procedure"]},
              {"required": ["device"]}, {"required": ["medication"]}],
    "dependentRequired": {"compare": ["threshold"], "threshold": ["compare"]},
}

_MEASUREMENT_READING = {
    "type": "object",
    "required": ["observation", "unit"],
    "additionalProperties": False,
    "properties": {"observation": _TEXT, "unit": _TEXT},
}

_MEASUREMENT = {
    "type": "object",
    "required": ["label", "readings", "source"],
    "additionalProperties": False,
    "properties": {
        "label": _TEXT, "source": SOURCE,
        "readings": {"type": "array", "minItems": 1, "items": _MEASUREMENT_READING},
        # Worked out from other measurements and the patient when no reading is on record.
        "estimate": {"type": "object", "required": ["equation", "source"],
                     "additionalProperties": False,
                     "properties": {"equation": _TEXT, "source": SOURCE}},
    },
}

# CKD-EPI 2021 (creatinine, race-free): 142 x min(Scr/k,1)^a x max(Scr/k,1)^b x c^age
# x (1.012 if female); the shape is code (cds/facts/measurements.py), the numbers are here.
_CKD_EPI = {
    "type": "object",
    "required": ["from", "base", "beta", "age_factor", "female", "male", "source"],
    "additionalProperties": False,
    "properties": {
        "from": _TEXT, "base": _POSITIVE, "beta": _NUMBER, "age_factor": _POSITIVE,
        "female": {"type": "object", "required": ["kappa", "alpha", "factor"],
                   "additionalProperties": False,
                   "properties": {"kappa": _POSITIVE, "alpha": _NUMBER, "factor": _POSITIVE}},
        "male": {"type": "object", "required": ["kappa", "alpha", "factor"],
                 "additionalProperties": False,
                 "properties": {"kappa": _POSITIVE, "alpha": _NUMBER, "factor": _POSITIVE}},
        "min_age_years": {"type": "integer", "minimum": 0},
        "source": SOURCE,
    },
}

PATIENT_FILE = {
    "type": "object",
    "required": ["facts"],
    "additionalProperties": False,
    "properties": {
        "measurements": {"type": "object", "additionalProperties": _MEASUREMENT},
        "equations": {"type": "object", "additionalProperties": False,
                      "properties": {"ckd_epi_2021_creatinine": _CKD_EPI}},
        "facts": {"type": "object", "additionalProperties": {
        "type": "object",
        "required": ["label", "found_by", "source"],
        "additionalProperties": False,
        "properties": {"label": _TEXT, "source": SOURCE,
                       "found_by": {"type": "array", "minItems": 1, "items": _FINDER}},
    }}},
}

RISK_FILE = {
    "type": "object",
    "required": ["combine", "factors"],
    "additionalProperties": False,
    "properties": {
        "combine": {"type": "object", "required": ["high_when_at_least", "source"],
                    "additionalProperties": False,
                    "properties": {"high_when_at_least": {"type": "integer", "minimum": 1},
                                   "source": SOURCE}},
        "factors": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["label", "source"],
            "additionalProperties": False,
            "oneOf": [{"required": ["when", "evidence"]}, {"required": ["condition"]}],
            "properties": {
                "label": _TEXT, "source": SOURCE, "when": _CONDITIONS, "evidence": _TEXT,
                "replaces": {"type": "array", "items": _TEXT},
                "condition": {"type": "object", "required": ["codes"],
                              "additionalProperties": False,
                              "properties": {"codes": {"type": "array", "items": CODE},
                                             "words": {"type": "array", "items": _TEXT}}},
            },
        }},
    },
}

RULES_FILE = {
    "type": "object",
    "required": ["derived", "rules"],
    "additionalProperties": False,
    "properties": {
        "derived": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["when", "source"], "additionalProperties": False,
            "properties": {"when": _CONDITIONS, "source": SOURCE}}},
        "rules": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["id", "title", "when", "then", "source"],
            "additionalProperties": False,
            "properties": {"id": _KEY, "title": _TEXT, "when": _CONDITIONS, "then": _TEXT,
                           "source": SOURCE},
        }},
    },
}

def _strings(keys: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": keys, "additionalProperties": False,
            "properties": {key: _TEXT for key in keys}}


_VARIANTS = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["text"], "additionalProperties": False,
    "properties": {"text": _TEXT, "when": _CONDITIONS}}}

CARDS_FILE = {
    "type": "object",
    "required": ["service", "groups", "detail", "kinds"],
    "additionalProperties": False,
    "properties": {
        "service": {"type": "object", "required": ["label", "topic_system", "override_system"],
                    "additionalProperties": False,
                    "properties": {"label": _TEXT,
                                   "topic_system": {"type": "string", "pattern": "^https://"},
                                   "override_system": {"type": "string", "pattern": "^https://"}}},
        "groups": {"type": "array", "minItems": 1, "items": _KEY},
        "detail": {"$ref": "#/$defs/detail"},
        "kinds": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object",
            "required": ["indicator", "group", "priority", "topic", "references", "summary",
                         "actions", "override_reasons"],
            "properties": {
                "indicator": {"enum": ["info", "warning", "critical"]},
                "group": _KEY, "priority": {"type": "integer", "minimum": 0},
                "not_beside": {"type": "array", "uniqueItems": True,
                               "items": {"enum": ["info", "warning", "critical"]}},
                # false: the card has no withdrawal-risk section (a toxicity card)
                "withdrawal_risk": {"type": "boolean"},
                "topic": {"type": "object", "required": ["code", "display"],
                          "additionalProperties": False,
                          "properties": {"code": _TEXT, "display": _TEXT}},
                "references": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["ref", "section"],
                    "additionalProperties": False,
                    "properties": {"ref": _TEXT, "section": _TEXT}}},
                "summary": _VARIANTS, "actions": _VARIANTS,
                "override_reasons": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["code", "display"],
                    "additionalProperties": False,
                    "properties": {"code": _KEY, "display": _TEXT}}},
                "dose_unknown": _TEXT,
                "taper_plan": {
                    "type": "object",
                    "required": ["ends_at_target", "via_tube", "policy_note", "order_note",
                                 "suggestions", "no_plan"],
                    "additionalProperties": False,
                    "properties": {
                        "ends_at_target": _TEXT, "via_tube": _TEXT, "policy_note": _TEXT,
                        "order_note": _TEXT,
                        "suggestions": _strings(["replace_stop", "replace_cut", "delete_stop",
                                                 "delete_cut", "create", "keep", "keep_stop",
                                                 "keep_cut"]),
                        "no_plan": _strings(["dose_unknown", "ambiguous_total",
                                             "planner_refused", "no_clock",
                                             "cannot_replace"]),
                    }},
            },
            "additionalProperties": False,
        }},
    },
    "$defs": {"detail": {
        "type": "object",
        "required": ["headings", "event", "ambiguity", "ambiguity_duplicate", "addition_above_max",
                     "order_line",
                     "earlier_line", "lowered_line", "exposure_known", "exposure_unknown",
                     "exposure_at_least", "prn_line", "weak_recognition", "sign_line",
                     "signs_before_note",
                     "risk_line", "no_risk_factor", "renal_line", "unreadable_line", "basis_line",
                     "words"],
        "additionalProperties": False,
        "properties": {
            "headings": _strings(["record", "severe_signs", "early_signs", "toxicity_signs",
                                  "signs_before", "risk", "actions", "notes", "plan",
                                  "no_plan", "pump", "basis"]),
            "event": _VARIANTS,
            **{key: _TEXT for key in ("ambiguity", "ambiguity_duplicate", "addition_above_max",
                                      "order_line",
                                      "earlier_line", "lowered_line", "exposure_known",
                                      "exposure_unknown",
                                      "exposure_at_least", "prn_line", "weak_recognition",
                                      "sign_line", "signs_before_note", "risk_line",
                                      "no_risk_factor", "renal_line", "unreadable_line",
                                      "basis_line")},
            "words": {
                "type": "object",
                "required": ["event_verb", "event_phrase", "ago", "in", "unknown_time",
                             "estimated_suffix", "durations", "dose_units", "unknown_dose",
                             "unknown_exposure", "order_word", "route_text", "dates",
                             "frequency", "as_needed", "dose_unknown_reason", "step",
                             "step_being_signed", "new_dose_as_needed", "prn_use",
                             "renal_dose_note", "stop_reasons", "stop_reason_with_text",
                             "depletion", "pump_basis", "risk_levels", "end_of_day", "end_at",
                             "per_kg", "schedule_steps", "up_to"],
                "additionalProperties": False,
                "properties": {
                    "event_verb": _strings(["none", "stop", "hold", "cut", "fast-step",
                                            "omission"]),
                    **{key: _TEXT for key in ("event_phrase", "ago", "in", "unknown_time",
                                              "estimated_suffix", "unknown_dose",
                                              "unknown_exposure", "as_needed",
                                              "dose_unknown_reason", "step", "step_being_signed",
                                              "new_dose_as_needed", "renal_dose_note",
                                              "stop_reason_with_text", "pump_basis", "per_kg",
                                              "schedule_steps", "up_to")},
                    "durations": _strings(["minute", "minutes", "hour", "hours", "days",
                                           "weeks", "months", "years"]),
                    "dose_units": _strings(["mg/d", "ug/d"]),
                    "order_word": _strings(["draft", "record"]),
                    "route_text": _strings(["oral", "intrathecal"]),
                    "dates": _strings(["authored", "none", "ends", "ended", "ended_estimated",
                                       "replaced", "taken_over", "held", "validity_lapsed"]),
                    "frequency": {"type": "object", "required": ["other"],
                                  "additionalProperties": _TEXT},
                    "prn_use": _strings(["regular", "sporadic", "unknown", "supply"]),
                    "stop_reasons": _strings(["none", "serious-reaction", "toxicity",
                                              "intolerance", "duplicate", "interruption",
                                              "pregnancy", "other"]),
                    "depletion": _strings(["past", "future"]),
                    "risk_levels": _strings(["high", "standard"]),
                    "end_of_day": _TEXT, "end_at": _TEXT,
                },
            },
        },
    }},
}

_STEP = {
    "type": "object",
    "required": ["max_step_mg_per_day", "interval_days", "source"],
    "additionalProperties": False,
    "properties": {
        "max_step_mg_per_day": {"type": "number", "minimum": 1, "maximum": 100},
        "interval_days": {"type": "integer", "minimum": 1, "maximum": 60},
        "source": SOURCE,
    },
}


def _valued(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["value", "source"], "additionalProperties": False,
            "properties": {"value": schema, "source": SOURCE}}


_CODING = {"type": "object", "required": ["system", "code", "display"],
           "properties": {"system": {"type": "string", "pattern": "^https?://"},
                          "code": _TEXT, "display": _TEXT, "source": SOURCE}}

TAPER_FILE = {
    "type": "object",
    "required": ["minimum_duration_days", "steps", "minimum_reductions",
                 "min_dose_per_administration_mg", "default_administrations_per_day",
                 "liquid_measuring_increment_ml", "tablet_products", "granule_product",
                 "tube_product", "tube_product_source", "unknown_product_unit_mg",
                 "oral_route", "tube_route", "ingredient_coding", "ingredient_coding_source",
                 "intrathecal_advice"],
    "additionalProperties": False,
    "properties": {
        "minimum_duration_days": {
            "type": "object", "required": ["standard", "high"], "additionalProperties": False,
            "properties": {"standard": _valued({"type": "integer", "minimum": 7, "maximum": 365}),
                           "high": _valued({"type": "integer", "minimum": 7, "maximum": 365})}},
        "steps": {"type": "object", "required": ["standard", "high"], "additionalProperties": False,
                  "properties": {"standard": _STEP, "high": _STEP}},
        "minimum_reductions": _valued({"type": "integer", "minimum": 1, "maximum": 20}),
        "min_dose_per_administration_mg": _valued(_POSITIVE),
        "default_administrations_per_day": _valued({"type": "integer", "minimum": 1,
                                                    "maximum": 6}),
        "liquid_measuring_increment_ml": _valued({"type": "number", "exclusiveMinimum": 0,
                                                  "maximum": 5}),
        "tablet_products": {"type": "array", "minItems": 1, "items": _TEXT},
        "granule_product": _TEXT,
        "tube_product": _TEXT,
        "tube_product_source": SOURCE,
        "unknown_product_unit_mg": _valued(_POSITIVE),
        "oral_route": _CODING,
        "tube_route": _CODING,
        # A tube through the nose (its words in the tube's record) gets this route instead.
        "nasal_tube_route": _CODING,
        "nasal_tube_words": {"type": "array", "minItems": 1, "items": _TEXT},
        "ingredient_coding": {"type": "array", "minItems": 1, "items": _CODING},
        "ingredient_coding_source": SOURCE,
        "intrathecal_advice": {"type": "object", "required": ["text", "source"],
                               "additionalProperties": False,
                               "properties": {"text": {"type": "string", "minLength": 20},
                                              "source": SOURCE}},
    },
}

OVERRIDE_FILE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "thresholds": {"type": "object", "additionalProperties": _NUMBER},
        "taper": {"type": "object"},
        "code_sets": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False,
            "properties": {"codes": {"type": "array", "items": CODE},
                           "words": {"type": "array", "items": _TEXT}}}},
    },
}

FILES: dict[str, dict[str, Any]] = {
    "sources.yaml": SOURCES_FILE,
    "terminology.yaml": TERMINOLOGY_FILE,
    "products.yaml": PRODUCTS_FILE,
    "thresholds.yaml": THRESHOLDS_FILE,
    "signs.yaml": SIGNS_FILE,
    "patient.yaml": PATIENT_FILE,
    "risk.yaml": RISK_FILE,
    "rules.yaml": RULES_FILE,
    "cards.yaml": CARDS_FILE,
    "taper.yaml": TAPER_FILE,
}
