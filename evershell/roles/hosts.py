"""Host names an allow-list may hold: validated and normalised (lower case, no trailing
dot, IDN labels as punycode). Loopback, link-local (cloud metadata), unspecified and
multicast addresses are refused, as are local and metadata names: the egress proxy would
reach them from the host's side of the sandbox."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_REFUSED_HOSTS = ("localhost", "metadata", "metadata.google.internal", "instance-data")


def normalise(raw: str) -> tuple[str, str | None]:
    """(the host as stored, None), or (the input, why it cannot be allow-listed)."""
    host = raw.strip().lower().rstrip(".")
    if not host:
        return host, "empty host name"
    if "://" in host or "/" in host:
        return host, f"expected a host name, not a URL: write {_bare(host)!r}"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        if address.is_loopback or address.is_link_local or address.is_unspecified \
                or address.is_multicast:
            return host, f"{host} cannot be allow-listed (loopback, link-local, " \
                         "metadata and multicast addresses are refused)"
        return str(address), None
    if ":" in host:
        return host, "ports are not supported: name the host only"
    labels = host.split(".")
    if "*" in host and (labels[0] != "*" or "*" in ".".join(labels[1:])
                        or len(labels) < 3):
        return host, "a wildcard must be the whole first label of a name with at " \
                     "least two more labels, as in *.example.com"
    wildcard = labels[0] == "*"
    names = labels[1:] if wildcard else labels
    try:
        names = [label if label.isascii() else label.encode("idna").decode()
                 for label in names]
    except UnicodeError:
        return host, f"{host!r} is not a valid host name"
    ascii_host = ".".join((["*"] if wildcard else []) + names)
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in names) \
            or names[-1].isdigit():
        return host, f"{host!r} is not a valid host name"
    if ascii_host in _REFUSED_HOSTS or ascii_host.endswith(".localhost"):
        return host, f"{host} cannot be allow-listed (local and metadata names are " \
                     "refused)"
    return ascii_host, None


def _bare(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]
