"""Redaction (SPEC §7): every value, and its common encodings, becomes [secret:NAME]."""

from __future__ import annotations

import base64
import json
import random
import re
from urllib.parse import quote, quote_plus

import pytest

from evershell.secrets.redaction import Redactor

TOKEN = "ghp_Sup3r/S3cret+T0ken=="


@pytest.fixture
def redactor():
    return Redactor({"GITHUB_TOKEN": TOKEN})


def test_plain_occurrences_are_replaced(redactor):
    text = f"using {TOKEN} twice: {TOKEN}."
    assert redactor.redact(text) == "using [secret:GITHUB_TOKEN] twice: [secret:GITHUB_TOKEN]."


@pytest.mark.parametrize("encode", [
    lambda v: quote(v, safe=""),
    lambda v: quote_plus(v),
    lambda v: json.dumps({"token": v}),
    lambda v: base64.b64encode(v.encode()).decode(),
    lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
])
def test_common_encodings_are_replaced(redactor, encode):
    text = f"header: {encode(TOKEN)} end"
    redacted = redactor.redact(text)
    assert "[secret:GITHUB_TOKEN]" in redacted
    assert encode(TOKEN) not in redacted


@pytest.mark.parametrize("prefix", ["", "u:", "us:", "user:", "x" * 7 + ":"])
def test_base64_inside_a_longer_encoding_is_caught_at_every_alignment(prefix):
    """``Authorization: Basic base64(user:password)``: the password sits at any offset."""
    redactor = Redactor({"PASSWORD": "correct-horse-battery-staple"})
    encoded = base64.b64encode(f"{prefix}correct-horse-battery-staple".encode()).decode()
    redacted = redactor.redact(f"Authorization: Basic {encoded}")
    assert "[secret:PASSWORD]" in redacted
    # What is left of the encoding no longer decodes to anything near the password.
    leftover = redacted.split("Basic ", 1)[1].replace("[secret:PASSWORD]", "")
    assert len(leftover) <= len(prefix) * 4 // 3 + 8


def test_multi_line_values_are_caught_whole_and_line_by_line():
    key = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
           "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
           "QyNTUxOQAAACDbI6b0jZ0aQq2YVcTLwaJXT0Q8mbu4ogwW0wCbZ0ZJOAAAAJgKzM9mCszP\n"
           "-----END OPENSSH PRIVATE KEY-----\n")
    redactor = Redactor({"DEPLOY_KEY": key})
    assert redactor.redact(f"cat key:\n{key}done") == "cat key:\n[secret:DEPLOY_KEY]done"
    crlf = redactor.redact(key.replace("\n", "\r\n"))
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5v" not in crlf
    one_line = key.splitlines()[2]
    assert redactor.redact(f"grep hit: {one_line}") == "grep hit: [secret:DEPLOY_KEY]"
    assert json.dumps(key)[1:-1] not in redactor.redact(json.dumps({"k": key}))


def test_a_value_containing_another_is_replaced_whole():
    redactor = Redactor({"SHORT": "abcd1234", "LONG": "abcd1234efgh5678"})
    assert redactor.redact("abcd1234efgh5678 abcd1234") == "[secret:LONG] [secret:SHORT]"


def test_a_name_may_carry_several_values():
    redactor = Redactor({"SSH": ["private-key-body", "the-passphrase"]})
    assert redactor.redact("private-key-body the-passphrase") == "[secret:SSH] [secret:SSH]"


def test_short_values_are_replaced_plainly_but_not_their_encodings():
    redactor = Redactor({"PIN": "4711"})
    assert redactor.redact("pin 4711") == "pin [secret:PIN]"
    assert redactor.redact(base64.b64encode(b"4711").decode()) == "NDcxMQ=="


def test_nothing_to_hide_changes_nothing():
    assert Redactor({}).redact("anything") == "anything"
    assert Redactor({"EMPTY": ""}).redact("anything") == "anything"
    assert Redactor({"X": "value-here"}).redact("") == ""


def test_the_redactor_does_not_print_its_values(redactor):
    assert TOKEN not in repr(redactor) and "GITHUB_TOKEN" in repr(redactor)


def test_a_stream_hides_values_split_across_chunks(redactor):
    text = f"start {TOKEN} middle {base64.b64encode(TOKEN.encode()).decode()} end {TOKEN}"
    rng = random.Random(7)
    for _ in range(200):
        stream = redactor.stream()
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 12)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        out = "".join(stream.feed(piece) for piece in pieces) + stream.flush()
        assert out == redactor.redact(text), pieces


def test_a_stream_emits_what_is_safe_without_waiting_for_the_end(redactor):
    stream, hold = redactor.stream(), redactor.longest - 1
    first = stream.feed("x" * 100)
    assert first == "x" * (100 - hold)  # the rest could start a value: held back
    second = stream.feed(TOKEN[:5])
    assert second == "x" * 5 and TOKEN[:5] not in second
    third = stream.feed(TOKEN[5:] + "y" * 100)
    assert third.startswith("x" * (hold - 5) + "[secret:GITHUB_TOKEN]")
    rest = stream.flush()
    assert first + second + third + rest == redactor.redact("x" * 100 + TOKEN + "y" * 100)


@pytest.mark.parametrize("encode", [
    lambda v: v.encode().hex(),
    lambda v: v.encode().hex().upper(),
    lambda v: v[::-1],
    lambda v: "\n".join(v) + "\n",
    lambda v: "\r\n".join(v),
    lambda v: quote(v),
    lambda v: re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(v, safe="")),
], ids=["hex", "HEX", "reversed", "char-per-line", "char-per-crlf-line", "url-slash-safe",
        "url-lower"])
def test_the_documented_extra_encodings_are_replaced(redactor, encode):
    redacted = redactor.redact(f"out: {encode(TOKEN)} :end")
    assert "[secret:GITHUB_TOKEN]" in redacted
    assert encode(TOKEN).strip() not in redacted


def test_a_part_of_a_text_never_shows_part_of_a_value(redactor):
    text = f"aaaa{TOKEN}bbbb"
    start = text.index(TOKEN) + 5
    assert redactor.redact_part(text, start, len(text)) == "[secret:GITHUB_TOKEN]bbbb"
    assert redactor.redact_part(text, 0, start) == "aaaa[secret:GITHUB_TOKEN]"
    assert redactor.redact_part(text, 0, 3) == "aaa"
    assert Redactor({}).redact_part(text, 1, 3) == "aa"


def test_text_cut_inside_a_value_hides_the_start_of_it(redactor):
    assert redactor.redact_cut(f"output {TOKEN[:9]}") == "output [secret:GITHUB_TOKEN]"
    assert redactor.redact_cut("output ghp") == "output ghp"  # too short to say anything
    assert redactor.redact_cut(f"{TOKEN} done") == "[secret:GITHUB_TOKEN] done"


def test_a_value_base64_encoded_alone_leaves_no_tail(redactor):
    for encoded in (base64.b64encode(TOKEN.encode()).decode(),
                    base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("=")):
        assert redactor.redact(f"[{encoded}]") == "[[secret:GITHUB_TOKEN]]"
