"""A taper plan as text: a one-line summary, a GFM table for cards, a plain table for the CLI."""

from __future__ import annotations

from cds.taper.planner import TaperPlan, TaperStep, times_a_day
from cds.taper.products import format_number

_HEADERS = ("Step", "From", "To", "Dose per administration", "Times a day", "Daily total")


def plan_summary(plan: TaperPlan) -> str:
    """E.g. 'Taper from 60 mg/day to stop over 15 days: 3 steps of 5 days each.'"""
    end = "stop" if plan.kind == "stop" else f"{format_number(plan.target_mg)} mg/day"
    steps = len(plan.steps)
    return (
        f"Taper from {format_number(plan.start_daily_mg)} mg/day to {end} over "
        f"{plan.duration_days} days: {steps} step{'s' if steps > 1 else ''} of "
        f"{plan.interval_days} days each ({plan.risk} risk schedule)."
    )


def _dose_column(step: TaperStep) -> str:
    if len(step.parts) == 1:
        return step.parts[0].amount_text
    return "; ".join(part.text for part in step.parts)


def _rows(plan: TaperPlan) -> list[tuple[str, ...]]:
    rows = [
        (
            str(step.number),
            step.start.isoformat(),
            step.end.isoformat() if step.end else "ongoing",
            _dose_column(step),
            str(step.administrations_per_day),
            f"{format_number(step.daily_mg)} mg",
        )
        for step in plan.steps
    ]
    if plan.maintenance is not None:
        step = plan.maintenance
        rows.append(
            (
                "new dose",
                step.start.isoformat(),
                "ongoing",
                _dose_column(step),
                str(step.administrations_per_day),
                f"{format_number(step.daily_mg)} mg",
            )
        )
    else:
        rows.append(("stop", plan.target_date.isoformat(), "", "none", "0", "0 mg"))
    return rows


def plan_markdown(plan: TaperPlan) -> str:
    """GFM table (for card detail), preceded by the summary and followed by warnings."""
    lines = [plan_summary(plan), "", "| " + " | ".join(_HEADERS) + " |"]
    lines.append("|" + "|".join("---" for _ in _HEADERS) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in _rows(plan)]
    lines += ["", f"Doses use {plan.delivery.description}."]
    lines += [f"- {warning}" for warning in plan.warnings]
    return "\n".join(lines)


def plan_text(plan: TaperPlan) -> str:
    """Plain-text table with aligned columns, for the terminal."""
    rows = [_HEADERS, *_rows(plan)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    lines = [plan_summary(plan), ""]
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += ["", f"Doses use {plan.delivery.description}."]
    lines += [f"Warning: {warning}" for warning in plan.warnings]
    return "\n".join(lines)


def plan_instructions(plan: TaperPlan) -> str:
    """The whole schedule as sentences, for the order's note."""
    lines = [plan_summary(plan)]
    for step in plan.steps:
        lines.append(f"Step {step.number}, {step.start.isoformat()} to {step.end}: {step.text}.")
    if plan.maintenance is not None:
        lines.append(
            f"From {plan.maintenance.start.isoformat()}: continue {plan.maintenance.text}."
        )
    else:
        lines.append(f"From {plan.target_date.isoformat()}: stop baclofen.")
    lines += plan.warnings
    return "\n".join(lines)


__all__ = ["plan_instructions", "plan_markdown", "plan_summary", "plan_text", "times_a_day"]
