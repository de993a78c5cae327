"""Factories for secrets and credentials. Each commits, like ``tests.factories``."""

from __future__ import annotations

from evershell.access.models import Membership
from evershell.extensions import db
from evershell.secrets import credentials as credential_services
from evershell.secrets import services as secret_services
from evershell.secrets.models import Credential, Secret
from tests.factories import principal_for


def make_secret(membership: Membership, name: str = "API_TOKEN", value: str = "s3cret-value",
                description: str = "") -> Secret:
    secret = secret_services.create(principal_for(membership), name, value, description)
    db.session.commit()
    return secret


def make_credential(membership: Membership, name: str = "GITHUB", kind: str = "token",
                    material: dict | None = None, scope: str = "user") -> Credential:
    material = material if material is not None else {"token": f"tok-{name.lower()}"}
    credential = credential_services.create(principal_for(membership), name, kind, material,
                                            scope=scope)
    db.session.commit()
    return credential
