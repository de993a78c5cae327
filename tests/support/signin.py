"""Signing in through the real flow: our /auth/login and /auth/callback against the local
AuthKit-protocol server (a real HTTP server), as a browser would."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests


def sign_in(client, email: str, next_path: str = "/") -> str:
    """Drive the code flow with ``client`` (a Flask test client); returns where the
    callback redirected. The client keeps the ``wos_session`` cookie."""
    start = client.get("/auth/login", query_string={"next": next_path})
    assert start.status_code == 302, start.get_data(as_text=True)
    authorize_url = start.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    form = requests.post(authorize_url.split("?")[0], data={**query, "email": email},
                         allow_redirects=False, timeout=10)
    assert form.status_code in (302, 303), form.text
    back = urlsplit(form.headers["Location"])
    done = client.get(back.path, query_string=back.query)
    return done
