"""Console entry point. Signed-in pages register themselves with their domains."""

from flask import Blueprint, redirect, url_for

blp = Blueprint("console", __name__)


@blp.get("/")
def home():
    # Until a session exists every visit starts at sign-in.
    return redirect(url_for("access_views.sign_in"))
