"""Gather the data a hook call needs: prefetch first, the client's FHIR server second.

Per CDS Hooks 2.0: a present key is used; a key whose value is null means "no data";
a missing key, or one holding an OperationOutcome, is fetched from fhirServer. When
required data can be had neither way the service answers 412 Precondition Failed.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from cds.config import Settings
from cds.errors import ClientError
from cds.fhir_client import FetchLimits, FhirClient, FhirFetchError, render_template
from cds.metrics import observe_fhir_fetch
from cds.resources import flatten
from cds.services import ServiceDefinition

log = logging.getLogger(__name__)

# Shared across requests: fallback fetches run concurrently under one deadline.
_FETCH_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fhir-fetch")


@dataclass
class GatheredData:
    resources: list[dict] = field(default_factory=list)
    # prefetch key -> short reason; reported to the client in the response extension.
    unavailable: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


def _is_operation_outcome(value: object) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def gather(request: dict, service: ServiceDefinition, settings: Settings) -> GatheredData:
    prefetch = request.get("prefetch") or {}
    context = request.get("context") or {}
    out = GatheredData()
    to_fetch = []
    for item in service.prefetch:
        if item.key in prefetch and not _is_operation_outcome(prefetch[item.key]):
            out.resources.extend(flatten(prefetch[item.key]))  # null -> no data
        else:
            to_fetch.append(item)
    if not to_fetch:
        return out

    server = request.get("fhirServer")
    token = (request.get("fhirAuthorization") or {}).get("access_token")
    reason = None
    if not server:
        reason = "not prefetched and no fhirServer was given"
    elif not token and not settings.fhir_allow_without_token:
        reason = "not prefetched and no fhirAuthorization access token was given"
    if reason:
        for item in to_fetch:
            out.unavailable[item.key] = reason
        _require(service, out)
        return out

    deadline = time.monotonic() + settings.fhir_deadline
    client = FhirClient(
        server,
        token,
        FetchLimits(
            settings.fhir_connect_timeout,
            settings.fhir_read_timeout,
            settings.fhir_max_pages,
            settings.fhir_max_response_bytes,
        ),
        deadline,
    )
    futures = {}
    for item in to_fetch:
        query = render_template(item.template, context)
        if query is None:
            out.unavailable[item.key] = "its prefetch template needs a context value not given"
            continue
        futures[_FETCH_POOL.submit(observe_fhir_fetch, client.search, query)] = item.key
    done, not_done = wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 0.25)
    for future in not_done:
        future.cancel()
        out.unavailable[futures[future]] = "the FHIR server did not answer before the deadline"
    for future in done:
        key = futures[future]
        try:
            result = future.result()
        except FhirFetchError as error:
            out.unavailable[key] = error.reason
            continue
        except Exception as error:  # a defect must cost this key, not the whole request
            log.exception("unexpected failure fetching prefetch key %s", key)
            out.unavailable[key] = f"could not be fetched ({type(error).__name__})"
            continue
        out.resources.extend(result.resources)
        out.fetched.append(key)
        if result.truncated:
            out.truncated.append(key)
    out.fetched.sort()
    _require(service, out)
    return out


def _require(service: ServiceDefinition, out: GatheredData) -> None:
    missing = [p.key for p in service.prefetch if p.required and p.key in out.unavailable]
    if missing:
        reasons = "; ".join(f"'{k}': {out.unavailable[k]}" for k in missing)
        raise ClientError(
            412,
            "Required data could not be obtained by prefetch or from the FHIR server "
            f"({reasons}).",
        )
