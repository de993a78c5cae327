"""``/v1/secrets``."""

from evershell.core.api import Blueprint

blp = Blueprint("secrets", __name__, url_prefix="/v1/secrets",
                description="Secrets: org-wide named values; no read ever returns a value.")
credentials_blp = Blueprint("credentials", __name__, url_prefix="/v1/credentials",
                            description="Credentials: connection material for external systems.")
