"""``/v1/roles``."""

from evershell.core.api import Blueprint

blp = Blueprint("roles", __name__, url_prefix="/v1/roles", description="Agent roles, versioned.")
capabilities_blp = Blueprint("capabilities", __name__, url_prefix="/v1/capabilities",
                             description="The tools and limits a caps.yaml may name.")
