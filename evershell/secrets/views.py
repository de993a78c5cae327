"""Console pages of secrets."""

from flask import Blueprint

blp = Blueprint("secrets_views", __name__, url_prefix="/settings/secrets")
credentials_blp = Blueprint("credentials_views", __name__, url_prefix="/settings/credentials")
