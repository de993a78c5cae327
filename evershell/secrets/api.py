"""``/v1/secrets`` and ``/v1/credentials``: write-only values; reads return metadata."""

from flask.views import MethodView

from evershell.access.principal import current_principal
from evershell.access.routes import Billing, declare
from evershell.access.scopes import Scope
from evershell.core.api import Blueprint, ErrorSchema
from evershell.core.errors import ErrorCode as E
from evershell.core.pagination import page_schema
from evershell.secrets import credentials as credential_services
from evershell.secrets import crypto
from evershell.secrets import services as secret_services
from evershell.secrets.schemas import (
    CredentialCreateSchema,
    CredentialListArgsSchema,
    CredentialSchema,
    CredentialUpdateSchema,
    SecretCreateSchema,
    SecretListArgsSchema,
    SecretSchema,
    SecretUpdateSchema,
)

blp = Blueprint("secrets", __name__, url_prefix="/v1/secrets",
                description="Secrets: org-wide named values; no read ever returns a value.")
credentials_blp = Blueprint("credentials", __name__, url_prefix="/v1/credentials",
                            description="Credentials: connection material for external systems.")
# A malformed EVERSHELL_SECRETS_KEYS stops the app at start-up, not at the first secret.
blp.record_once(lambda state: crypto.check_configuration(state.app))

S = Scope
CRED_READ = (S.CREDENTIALS_READ, S.CREDENTIALS_READ_OWN)
CRED_WRITE = (S.CREDENTIALS_WRITE, S.CREDENTIALS_WRITE_OWN)
_400 = {"schema": ErrorSchema, "description": "validation_error (details.fields)"}
_404_SECRET = {"schema": ErrorSchema, "description": "secret_not_found"}
_409 = {"schema": ErrorSchema, "description": "name_taken"}


@blp.route("")
class Secrets(MethodView):
    @declare(S.SECRETS_READ, Billing.READ)
    @blp.arguments(SecretListArgsSchema, location="query")
    @blp.response(200, page_schema(SecretSchema, "SecretPage"))
    def get(self, args):
        """List the org's secrets (names and metadata; never a value)."""
        return secret_services.list_secrets(current_principal(), args["limit"],
                                            args["cursor"], name=args["name"])

    @declare(S.SECRETS_WRITE, Billing.CREATE, action="secret.create")
    @blp.arguments(SecretCreateSchema)
    @blp.response(201, SecretSchema)
    @blp.alt_response(400, **_400)
    @blp.alt_response(409, **_409)
    @blp.errors(E.NAME_TAKEN)
    def post(self, data):
        """Store a secret. The value is encrypted at rest and no route returns it again."""
        return secret_services.create(current_principal(), data["name"], data["value"],
                                      data["description"])


@blp.route("/<id:secret_id>")
class SecretById(MethodView):
    @declare(S.SECRETS_READ, Billing.READ)
    @blp.response(200, SecretSchema)
    @blp.alt_response(404, **_404_SECRET)
    @blp.errors(E.SECRET_NOT_FOUND)
    def get(self, secret_id):
        """Get one secret's metadata (never its value)."""
        return secret_services.get(current_principal(), secret_id)

    @declare(S.SECRETS_WRITE, Billing.CREATE, action="secret.update")
    @blp.arguments(SecretUpdateSchema)
    @blp.response(200, SecretSchema)
    @blp.alt_response(400, **_400)
    @blp.alt_response(404, **_404_SECRET)
    @blp.errors(E.SECRET_NOT_FOUND)
    def patch(self, data, secret_id):
        """Rotate the value (`value`; sets `last_rotated_at`) and/or change the
        description. Names do not change: roles and providers refer to them."""
        return secret_services.update(current_principal(), secret_id,
                                      description=data["description"], value=data["value"])

    @declare(S.SECRETS_WRITE, Billing.WIND_DOWN, action="secret.delete")
    @blp.response(200, SecretSchema)
    @blp.alt_response(404, **_404_SECRET)
    @blp.alt_response(409, schema=ErrorSchema,
                      description="secret_in_use: a provider's API key or a role's caps "
                                  "env refers to it (`details.providers`, "
                                  "`details.roles`: ids)")
    @blp.errors(E.SECRET_NOT_FOUND, E.SECRET_IN_USE)
    def delete(self, secret_id):
        """Delete a secret; answers with its metadata as it was."""
        return secret_services.delete(current_principal(), secret_id)


