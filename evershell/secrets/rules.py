"""Validation shared by secrets and credentials. Messages name the field and the rule,
never the value that broke it."""

from __future__ import annotations

import re

from evershell.core.errors import ErrorCode, EvershellError, validation_error

# Names become environment variables in the sandbox (SPEC §7), so they are spelled as
# such: upper case, digits and underscores, starting with a letter.
NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
NAME_HELP = ("Use upper-case letters, digits and underscores, starting with a letter, "
             "at most 64 characters (e.g. GITHUB_TOKEN).")
# Variables the sandbox itself relies on: a secret named PATH would break every command.
RESERVED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "LANG", "TERM", "TMPDIR",
    "HOSTNAME", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "IFS",
})
RESERVED_PREFIX = "EVERSHELL_"
MAX_DESCRIPTION = 500
MAX_VALUE_BYTES = 64 * 1024


def check_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not name:
        raise validation_error({field: ["Name is required."]})
    if not NAME_PATTERN.match(name):
        raise validation_error({field: [NAME_HELP]})
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
        raise validation_error({field: [
            f"{name} is reserved for the sandbox's own environment; choose another name."]})
    return name


def check_description(description: object) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise validation_error({"description": ["Must be a string."]})
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise validation_error({"description": [
            f"At most {MAX_DESCRIPTION} characters."]})
    return description


def value_problem(value: object, required: bool = True) -> str | None:
    """Why ``value`` cannot be stored, or None. It becomes an environment variable, so
    it is text without NUL characters."""
    if not isinstance(value, str):
        return "Must be a string."
    if value == "":
        return "Must not be empty." if required else None
    if "\x00" in value:
        return "Must not contain NUL characters."
    if len(value.encode()) > MAX_VALUE_BYTES:
        return f"At most {MAX_VALUE_BYTES // 1024} KiB."
    return None


def check_value(value: object, field: str = "value") -> str:
    problem = value_problem(value)
    if problem:
        raise validation_error({field: [problem]})
    return value  # type: ignore[return-value]


def name_taken(name: str, where: str) -> EvershellError:
    return EvershellError(ErrorCode.NAME_TAKEN, f"{where} named {name} already exists.", 409,
                          {"name": name})
