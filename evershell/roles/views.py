"""Console pages of roles."""

from flask import Blueprint

blp = Blueprint("roles_views", __name__, url_prefix="/settings/roles")
