"""The material each credential kind carries, and its validation.

Errors land at ``details.fields.material.<field>`` and say what is wrong, never echoing
what was sent.
"""

from __future__ import annotations

import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from evershell.core.errors import validation_error
from evershell.secrets import rules

# kind → (required fields, optional fields)
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "token": (("token",), ()),
    "ssh_key": (("private_key",), ("passphrase",)),
    "username_password": (("username", "password"), ()),
}
FIELD_LABELS = {"token": "Token", "private_key": "Private key", "passphrase": "Passphrase",
                "username": "Username", "password": "Password"}
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----\s+[\s\S]+?\s+-----END \1PRIVATE KEY-----")


def kind_fields(kind: str) -> tuple[str, ...]:
    required, optional = KIND_FIELDS[kind]
    return required + optional


def _private_key_problem(private_key: str, passphrase: str | None) -> str | None:
    """Refuse what is plainly not a private key (a public key, a truncated paste, a wrong
    passphrase); formats this build cannot open (e.g. bcrypt-protected OpenSSH keys)
    are accepted on their shape alone."""
    if not _PRIVATE_KEY.search(private_key):
        return ("Paste the whole private key, from -----BEGIN … PRIVATE KEY----- to "
                "-----END … PRIVATE KEY-----.")
    data, password = private_key.strip().encode() + b"\n", \
        passphrase.encode() if passphrase else None
    loader = serialization.load_ssh_private_key if b"OPENSSH" in data.split(b"\n", 1)[0] \
        else serialization.load_pem_private_key
    try:
        loader(data, password=password)
    except UnsupportedAlgorithm:
        return None
    except TypeError:
        return "The key is protected: give its passphrase." if not password else \
            "The key is not protected; leave the passphrase empty."
    except ValueError:
        return "Not a readable private key, or the passphrase does not open it."
    return None


def check_material(kind: str, material: object) -> dict[str, str]:
    """The kind's fields, each a valid value; optional fields left empty are dropped."""
    if not isinstance(material, dict):
        raise validation_error({"material": ["Must be an object of the kind's fields."]})
    required, optional = KIND_FIELDS[kind]
    problems: dict[str, list[str]] = {}
    for extra in sorted(set(material) - set(required) - set(optional)):
        problems[str(extra)[:64]] = [f"Not a field of a {kind} credential "
                                     f"(fields: {', '.join(required + optional)})."]
    cleaned: dict[str, str] = {}
    for name in required + optional:
        value = material.get(name)
        if name in optional and value in (None, ""):
            continue
        problem = rules.value_problem(value) if value is not None else "Required."
        if problem:
            problems[name] = [problem]
        else:
            cleaned[name] = value
    if not problems and kind == "ssh_key":
        problem = _private_key_problem(cleaned["private_key"], cleaned.get("passphrase"))
        if problem:
            problems["private_key"] = [problem]
    if problems:
        raise validation_error({"material": problems})
    return cleaned
