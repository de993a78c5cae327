"""Encryption at rest: the key ring from configuration, binding to the row, key rotation
with ``reencrypt_all``."""

from __future__ import annotations

import base64
import os

import pytest
import sqlalchemy as sa

from evershell import create_app
from evershell.audit.models import AuditEntry
from evershell.secrets import credentials, crypto, services
from evershell.secrets.crypto import DecryptionError, KeyConfigError
from evershell.secrets.models import Credential, Secret
from tests.factories import make_member, make_org
from tests.secrets.factories import make_credential, make_secret


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def keys(app):
    """Set the app's key ring for one test (``keys("k2:...,k1:...")``), then restore it."""
    before = app.config.get(crypto.CONFIG_NAME)

    def _set(value: str | None) -> crypto.KeyRing:
        app.config[crypto.CONFIG_NAME] = value
        return crypto.keyring(app)

    yield _set
    app.config[crypto.CONFIG_NAME] = before


def test_configured_keys_parse_in_order_the_first_encrypting():
    one, two = os.urandom(32), os.urandom(32)
    raw = (f"k2:{base64.urlsafe_b64encode(two).decode().rstrip('=')}, "
           f"k1:{base64.b64encode(one).decode()}")
    assert crypto.parse_keys(raw) == [("k2", two), ("k1", one)]
    ring = crypto.build_keyring(raw, "server-secret")
    assert ring.primary_id == "k2" and set(ring.keys) == {"k2", "k1", "derived"}


@pytest.mark.parametrize("raw, says", [
    ("nocolon", "expected"),
    ("bad id!:" + base64.b64encode(bytes(32)).decode(), "expected"),
    ("k1:not*base64", "not base64"),
    ("k1:" + base64.b64encode(bytes(16)).decode(), "32 bytes"),
    ("k1:{k},k1:{k}", "twice"),
    ("derived:{k}", "reserved"),
])
def test_malformed_key_rings_are_refused_without_echoing_keys(raw, says):
    key = base64.b64encode(b"\x07" * 32).decode()
    with pytest.raises(KeyConfigError) as raised:
        crypto.parse_keys(raw.format(k=key))
    assert says in str(raised.value) and key not in str(raised.value)


def test_a_malformed_ring_stops_the_app_at_start_up(app_config):
    with pytest.raises(KeyConfigError):
        create_app(dict(app_config, SECRETS_KEYS="k1:short"))


def test_the_environment_variable_configures_the_ring(app, monkeypatch):
    key = os.urandom(32)
    monkeypatch.setenv("EVERSHELL_SECRETS_KEYS", "envkey:" + base64.b64encode(key).decode())
    ring = crypto.keyring(app)
    assert ring.primary_id == "envkey" and ring.keys["envkey"] == key


def test_unset_the_key_derives_from_secret_key(app):
    ring = crypto.build_keyring("", "server-secret")
    assert ring.primary_id == "derived"
    assert crypto.build_keyring("", "other-secret").keys["derived"] != ring.keys["derived"]


def test_ciphertexts_are_fresh_and_bound_to_their_row(owner, session):
    first = make_secret(owner, "FIRST", "same-value")
    second = make_secret(owner, "SECOND", "same-value")
    assert first.ciphertext != second.ciphertext  # random nonces
    # An attacker with write access to the table copies one row's ciphertext into another.
    second.ciphertext, second.key_id = first.ciphertext, first.key_id
    session.commit()
    with pytest.raises(DecryptionError) as raised:
        services.secret_values(owner.org_id, ["SECOND"])
    assert "same-value" not in str(raised.value)
    assert services.secret_values(owner.org_id, ["FIRST"]) == {"FIRST": "same-value"}


def test_tampered_ciphertext_fails_to_decrypt(owner, session):
    secret = make_secret(owner, "TAMPERED", "original")
    secret.ciphertext = secret.ciphertext[:-1] + bytes([secret.ciphertext[-1] ^ 1])
    session.commit()
    with pytest.raises(DecryptionError):
        services.secret_values(owner.org_id, ["TAMPERED"])


def test_rotating_the_key_and_reencrypting(app, session, owner, keys):
    old, new = new_key(), new_key()
    keys(f"old:{old}")
    secret = make_secret(owner, "LONG_LIVED", "value-to-keep")
    credential = make_credential(owner, "CRED", material={"token": "token-to-keep"})
    legacy = make_secret(make_member(make_org(), role="owner"), "LEGACY", "derived-era")
    legacy.sealed = crypto.build_keyring("", app.config["SECRET_KEY"]).encrypt(
        b"derived-era", crypto.row_aad(legacy.org_id, legacy.id))
    session.commit()
    assert (secret.key_id, credential.key_id, legacy.key_id) == ("old", "old", "derived")

    keys(f"new:{new},old:{old}")  # new first: it encrypts; old still decrypts
    assert services.secret_values(owner.org_id, ["LONG_LIVED"]) == {
        "LONG_LIVED": "value-to-keep"}
    assert services.reencrypt_all(batch_size=1) == {"secrets": 2, "credentials": 1}
    session.expire_all()
    assert {row.key_id for row in session.scalars(sa.select(Secret))} == {"new"}
    assert {row.key_id for row in session.scalars(sa.select(Credential))} == {"new"}
    assert services.reencrypt_all() == {"secrets": 0, "credentials": 0}  # idempotent
    entries = session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "secrets.reencrypt")).all()
    assert {e.org_id for e in entries} == {owner.org_id, legacy.org_id}

    keys(f"new:{new}")  # the old key is gone: everything still opens
    assert services.secret_values(owner.org_id, ["LONG_LIVED"]) == {
        "LONG_LIVED": "value-to-keep"}
    resolved = credentials.resolve_for_task(owner.org_id, owner.user_id, ["CRED"])
    assert resolved["CRED"].fields == {"token": "token-to-keep"}
    assert services.secret_values(legacy.org_id, ["LEGACY"]) == {"LEGACY": "derived-era"}


def test_a_row_under_a_dropped_key_says_which_key_is_missing(session, owner, keys):
    keys(f"gone:{new_key()}")
    make_secret(owner, "STRANDED", "lost")
    keys(f"other:{new_key()}")
    with pytest.raises(DecryptionError) as raised:
        services.secret_values(owner.org_id, ["STRANDED"])
    assert "'gone'" in str(raised.value)
