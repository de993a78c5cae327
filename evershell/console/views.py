"""Console entry point: the signed-in home page."""

from flask import Blueprint, render_template

from evershell.access.web import console_page
from evershell.console.nav import nav_items

blp = Blueprint("console", __name__)


@blp.get("/")
@console_page()
def home():
    return render_template("console/home.html", sections=nav_items())
