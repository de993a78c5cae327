"""Console pages of identity and access: sign-in, the AuthKit callback, sign-out."""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, redirect, render_template, request, session, url_for

from evershell.access import sessions, signin
from evershell.access.authkit import identity_provider
from evershell.access.web import clear_session_cookie, set_session_cookie
from evershell.core.db import declare_writes
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.orgs.models import Org

blp = Blueprint("access_views", __name__)
auth = Blueprint("auth", __name__, url_prefix="/auth")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.home")


def _sign_in_page(error: str | None = None, status: int = 200):
    idp = identity_provider()
    next_path = request.args.get("next")
    invitation = invitation_link = None
    if "invitation" in request.args:
        from evershell.members.services import invitation_preview  # members import access
        invitation = invitation_preview(request.args.get("invitation"))
        invitation_link = True
    login_args = {"next": next_path} if next_path else {}
    if invitation:
        login_args["login_hint"] = invitation["email"]
    response = render_template(
        "access/sign_in.html", idp_name="AuthKit" if not idp.is_local else "local sign-in",
        idp_is_local=idp.is_local, login_url=url_for("auth.login", **login_args),
        error=error, invitation=invitation, invitation_link=invitation_link)
    headers = {}
    if invitation_link:
        # The link's id is its secret: not in caches, nor in a Referer to the sign-in
        # provider.
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return response, status, headers


PENDING_TTL = 600  # seconds to choose an org after the code exchange


def store_pending(authenticated: signin.Authenticated, next_path: str) -> None:
    """Keep a finished sign-in while the person picks an org; sealed, since it holds tokens."""
    session["auth_pending"] = sessions.seal_pending({
        "user_id": authenticated.user.id, "at": authenticated.access_token,
        "rt": authenticated.refresh_token, "sid": authenticated.idp_session_id,
        "next": next_path, "exp": time.time() + PENDING_TTL})


def load_pending() -> tuple[signin.Authenticated, str] | None:
    from evershell.access.models import User
    payload = sessions.unseal_pending(session.get("auth_pending") or "")
    if not payload or payload.get("exp", 0) < time.time():
        return None
    user = db.session.get(User, payload["user_id"])
    if user is None:
        return None
    return signin.Authenticated(user, payload["at"], payload["rt"], payload["sid"], None), \
        payload["next"]


@blp.get("/sign-in")
def sign_in():
    return _sign_in_page()


@auth.get("/login")
def login():
    start = signin.begin(url_for("auth.callback", _external=True),
                         login_hint=request.args.get("login_hint"))
    session["auth_flow"] = {"state": start.state, "verifier": start.verifier,
                            "next": _safe_next(request.args.get("next"))}
    return redirect(start.url)


@auth.get("/callback")
def callback():
    declare_writes(db.session)  # signs a user in: users, invitations, audit
    flow = session.pop("auth_flow", None)
    if request.args.get("error"):
        return _sign_in_page(f"Sign-in was not completed: "
                             f"{request.args.get('error_description') or request.args['error']}",
                             400)
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not flow or not state or not hmac.compare_digest(state, flow["state"]) or not code:
        return _sign_in_page("That sign-in link has expired or was not started here; "
                             "please sign in again.", 400)
    try:
        authenticated = signin.complete(code, flow["verifier"])
        org = signin.pick_org(authenticated)
        if org is None:
            db.session.commit()  # keep the user (and claimed invitations)
            orgs = signin.orgs_of(authenticated.user)
            if not orgs:
                return render_template("access/no_membership.html",
                                       email=authenticated.user.email), 403
            store_pending(authenticated, flow["next"])
            return render_template("access/choose_org.html", orgs=orgs)
        cookie = signin.start_session(authenticated, org)
        db.session.commit()
    except EvershellError as exc:
        db.session.rollback()
        return _sign_in_page(exc.message, exc.status if exc.status < 500 else 502)
    response = redirect(flow["next"])
    set_session_cookie(response, cookie)
    return response


@auth.post("/choose-org")
def choose_org():
    pending = load_pending()
    if pending is None:
        return _sign_in_page("Your sign-in has expired; please sign in again.", 400)
    authenticated, next_path = pending
    org = db.session.get(Org, request.form.get("org_id", ""))
    try:
        if org is None:
            raise EvershellError("permission_denied", "Choose one of your organisations.", 403)
        cookie = signin.start_session(authenticated, org)
        db.session.commit()
    except EvershellError as exc:
        db.session.rollback()
        return render_template("access/choose_org.html", error=exc.message,
                               orgs=signin.orgs_of(authenticated.user)), exc.status
    session.pop("auth_pending", None)
    response = redirect(next_path)
    set_session_cookie(response, cookie)
    return response


@auth.route("/logout", methods=["GET", "POST"])
def logout():
    declare_writes(db.session)  # a GET may end the session row
    value = request.cookies.get(sessions.COOKIE_NAME)
    idp_session_id = None
    if value:
        try:
            state = sessions.load(value)
            idp_session_id = signin.end_session(state.session)
            db.session.commit()
        except EvershellError:
            db.session.rollback()  # already over: just clear the cookie
    signed_out = url_for("access_views.sign_in", _external=True)
    target = identity_provider().logout_url(idp_session_id, signed_out) \
        if idp_session_id else signed_out
    response = redirect(target)
    clear_session_cookie(response)
    return response
