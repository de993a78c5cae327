"""Console pages of identity and access."""

from flask import Blueprint, current_app, render_template

blp = Blueprint("access_views", __name__)


@blp.get("/sign-in")
def sign_in():
    login_endpoint = "auth.login"
    has_login = login_endpoint in current_app.view_functions
    return render_template(
        "access/sign_in.html",
        idp_name="AuthKit",
        idp_is_local=False,
        login_url="/auth/login" if has_login else None,
        idp_unavailable_reason="No identity provider is configured on this server yet.",
    )
