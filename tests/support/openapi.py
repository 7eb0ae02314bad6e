"""Check real responses against openapi.yaml, so the document cannot drift."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"


@cache
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource("urn:openapi", DRAFT202012.create_resource(spec()))


def _path_item(path: str) -> tuple[str, dict]:
    if path in spec()["paths"]:  # a concrete path wins over a template, as in OpenAPI
        return path, spec()["paths"][path]
    for template, item in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template, item
    raise AssertionError(f"{path} is not described in openapi.yaml")


def _deref(node: dict) -> dict:
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#/").split("/")
        target: Any = spec()
        for part in pointer:
            target = target[part]
        node = target
    return node


def check_response(method: str, path: str, status: int, body: Any, headers: Any = None) -> None:
    template, item = _path_item(path)
    operation = item.get(method.lower())
    assert operation is not None, f"{method} {template} is not in openapi.yaml"
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template} -> {status} is not in openapi.yaml"
    response = _deref(responses[str(status)])
    schema = response["content"]["application/json"]["schema"]
    validator = Draft202012Validator(
        {"$ref": "urn:openapi#" + schema["$ref"][1:]} if "$ref" in schema else schema,
        registry=_registry(),
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path} {status}: {errors[0].message} at {list(errors[0].path)}"
    for name in (response.get("headers") or {}):
        assert headers is not None and name in headers, f"missing header {name}"
