"""`Authorization: Api-Key <key>` authentication and the serve/manage scope permissions."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from campaigns import services
from campaigns.models import ApiKey


class ApiKeyUser:
    """Stands in for request.user: an API key acts for its organization, not for a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.organization = api_key.organization
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword != self.keyword or not raw.strip():
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Api-Key <key>'.", code="authentication_failed"
            )
        key = services.api_key_authenticate(raw_key=raw.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.", code="authentication_failed")
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when no key is given.
        return self.keyword


class _HasScope(permissions.BasePermission):
    scope = ""

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated("An API key is required: send 'Authorization: Api-Key <key>'.")
        if not key.has_scope(self.scope):
            raise exceptions.PermissionDenied(
                f"This API key lacks the '{self.scope}' scope (it has: {', '.join(key.scopes)})."
            )
        return True


class HasServeScope(_HasScope):
    scope = ApiKey.Scope.SERVE


class HasManageScope(_HasScope):
    scope = ApiKey.Scope.MANAGE


class HasAnyScope(_HasScope):
    """Any valid key: for reference data that both apps and marketers read (the presets)."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("An API key is required: send 'Authorization: Api-Key <key>'.")
        return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "campaigns.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; keys carry the scopes `serve` and/or `manage`.",
        }
