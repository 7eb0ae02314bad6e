"""Gather the data a hook call needs: prefetch first, the client's FHIR server second.

Per CDS Hooks 2.0: a present key is used; a key whose value is null means "no data";
a missing key, or one holding an OperationOutcome, is fetched from fhirServer. When
required data can be had neither way the service answers 412 Precondition Failed.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from cds.caller import LOCAL_TRIAL_CLIENT, CdsClient
from cds.config import Settings
from cds.errors import ClientError
from cds.fhir_client import (
    NOT_FETCHED,
    FetchLimits,
    FhirClient,
    FhirFetchError,
    PagesSoFar,
    render_template,
)
from cds.fhir_servers import NOT_ALLOWED, FhirServerPolicy
from cds.log_bounds import defect_summary
from cds.metrics import observe_fhir_fetch
from cds.resources import flatten
from cds.services import ServiceDefinition

log = logging.getLogger(__name__)


@dataclass
class GatheredData:
    resources: list[dict] = field(default_factory=list)
    # prefetch key -> short reason; reported to the client in the response extension.
    unavailable: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


def _is_operation_outcome(value: object) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def gather(request: dict, service: ServiceDefinition, settings: Settings,
           client: CdsClient = LOCAL_TRIAL_CLIENT,
           before_network: Callable[[], None] = lambda: None) -> GatheredData:
    """`before_network` runs before the call waits on a FHIR server (the web layer gives
    its CPU turn back then: cds/web/admission.py)."""
    prefetch = request.get("prefetch") or {}
    context = request.get("context") or {}
    out = GatheredData()
    to_fetch = []
    for item in service.prefetch:
        if item.key in prefetch and not _is_operation_outcome(prefetch[item.key]):
            resources = flatten(prefetch[item.key])  # null -> no data
            _require_string_resource_types(item.key, resources)
            out.resources.extend(resources)
        else:
            to_fetch.append(item)
    if not to_fetch:
        return out

    server = request.get("fhirServer")
    token = (request.get("fhirAuthorization") or {}).get("access_token")
    reason = None
    permit = None
    if not server:
        reason = "not prefetched and no fhirServer was given"
    elif not token and not settings.fhir_allow_without_token:
        reason = "not prefetched and no fhirAuthorization access token was given"
    else:
        policy = FhirServerPolicy(settings.fhir_allowed_servers)
        permit = policy.permit(server, client.fhir_servers if client.iss else None)
        if permit is None:
            log.info("fhirServer refused: not on the allow-list of client %r", client.iss[:80])
            reason = NOT_ALLOWED
    if reason or permit is None:
        for item in to_fetch:
            out.unavailable[item.key] = reason or NOT_ALLOWED
        _require(service, out)
        return out

    deadline = time.monotonic() + settings.fhir_deadline
    fhir = FhirClient(
        server,
        token,
        FetchLimits(
            settings.fhir_connect_timeout,
            settings.fhir_read_timeout,
            settings.fhir_max_pages,
            settings.fhir_max_response_bytes,
        ),
        deadline,
        permit,
        ca_bundle=settings.fhir_ca_bundle,
    )
    before_network()
    # Threads of this call only: fetches stuck on one slow server (each cut at the
    # deadline) never queue another call's fetches behind them.
    pool = ThreadPoolExecutor(max_workers=len(to_fetch), thread_name_prefix="fhir-fetch")
    futures: dict[Future, tuple[str, PagesSoFar]] = {}
    for item in to_fetch:
        query = render_template(item.template, context)
        if query is None:
            out.unavailable[item.key] = "its prefetch template needs a context value not given"
            continue
        sink = PagesSoFar()
        futures[pool.submit(observe_fhir_fetch, fhir.search, query, sink)] = (item.key, sink)
    done, not_done = wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 0.25)
    pool.shutdown(wait=False, cancel_futures=True)
    for future in not_done:
        key, sink = futures[future]
        resources, pages = sink.close()
        if pages:  # the deadline cut the paging short: keep what came
            out.resources.extend(resources)
            out.fetched.append(key)
            out.truncated.append(key)
        else:
            log.info("FHIR fetch for prefetch key %s failed: deadline", key)
            out.unavailable[key] = NOT_FETCHED
    for future in done:
        key, _sink = futures[future]
        try:
            result = future.result()
        except FhirFetchError as error:
            log.info("FHIR fetch for prefetch key %s failed: %s", key, error.kind)
            out.unavailable[key] = error.reason
            continue
        except Exception:  # a defect must cost this key, not the whole request
            log.error("unexpected failure fetching prefetch key %s: %s", key,
                      defect_summary(sys.exc_info()[1]))
            out.unavailable[key] = NOT_FETCHED
            continue
        out.resources.extend(result.resources)
        out.fetched.append(key)
        if result.truncated:
            out.truncated.append(key)
    out.fetched.sort()
    out.truncated.sort()
    _require(service, out)
    return out


def _require_string_resource_types(key: str, resources: list[dict]) -> None:
    """Every later step keys on resourceType; a list or an object there used to be a 500
    (unhashable). Checked here, in a loop, because the same rule in the request's JSON
    Schema cost ~7 ms on a 300-resource Bundle."""
    for index, resource in enumerate(resources):
        if not isinstance(resource.get("resourceType"), str):
            location = f"$.prefetch.{key}.entry[{index}].resource.resourceType"
            raise ClientError(400, f"{location} must be of type string", location=location)


def _require(service: ServiceDefinition, out: GatheredData) -> None:
    missing = [p.key for p in service.prefetch if p.required and p.key in out.unavailable]
    if missing:
        reasons = "; ".join(f"'{k}': {out.unavailable[k]}" for k in missing)
        raise ClientError(
            412,
            "Required data could not be obtained by prefetch or from the FHIR server "
            f"({reasons}).",
        )
