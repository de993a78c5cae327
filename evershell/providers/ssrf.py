"""Which base URLs a provider may point at (SPEC §6: SSRF).

A provider's base URL makes the server open connections on an org's behalf, so it must
not reach what only the server can reach: cloud metadata services (credentials of the
host), link-local addresses, and — unless the operator runs local model servers and says
so with ``EVERSHELL_ALLOW_PRIVATE_NETWORKS`` — loopback and private networks.

Checking at save time is not enough: a name that resolves to a public address today can
resolve to 169.254.169.254 tomorrow (DNS rebinding). ``validate_base_url`` gives people an
early, clear refusal; the adapters that open connections (a later issue) must resolve the
name themselves and call ``check_address`` on the address they actually connect to.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from urllib.parse import urlsplit

from evershell.config import env

log = logging.getLogger("evershell.providers")

ALLOW_PRIVATE_SETTING = "EVERSHELL_ALLOW_PRIVATE_NETWORKS"
MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused whatever the configuration says.
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle
    "169.254.170.2",    # AWS ECS task credentials
    "fd00:ec2::254",    # AWS (IPv6)
    "fd20:ce::254",     # GCP (IPv6)
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",    # Azure WireServer: a public address that only the host answers
))
_METADATA_HOSTS = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog",
    "instance-data", "instance-data.ec2.internal",
})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)"
                        r"(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")
# What inet_aton would read as an IPv4 address: 2852039166, 0xa9.0xfe.0xa9.0xfe, 0177.1 …
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$")


class UnsafeURL(ValueError):
    """A base URL (or an address it resolves to) that a provider may not use."""


def allow_private_networks() -> bool:
    """The operator's ``EVERSHELL_ALLOW_PRIVATE_NETWORKS`` (default false), read at each
    call so a changed setting needs no cache flush."""
    value = (env(ALLOW_PRIVATE_SETTING) or "false").lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value not in ("0", "false", "no", "off"):
        log.warning("%s=%r is not a boolean; private networks stay refused",
                    ALLOW_PRIVATE_SETTING, value)
    return False


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, bool]:
    """The IPv4 address an IPv6 address stands for, and whether the IPv6 form is only a
    spelling of it (mapped ``::ffff:a.b.c.d`` and compatible ``::a.b.c.d`` connect to the
    IPv4 address itself; NAT64, 6to4 and Teredo reach it through a translator)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, True
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), True
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), False
    if ip.sixtofour is not None:
        return ip.sixtofour, False
    if ip.teredo is not None:
        return ip.teredo[1], False
    return None, False


def _refusal(ip: IPAddress, allow_private: bool) -> str | None:
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if allow_private:
        return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _CGNAT:
        return "a shared (CGNAT) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _LOCAL_NAT64:
        return "a private address"
    if ip.is_private or not ip.is_global:
        return "a private or reserved address"
    return None


def _why_refused(address: str | IPAddress, allow_private: bool) -> str | None:
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, same_host = _embedded_ipv4(ip)
        if embedded is not None:
            candidates = [embedded] if same_host else [embedded, ip]
    for candidate in candidates:
        reason = _refusal(candidate, allow_private)
        if reason is not None:
            return reason
    return None


def _refused(subject: str, reason: str, allow_private: bool) -> UnsafeURL:
    always = "metadata" in reason or "link-local" in reason
    hint = "" if allow_private or always else \
        f" unless the operator sets {ALLOW_PRIVATE_SETTING}=true"
    return UnsafeURL(f"{subject} {reason}; providers may not connect to it{hint}.")


def check_address(address: str | IPAddress, allow_private: bool) -> None:
    """Raise ``UnsafeURL`` unless a provider may connect to ``address``.

    Always refused: link-local and cloud metadata addresses. Refused unless
    ``allow_private``: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), CGNAT
    100.64/10, unspecified, multicast and other non-global addresses. An IPv6 address
    that embeds an IPv4 one (mapped, compatible, NAT64, 6to4, Teredo) is judged by the
    IPv4 address too. Adapters call this on the address they connect to.
    """
    reason = _why_refused(address, allow_private)
    if reason is not None:
        raise _refused(f"{address} is", reason, allow_private)


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now, in the resolver's order of preference;
    empty when it does not resolve.

    A name that does not resolve is accepted at save time (setting up offline must
    work, and DNS answers change anyway): the connect-time check is the guard.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    except UnicodeError:
        raise UnsafeURL(f"{host!r} is not a valid host name.") from None
    return list(dict.fromkeys(info[4][0] for info in infos))  # the resolver's order


def _literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, or None for a name. IPv4 spellings other than
    four decimal numbers are refused: clients disagree on reading them (is 0177 octal?),
    and they serve mostly to slip past filters."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            socket.inet_aton(host)
        except OSError:
            return None
        raise UnsafeURL(f"{host!r} is an unusual spelling of an IPv4 address; write it as "
                        "four decimal numbers (a.b.c.d).")
    return None


def validate_base_url(url: str, allow_private: bool) -> str:
    """The normalised base URL (lower-case scheme and host, no trailing slash), or
    ``UnsafeURL`` saying what is wrong.

    Rules: http or https; a host; no user name or password; no query or fragment; the
    host, or every address it resolves to now, passes ``check_address``; cloud metadata
    host names and ``localhost`` names are judged without resolving.
    """
    url = (url or "").strip()
    if not url:
        raise UnsafeURL("A base URL is required.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"A base URL is at most {MAX_URL_LENGTH} characters.")
    if any(c <= " " or c in "\\\x7f" for c in url):
        raise UnsafeURL("A base URL may not contain spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        raise UnsafeURL("This is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("A base URL must start with http:// or https://.")
    if "@" in parts.netloc:
        raise UnsafeURL("A base URL may not carry a user name or password; reference the "
                        "API key as a secret instead.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UnsafeURL("A base URL may not have a query string or fragment.")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeURL("The port is not a number between 0 and 65535.") from None
    if port == 0:
        raise UnsafeURL("Port 0 is not a port a server listens on.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("A base URL needs a host, as in https://models.example.com/v1.")
    ip = _literal_ip(host)
    if ip is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeURL(f"{host!r} is not a valid host name.") from None
        if not _HOST_NAME.match(host):
            raise UnsafeURL(f"{host!r} is not a valid host name.")
        if host in _METADATA_HOSTS:
            raise UnsafeURL(f"{host} is a cloud metadata service; providers may not "
                            "connect to it.")
        if (host == "localhost" or host.endswith(".localhost")) and not allow_private:
            raise _refused(f"{host} is", "a loopback name", allow_private)  # RFC 6761
        for address in resolve(host, port or (443 if scheme == "https" else 80)):
            reason = _why_refused(address, allow_private)
            if reason is not None:
                raise _refused(f"{host} resolves to {address},", reason, allow_private)
    else:
        check_address(ip, allow_private)
    netloc = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip or host)
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"