_404_CRED = {"schema": ErrorSchema, "description": "credential_not_found"}
_403_CRED = {"schema": ErrorSchema, "description": "permission_denied: another member's "
                                                   "credential, or an org-wide one, with "
                                                   "only the :own scopes"}


@credentials_blp.route("")
class Credentials(MethodView):
    @declare(CRED_READ, Billing.READ)
    @credentials_blp.arguments(CredentialListArgsSchema, location="query")
    @credentials_blp.response(200, page_schema(CredentialSchema, "CredentialPage"))
    def get(self, args):
        """List credentials: your own (`credentials:read:own`), or every member's and the
        org-wide ones (`credentials:read`). Never the material."""
        return credential_services.list_credentials(
            current_principal(), args["limit"], args["cursor"], scope=args["scope"],
            kind=args["kind"], name=args["name"])

    @declare(CRED_WRITE, Billing.CREATE, action="credential.create")
    @credentials_blp.arguments(CredentialCreateSchema)
    @credentials_blp.response(201, CredentialSchema)
    @credentials_blp.alt_response(400, **_400)
    @credentials_blp.alt_response(403, **_403_CRED)
    @credentials_blp.alt_response(409, **_409)
    @credentials_blp.errors(E.NAME_TAKEN)
    def post(self, data):
        """Create a credential: `scope` `user` (yours; a task you submit uses it before an
        org-wide one of the same name) or `org` (needs `credentials:write`)."""
        return credential_services.create(
            current_principal(), data["name"], data["kind"], data["material"],
            scope=data["scope"], description=data["description"])


@credentials_blp.route("/<id:credential_id>")
class CredentialById(MethodView):
    @declare(CRED_READ, Billing.READ)
    @credentials_blp.response(200, CredentialSchema)
    @credentials_blp.alt_response(403, **_403_CRED)
    @credentials_blp.alt_response(404, **_404_CRED)
    @credentials_blp.errors(E.CREDENTIAL_NOT_FOUND)
    def get(self, credential_id):
        """Get one credential's metadata (never its material)."""
        return credential_services.get(current_principal(), credential_id)

    @declare(CRED_WRITE, Billing.CREATE, action="credential.update")
    @credentials_blp.arguments(CredentialUpdateSchema)
    @credentials_blp.response(200, CredentialSchema)
    @credentials_blp.alt_response(400, **_400)
    @credentials_blp.alt_response(403, **_403_CRED)
    @credentials_blp.alt_response(404, **_404_CRED)
    @credentials_blp.alt_response(409, **_409)
    @credentials_blp.errors(E.CREDENTIAL_NOT_FOUND, E.NAME_TAKEN)
    def patch(self, data, credential_id):
        """Rotate (`material`: the kind's fields afresh; sets `last_rotated_at`), rename
        or redescribe. The kind does not change: make a new credential instead."""
        return credential_services.update(
            current_principal(), credential_id, name=data["name"],
            description=data["description"], material=data["material"])

    @declare(CRED_WRITE, Billing.WIND_DOWN, action="credential.delete")
    @credentials_blp.response(200, CredentialSchema)
    @credentials_blp.alt_response(403, **_403_CRED)
    @credentials_blp.alt_response(404, **_404_CRED)
    @credentials_blp.errors(E.CREDENTIAL_NOT_FOUND)
    def delete(self, credential_id):
        """Delete a credential; answers with its metadata as it was."""
        return credential_services.delete(current_principal(), credential_id)
