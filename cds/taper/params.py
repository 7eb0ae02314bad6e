"""Load and validate the taper planner's parameters from rules/taper.yaml.

The values are clinical policy, so they live in rules/ with their sources; this module
only checks their shape and ranges so a bad edit fails at load time, not at the bedside.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

Risk = Literal["standard", "high"]

_DEFAULT_PATH = Path(__file__).resolve().parents[2] / "rules" / "taper.yaml"

_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_SOURCE = {"type": "string", "minLength": 3}


def _valued(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["value", "source"],
        "properties": {"value": schema, "source": _SOURCE},
    }


_STEP = {
    "type": "object",
    "required": ["max_step_mg_per_day", "interval_days", "source"],
    "properties": {
        "max_step_mg_per_day": {"type": "number", "minimum": 1, "maximum": 100},
        "interval_days": {"type": "integer", "minimum": 1, "maximum": 60},
        "source": _SOURCE,
    },
}

_PRODUCT = {
    "type": "object",
    "required": ["id", "name", "form", "route", "aliases", "rxcuis", "source"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "form": {"enum": ["tablet", "solution", "suspension", "granules", "injection"]},
        "route": {"enum": ["oral", "intrathecal"]},
        "strengths_mg": {"type": "array", "minItems": 1, "items": _POSITIVE},
        "concentration_mg_per_ml": _POSITIVE,
        "aliases": {"type": "array", "items": {"type": "string", "minLength": 2}},
        "rxcuis": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rxcui", "status"],
                "properties": {
                    "rxcui": {"type": "string", "pattern": "^[0-9]+$"},
                    "strength_mg": _POSITIVE,
                    "concentration_mg_per_ml": _POSITIVE,
                    "status": {"type": "string"},
                },
            },
        },
        "source": _SOURCE,
    },
    # A tablet/granule product needs strengths; an oral liquid needs a concentration.
    "allOf": [
        {
            "if": {"properties": {"form": {"enum": ["tablet", "granules"]}}},
            "then": {"required": ["strengths_mg"]},
        },
        {
            "if": {"properties": {"form": {"enum": ["solution", "suspension"]}}},
            "then": {"required": ["concentration_mg_per_ml"]},
        },
    ],
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "version",
        "minimum_duration_days",
        "steps",
        "minimum_reductions",
        "high_risk",
        "labelled_max_daily_mg",
        "min_dose_per_administration_mg",
        "default_administrations_per_day",
        "liquid_measuring_increment_ml",
        "unknown_product_unit_mg",
        "products",
        "oral_route",
        "intrathecal_advice",
    ],
    "properties": {
        "version": {"const": 1},
        "minimum_duration_days": {
            "type": "object",
            "required": ["standard", "high"],
            "properties": {
                "standard": _valued({"type": "integer", "minimum": 7, "maximum": 365}),
                "high": _valued({"type": "integer", "minimum": 7, "maximum": 365}),
            },
        },
        "steps": {
            "type": "object",
            "required": ["standard", "high"],
            "properties": {"standard": _STEP, "high": _STEP},
        },
        "minimum_reductions": _valued({"type": "integer", "minimum": 1, "maximum": 20}),
        "high_risk": {
            "type": "object",
            "required": [
                "daily_dose_above_mg",
                "exposure_days_at_least",
                "prior_withdrawal",
                "source",
            ],
            "properties": {
                "daily_dose_above_mg": {"type": ["number", "null"], "exclusiveMinimum": 0},
                "exposure_days_at_least": {"type": ["integer", "null"], "minimum": 1},
                "prior_withdrawal": {"type": "boolean"},
                "source": _SOURCE,
            },
        },
        "labelled_max_daily_mg": _valued(_POSITIVE),
        "min_dose_per_administration_mg": _valued(_POSITIVE),
        "default_administrations_per_day": _valued({"type": "integer", "minimum": 1, "maximum": 6}),
        "liquid_measuring_increment_ml": _valued(
            {"type": "number", "exclusiveMinimum": 0, "maximum": 5}
        ),
        "unknown_product_unit_mg": _valued(_POSITIVE),
        "products": {"type": "array", "minItems": 1, "items": _PRODUCT},
        "oral_route": {
            "type": "object",
            "required": ["system", "code", "display", "source"],
            "properties": {
                "system": {"type": "string", "pattern": "^https?://"},
                "code": {"type": "string", "minLength": 1},
                "display": {"type": "string"},
                "source": _SOURCE,
            },
        },
        "intrathecal_advice": {
            "type": "object",
            "required": ["text", "source"],
            "properties": {"text": {"type": "string", "minLength": 20}, "source": _SOURCE},
        },
    },
}


class TaperParamsError(ValueError):
    """rules/taper.yaml is missing, unreadable or has an out-of-range value."""


@dataclass(frozen=True)
class StepPolicy:
    max_step_mg_per_day: float
    interval_days: int
    min_duration_days: int


@dataclass(frozen=True)
class ProductCode:
    rxcui: str
    strength_mg: float | None
    concentration_mg_per_ml: float | None


@dataclass(frozen=True)
class ProductEntry:
    """One row of the deliverable-product table."""

    id: str
    name: str
    form: str
    route: str
    strengths_mg: tuple[float, ...]
    concentration_mg_per_ml: float | None
    aliases: tuple[str, ...]
    codes: tuple[ProductCode, ...]


@dataclass(frozen=True)
class TaperParams:
    standard: StepPolicy
    high: StepPolicy
    minimum_reductions: int
    high_risk_daily_dose_above_mg: float | None
    high_risk_exposure_days_at_least: int | None
    high_risk_prior_withdrawal: bool
    labelled_max_daily_mg: float
    min_dose_per_administration_mg: float
    default_administrations_per_day: int
    liquid_measuring_increment_ml: float
    unknown_product_unit_mg: float
    products: tuple[ProductEntry, ...]
    oral_route: dict[str, str]  # FHIR Coding (system, code, display)
    intrathecal_advice: str

    def policy(self, risk: Risk) -> StepPolicy:
        return self.high if risk == "high" else self.standard

    def product(self, product_id: str) -> ProductEntry:
        for entry in self.products:
            if entry.id == product_id:
                return entry
        raise KeyError(product_id)


def taper_risk(
    daily_dose_mg: float,
    exposure_days: int | None,
    prior_withdrawal: bool,
    params: TaperParams,
) -> Risk:
    """Risk profile from what a caller knows, using the local-policy triggers."""
    above = params.high_risk_daily_dose_above_mg
    if above is not None and daily_dose_mg > above:
        return "high"
    at_least = params.high_risk_exposure_days_at_least
    if at_least is not None and exposure_days is not None and exposure_days >= at_least:
        return "high"
    if params.high_risk_prior_withdrawal and prior_withdrawal:
        return "high"
    return "standard"


def _read_text(path: Path | None) -> tuple[str, str]:
    if path is not None:
        return path.read_text(encoding="utf-8"), str(path)
    if _DEFAULT_PATH.is_file():
        return _DEFAULT_PATH.read_text(encoding="utf-8"), "rules/taper.yaml"
    # Installed without the source tree: rules/ is shipped as package data.
    resource = resources.files("rules").joinpath("taper.yaml")
    return resource.read_text(encoding="utf-8"), "rules/taper.yaml"


def _error_location(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _build(doc: dict[str, Any]) -> TaperParams:
    def policy(risk: str) -> StepPolicy:
        step = doc["steps"][risk]
        return StepPolicy(
            max_step_mg_per_day=float(step["max_step_mg_per_day"]),
            interval_days=int(step["interval_days"]),
            min_duration_days=int(doc["minimum_duration_days"][risk]["value"]),
        )

    products = tuple(
        ProductEntry(
            id=row["id"],
            name=row["name"],
            form=row["form"],
            route=row["route"],
            strengths_mg=tuple(float(s) for s in row.get("strengths_mg", ())),
            concentration_mg_per_ml=row.get("concentration_mg_per_ml"),
            aliases=tuple(alias.lower() for alias in row["aliases"]),
            codes=tuple(
                ProductCode(
                    rxcui=code["rxcui"],
                    strength_mg=code.get("strength_mg"),
                    concentration_mg_per_ml=code.get("concentration_mg_per_ml"),
                )
                for code in row["rxcuis"]
            ),
        )
        for row in doc["products"]
    )
    high_risk = doc["high_risk"]
    return TaperParams(
        standard=policy("standard"),
        high=policy("high"),
        minimum_reductions=int(doc["minimum_reductions"]["value"]),
        high_risk_daily_dose_above_mg=high_risk["daily_dose_above_mg"],
        high_risk_exposure_days_at_least=high_risk["exposure_days_at_least"],
        high_risk_prior_withdrawal=bool(high_risk["prior_withdrawal"]),
        labelled_max_daily_mg=float(doc["labelled_max_daily_mg"]["value"]),
        min_dose_per_administration_mg=float(doc["min_dose_per_administration_mg"]["value"]),
        default_administrations_per_day=int(doc["default_administrations_per_day"]["value"]),
        liquid_measuring_increment_ml=float(doc["liquid_measuring_increment_ml"]["value"]),
        unknown_product_unit_mg=float(doc["unknown_product_unit_mg"]["value"]),
        products=products,
        oral_route={key: doc["oral_route"][key] for key in ("system", "code", "display")},
        intrathecal_advice=" ".join(doc["intrathecal_advice"]["text"].split()),
    )


def load_taper_params(path: Path | str | None = None) -> TaperParams:
    """Read rules/taper.yaml (or `path`), validate it and return typed parameters."""
    try:
        text, label = _read_text(Path(path) if path is not None else None)
        doc = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise TaperParamsError(f"cannot read taper parameters: {exc}") from exc
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError as exc:
        raise TaperParamsError(
            f"{label} is invalid at {_error_location(exc)}: {exc.message}"
        ) from exc
    params = _build(doc)
    ids = [entry.id for entry in params.products]
    if len(set(ids)) != len(ids):
        raise TaperParamsError(f"{label} is invalid at products: duplicate product id")
    return params
