"""Console pages of providers."""

from flask import Blueprint

blp = Blueprint("providers_views", __name__, url_prefix="/settings/providers")
