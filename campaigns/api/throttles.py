"""Rate limits per API key (DRF's throttling on the cache), answered 429 with Retry-After.

A fixed-window counter rather than DRF's default sliding log: DRF keeps every request's time in
one cached list, so at N allowed requests per window each request (un)pickles a list of up to N
floats (130 µs at 6,000/min, 1.6 ms at 60,000/min), which would be the most expensive part of
serving a clip. The counter costs one ``add`` and one ``incr`` whatever the rate; the price is that
a client can spend up to twice its rate across a window boundary.
"""
from rest_framework.throttling import SimpleRateThrottle

from campaigns.client_ip import client_ip
from campaigns.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        key = f"{self.key}:{window}"
        self.cache.add(key, 0, self.duration + 1)  # no-op when the window's counter exists
        try:
            count = self.cache.incr(key)
        except ValueError:  # the counter expired between add and incr
            self.cache.set(key, 1, self.duration + 1)
            count = 1
        self._window_end = (window + 1) * self.duration
        return count <= self.num_requests

    def get_ident(self, request) -> str:
        # DRF's own reads X-Forwarded-For whatever is in front: a client could pick its counter.
        return client_ip(request) or "unknown"

    def wait(self) -> float:
        # At least a second: DRF leaves Retry-After out when the wait rounds to 0.
        return max(1.0, self._window_end - self.now)


class AnonymousIpRateThrottle(ApiKeyRateThrottle):
    """Requests without a valid key, counted per client address (API_ANON_RATE_LIMIT).

    Authentication runs before DRF's throttles, so a request with no key or a bad one never reached
    them: the exception handler (campaigns/api/errors.py) counts each such refusal here and answers
    429 past the rate. A valid key is never refused for its address: it has its own limit.
    """

    scope = "anon_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
