"""The SSRF rule of SPEC §6 for provider base URLs, case by case (literal addresses,
``localhost`` and the fake DNS of conftest: nothing here needs external DNS)."""

from __future__ import annotations

import pytest

from evershell.providers import ssrf
from evershell.providers.ssrf import UnsafeURL, check_address, validate_base_url
from tests.providers.conftest import REAL_RESOLVE

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data",       # the metadata address itself
    "http://169.254.10.20:8080/",                    # any link-local IPv4
    "http://[fe80::1]/",                             # link-local IPv6
    "http://[fd00:ec2::254]/",                       # AWS metadata over IPv6
    "http://[fd20:ce::254]/",                        # GCP metadata over IPv6
    "http://100.100.100.200/",                       # Alibaba metadata
    "http://168.63.129.16/",                         # Azure WireServer
    "http://metadata.google.internal/computeMetadata/v1",
    "http://METADATA.google.internal./",             # case and a trailing dot
    "http://metadata/",
    "http://[::ffff:169.254.169.254]/",              # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",                    # the same, in hex
    "http://[::169.254.169.254]/",                   # IPv4-compatible IPv6
    "http://[64:ff9b::169.254.169.254]/",            # through NAT64
    "http://[2002:a9fe:a9fe::1]/",                   # 6to4 of the metadata address
]
PRIVATE = [
    "http://127.0.0.1:8000/v1",
    "http://127.8.9.10/",
    "http://[::1]:11434/",
    "http://localhost:11434/v1",
    "http://LocalHost./",
    "http://ollama.localhost/",
    "http://10.0.0.5/v1",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.10:8080/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://100.64.0.1/",                            # CGNAT
    "http://100.127.255.254/",
    "http://0.0.0.0:8000/",
    "http://[::]/",
    "http://224.0.0.1/",                             # multicast
    "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/",                    # IPv4-mapped loopback
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b:1::a00:1]/",                    # local-use NAT64
]
PUBLIC = [
    ("https://api.anthropic.com", "https://api.anthropic.com"),
    ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
    ("HTTPS://Models.Example.COM:8443/v1/", "https://models.example.com:8443/v1"),
    ("http://8.8.8.8/v1", "http://8.8.8.8/v1"),
    ("http://[2606:4700:4700::1111]:8000/v1", "http://[2606:4700:4700::1111]:8000/v1"),
    ("http://[::ffff:8.8.8.8]/", "http://[::ffff:808:808]"),
    ("http://172.32.0.1/", "http://172.32.0.1"),    # just outside 172.16/12
    ("http://unknown-name.example/v1", "http://unknown-name.example/v1"),
]
MALFORMED = [
    ("", "required"),
    ("ftp://models.example.com/", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://127.0.0.1:6379/", "http:// or https://"),
    ("models.example.com/v1", "http:// or https://"),
    ("http:///v1", "needs a host"),
    ("http://user:pass@models.example.com/", "user name or password"),
    ("http://user@models.example.com/", "user name or password"),
    ("http://models.example.com@169.254.169.254/", "user name or password"),
    ("http://models.example.com/v1?key=1", "query string"),
    ("http://models.example.com/v1#frag", "fragment"),
    ("http://models.example.com:99999/", "port"),
    ("http://models.example.com:0/", "Port 0"),
    ("http://[::1/", "not a valid URL"),
    ("http://models example.com/", "spaces"),
    ("http://models.example.com\\@10.0.0.1/", "backslashes"),
    ("http://%31%32%37.0.0.1/", "not a valid host name"),
    ("http://" + "a" * 2050 + ".com/", "at most 2048"),
]
# Non-canonical IPv4 spellings that inet_aton (and so many HTTP clients) would accept.
LEGACY_IPV4 = ["http://2852039166/", "http://0xa9fea9fe/", "http://0xa9.0xfe.0xa9.0xfe/",
               "http://0251.0376.0251.0376/", "http://169.254.43518/", "http://127.1/",
               "http://0x7f000001/", "http://017700000001/", "http://127.000.000.001/",
               "http://134744072/"]  # the last is 8.8.8.8: refused all the same


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_link_local_and_metadata_are_refused_even_when_private_networks_are_allowed(
        url, allow_private):
    with pytest.raises(UnsafeURL) as refused:
        validate_base_url(url, allow_private)
    assert "metadata" in str(refused.value) or "link-local" in str(refused.value)
    assert ssrf.ALLOW_PRIVATE_SETTING not in str(refused.value)  # no hint: never allowed


@pytest.mark.parametrize("url", PRIVATE)
def test_private_addresses_are_refused_unless_the_operator_allows_them(url):
    with pytest.raises(UnsafeURL) as refused:
        validate_base_url(url, allow_private=False)
    assert ssrf.ALLOW_PRIVATE_SETTING in str(refused.value)
    assert validate_base_url(url, allow_private=True).startswith("http://")


@pytest.mark.parametrize(("url", "normalised"), PUBLIC)
def test_public_urls_are_accepted_and_normalised(url, normalised):
    assert validate_base_url(url, allow_private=False) == normalised


@pytest.mark.parametrize(("url", "reason"), MALFORMED)
def test_malformed_urls_say_what_is_wrong(url, reason):
    for allow_private in (False, True):
        with pytest.raises(UnsafeURL, match=reason):
            validate_base_url(url, allow_private)


@pytest.mark.parametrize("url", LEGACY_IPV4)
def test_unusual_ipv4_spellings_are_refused(url):
    for allow_private in (False, True):
        with pytest.raises(UnsafeURL, match="four decimal numbers"):
            validate_base_url(url, allow_private)


def test_every_address_a_name_resolves_to_is_checked(dns):
    dns["rebind.example"] = ["93.184.216.34", "169.254.169.254"]
    dns["intranet.example"] = ["93.184.216.34", "10.1.2.3"]
    with pytest.raises(UnsafeURL, match="rebind.example resolves to 169.254.169.254"):
        validate_base_url("https://rebind.example/", allow_private=True)
    with pytest.raises(UnsafeURL, match="intranet.example resolves to 10.1.2.3"):
        validate_base_url("https://intranet.example/", allow_private=False)
    assert validate_base_url("https://intranet.example/", allow_private=True) == \
        "https://intranet.example"


def test_a_name_resolving_to_mapped_ipv6_metadata_is_refused(dns):
    dns["sneaky.example"] = ["::ffff:169.254.169.254"]
    with pytest.raises(UnsafeURL, match="metadata"):
        validate_base_url("http://sneaky.example/", allow_private=True)


def test_the_real_resolver_reads_localhost_from_the_hosts_file(monkeypatch):
    assert "127.0.0.1" in REAL_RESOLVE("localhost", 80)
    assert REAL_RESOLVE("no-such-host.invalid", 80) == []  # RFC 2606: never resolves
    monkeypatch.setattr(ssrf, "resolve", REAL_RESOLVE)
    assert validate_base_url("http://localhost:8000/v1", allow_private=True) == \
        "http://localhost:8000/v1"


@pytest.mark.parametrize(("address", "allow_private", "refused"), [
    ("169.254.169.254", True, "metadata"),
    ("fe80::1%eth0", True, "link-local"),
    ("::ffff:169.254.169.254", True, "metadata"),
    ("2002:a9fe:a9fe::", True, "metadata"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", True, "metadata"),  # Teredo of 169.254.169.254
    ("127.0.0.1", False, "loopback"),
    ("10.0.0.1", False, "private"),
    ("100.64.0.1", False, "CGNAT"),
    ("0.0.0.0", False, "unspecified"),
    ("239.1.2.3", False, "multicast"),
    ("240.0.0.1", False, "reserved"),
])
def test_check_address_is_what_adapters_call_at_connect_time(address, allow_private, refused):
    with pytest.raises(UnsafeURL, match=refused):
        check_address(address, allow_private)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_check_address_lets_public_addresses_through(address):
    check_address(address, allow_private=False)


@pytest.mark.parametrize(("value", "allowed"), [
    (None, False), ("", False), ("false", False), ("0", False), ("no", False),
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
    ("maybe", False),  # unreadable: the safe default, with a warning in the log
])
def test_the_operator_setting(monkeypatch, value, allowed):
    if value is None:
        monkeypatch.delenv(ssrf.ALLOW_PRIVATE_SETTING, raising=False)
    else:
        monkeypatch.setenv(ssrf.ALLOW_PRIVATE_SETTING, value)
    assert ssrf.allow_private_networks() is allowed
