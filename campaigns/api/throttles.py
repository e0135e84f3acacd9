"""Rate limits per API key (DRF's throttling on the cache), answered 429 with Retry-After."""
from rest_framework.throttling import SimpleRateThrottle

from campaigns.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
