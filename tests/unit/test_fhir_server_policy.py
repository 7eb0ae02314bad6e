"""Which fhirServer URLs and addresses a hook call may reach (issue 15 finding 2)."""

from __future__ import annotations

import ipaddress

import pytest

from cds.fhir_servers import (
    FhirServerPolicy,
    ServerPatternError,
    embedded_ipv4,
    parse_server_pattern,
)

HOSPITAL = parse_server_pattern("https://fhir.hospital-a.example.org/r4", "test")
WILDCARD = parse_server_pattern("https://*.hospital-b.example.org/fhir", "test")
PRIVATE = parse_server_pattern({"url": "https://fhir.lab.internal", "private_network": True},
                               "test")
POLICY = FhirServerPolicy()


@pytest.mark.parametrize("url", [
    "https://fhir.hospital-a.example.org/r4",
    "https://fhir.hospital-a.example.org/r4/",
    "https://FHIR.Hospital-A.example.org:443/r4/Patient",
    "https://x.hospital-b.example.org/fhir",
    "https://a.b.hospital-b.example.org/fhir/r4",
])
def test_allow_listed_urls_are_permitted(url):
    assert POLICY.permit(url, (HOSPITAL, WILDCARD)) is not None


@pytest.mark.parametrize("url", [
    "http://fhir.hospital-a.example.org/r4",             # https required
    "https://fhir.hospital-a.example.org/r4evil",        # path prefix on a segment boundary
    "https://fhir.hospital-a.example.org/other",
    "https://fhir.hospital-a.example.org:8443/r4",       # another port
    "https://fhir.hospital-a.example.org.evil.example/r4",
    "https://user:pw@fhir.hospital-a.example.org/r4",    # credentials in the URL
    "https://fhir.hospital-a.example.org/r4/../admin",   # dot segments
    "https://fhir.hospital-a.example.org/r4/%2e%2e/admin",
    "https://fhir.hospital-a.example.org/r4%2fadmin",
    "https://hospital-b.example.org/fhir",               # a wildcard needs a label
    "http://127.0.0.1:8080/internal/admin",
    "https://127.0.0.1/internal/admin",
    "https://2130706433/",                               # 127.0.0.1 written as a number
    "https://[::ffff:127.0.0.1]/",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.5/fhir",
    "file:///etc/passwd",
    "gopher://fhir.hospital-a.example.org/r4",
    "not a url",
])
def test_everything_else_is_refused_for_an_authenticated_client(url):
    assert POLICY.permit(url, (HOSPITAL, WILDCARD)) is None


def test_a_client_without_fhir_servers_may_reach_none():
    assert POLICY.permit("https://fhir.hospital-a.example.org/r4", ()) is None


def test_local_trial_allows_loopback_and_configured_servers_only():
    local = FhirServerPolicy(local_trial_patterns=(HOSPITAL,))
    for url in ("http://127.0.0.1:8080/fhir", "http://localhost:9/x", "https://[::1]:8443/"):
        assert local.permit(url, None) is not None
    assert local.permit("https://fhir.hospital-a.example.org/r4", None) is not None
    for url in ("https://fhir.elsewhere.example/r4", "http://10.0.0.5/fhir",
                "http://169.254.169.254/", "http://2130706433:8080/"):
        assert local.permit(url, None) is None


def address(text: str):
    return ipaddress.ip_address(text)


@pytest.mark.parametrize("text", [
    "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "10.0.0.1", "172.16.5.4",
    "192.168.1.1", "100.64.0.1", "169.254.169.254", "fe80::1", "fc00::1", "0.0.0.0", "::",
    "224.0.0.1", "ff02::1", "240.0.0.1", "2002:7f00:1::", "64:ff9b::7f00:1", "::ffff:10.0.0.1",
])
def test_non_public_addresses_are_refused_for_a_public_pattern(text):
    permit = POLICY.permit("https://fhir.hospital-a.example.org/r4", (HOSPITAL,))
    assert not permit.address_allowed(address(text))


@pytest.mark.parametrize("text", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(text):
    permit = POLICY.permit("https://fhir.hospital-a.example.org/r4", (HOSPITAL,))
    assert permit.address_allowed(address(text))


def test_private_network_pattern_allows_private_and_loopback_but_never_link_local():
    permit = POLICY.permit("https://fhir.lab.internal/fhir", (PRIVATE,))
    for text in ("10.0.0.1", "192.168.1.1", "127.0.0.1", "::ffff:10.1.1.1"):
        assert permit.address_allowed(address(text))
    for text in ("169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0"):
        assert not permit.address_allowed(address(text))


def test_next_links_must_stay_below_the_allow_listed_path():
    permit = POLICY.permit("https://fhir.hospital-a.example.org/r4", (HOSPITAL,))
    assert permit.url_allowed("https://fhir.hospital-a.example.org/r4/MedicationRequest?page=2")
    assert not permit.url_allowed("https://fhir.hospital-a.example.org/admin")
    assert not permit.url_allowed("https://other.example.org/r4")


def test_embedded_ipv4_is_unwrapped():
    assert embedded_ipv4(address("::ffff:127.0.0.1")) == address("127.0.0.1")
    assert embedded_ipv4(address("64:ff9b::a00:1")) == address("10.0.0.1")


@pytest.mark.parametrize("item", [
    "http://fhir.example.org",
    "https://fhir.example.org/r4?x=1",
    "https://user@fhir.example.org",
    {"url": 7},
    "ftp://fhir.example.org",
])
def test_bad_patterns_are_refused_at_start_up(item):
    with pytest.raises(ServerPatternError):
        parse_server_pattern(item, "issuers[0].fhir_servers[0]")
