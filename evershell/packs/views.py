"""Console pages of packs."""

from flask import Blueprint

blp = Blueprint("packs_views", __name__, url_prefix="/settings/packs")
