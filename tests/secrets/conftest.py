"""Fixtures of the secrets tests. ``console_client`` comes from ``tests/conftest.py``;
factories are in ``tests/secrets/factories.py``."""

from __future__ import annotations

import pytest

from tests.factories import bearer, make_api_key, make_member, make_org


@pytest.fixture
def org(app):
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner", email="owner@example.test")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner))
