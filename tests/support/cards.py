"""Check a CDS Hooks 2.0 response against the spec's service-side rules for cards.

Each problem names the requirement id from
shared/reference/cds-hooks-2.0-service-requirements.csv that it breaks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def _absolute_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def empty_or_null_paths(value: Any, path: str = "$") -> list[str]:
    """Req 3: no null or empty JSON element (the top-level empty cards array is allowed)."""
    found = []
    if value is None or value == "" or value == [] or value == {}:
        if path != "$.cards":
            found.append(path)
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found += empty_or_null_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += empty_or_null_paths(item, f"{path}[{index}]")
    return found


def coding_problems(coding: Any, where: str, display_required: bool) -> list[str]:
    problems = []
    if not isinstance(coding, dict):
        return [f"{where}: Coding must be an object"]
    if not isinstance(coding.get("code"), str):
        problems.append(f"{where}: code must be a string (req 216/218)")
    if not isinstance(coding.get("system"), str):
        problems.append(f"{where}: system must be a string (req 217)")
    if display_required and not (isinstance(coding.get("display"), str) and coding["display"]):
        problems.append(f"{where}: display required (req 100/136/219)")
    return problems


def action_problems(action: Any, where: str) -> list[str]:
    problems = []
    kind = action.get("type")
    if kind not in ("create", "update", "delete"):
        problems.append(f"{where}: type must be create|update|delete (req 127)")
    if not isinstance(action.get("description"), str):
        problems.append(f"{where}: description must be a string (req 128)")
    if kind in ("create", "update"):
        resource = action.get("resource")
        if not (isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)):
            problems.append(f"{where}: {kind} needs a FHIR resource (req 130-132)")
    if kind == "delete":
        if "resource" in action:
            problems.append(f"{where}: delete must not use resource (req 133)")
        if not isinstance(action.get("resourceId"), str):
            problems.append(f"{where}: delete should give resourceId as a string (req 134/135)")
    return problems


def card_problems(card: Any, index: int = 0) -> list[str]:
    where = f"cards[{index}]"
    if not isinstance(card, dict):
        return [f"{where}: card must be an object"]
    problems = []
    if not isinstance(card.get("uuid"), str):
        problems.append(f"{where}: uuid must be a string (req 80)")
    summary = card.get("summary")
    if not (isinstance(summary, str) and 0 < len(summary) < 140):
        problems.append(f"{where}: summary must be a string under 140 characters (req 83)")
    if "detail" in card and not isinstance(card["detail"], str):
        problems.append(f"{where}: detail must be markdown text (req 85)")
    if card.get("indicator") not in ("info", "warning", "critical"):
        problems.append(f"{where}: indicator must be info|warning|critical (req 87/88)")
    source = card.get("source")
    if not (isinstance(source, dict) and isinstance(source.get("label"), str)):
        problems.append(f"{where}: source with a label is required (req 90/105)")
    else:
        if "url" in source and not _absolute_url(source["url"]):
            problems.append(f"{where}: source.url must be absolute (req 107)")
        if "icon" in source and not _absolute_url(source["icon"]):
            problems.append(f"{where}: source.icon must be absolute (req 111)")
        if "topic" in source:
            problems += coding_problems(source["topic"], f"{where}.source.topic", False)
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if card.get("selectionBehavior") not in ("at-most-one", "any"):
            problems.append(f"{where}: suggestions need selectionBehavior (req 93/95/96)")
        recommended = 0
        for s_index, suggestion in enumerate(suggestions):
            s_where = f"{where}.suggestions[{s_index}]"
            if not isinstance(suggestion.get("label"), str):
                problems.append(f"{s_where}: label must be a string (req 117)")
            if "uuid" in suggestion and not isinstance(suggestion["uuid"], str):
                problems.append(f"{s_where}: uuid must be a string (req 119)")
            if "isRecommended" in suggestion:
                if not isinstance(suggestion["isRecommended"], bool):
                    problems.append(f"{s_where}: isRecommended must be boolean (req 121)")
                recommended += suggestion["isRecommended"] is True
            for a_index, action in enumerate(suggestion.get("actions") or []):
                problems += action_problems(action, f"{s_where}.actions[{a_index}]")
        if recommended > 1 and card.get("selectionBehavior") != "any":
            problems.append(f"{where}: several recommended suggestions need 'any' (req 122)")
    for r_index, reason in enumerate(card.get("overrideReasons") or []):
        problems += coding_problems(reason, f"{where}.overrideReasons[{r_index}]", True)
    for l_index, link in enumerate(card.get("links") or []):
        l_where = f"{where}.links[{l_index}]"
        if not isinstance(link.get("label"), str):
            problems.append(f"{l_where}: label must be a string (req 138)")
        if not _absolute_url(link.get("url")):
            problems.append(f"{l_where}: url must be an absolute URL (req 139)")
        if link.get("type") not in ("absolute", "smart"):
            problems.append(f"{l_where}: type must be absolute|smart (req 141/142)")
        if "appContext" in link and (link.get("type") != "smart"
                                     or not isinstance(link["appContext"], str)):
            problems.append(f"{l_where}: appContext only on smart links, as a string (req 144/147)")
    return problems


def response_problems(response: Any) -> list[str]:
    if not isinstance(response, dict) or not isinstance(response.get("cards"), list):
        return ["response must be an object with a cards array (req 74)"]
    problems = [f"{p}: null or empty element (req 3)" for p in empty_or_null_paths(response)]
    for index, card in enumerate(response["cards"]):
        problems += card_problems(card, index)
    for index, action in enumerate(response.get("systemActions") or []):
        problems += action_problems(action, f"systemActions[{index}]")
    extension = response.get("extension")
    if extension is not None and (not isinstance(extension, dict) or not all(
        isinstance(v, dict) and "." in k for k, v in extension.items()
    )):
        problems.append("extension values must be objects under reverse-domain keys (214/215)")
    return problems
