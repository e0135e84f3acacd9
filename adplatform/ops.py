"""The operations endpoints (adplatform/urls.py): /healthz (liveness), /readyz (readiness), /metrics.

Their callers reach a pod directly: the kubelet and Prometheus send the pod's address as Host and
speak plain HTTP. So a middleware that runs first answers these paths itself, past the ALLOWED_HOSTS
check and the HTTPS redirect that every other path gets. They are read-only, and /metrics needs its
token. Being first, they are also left out of the request logs and request metrics, which a probe
every few seconds would otherwise fill.
"""
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.urls import resolve

PATHS = ("/healthz", "/readyz", "/metrics")


class OpsEndpointsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info not in PATHS or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        match = resolve(request.path_info)
        view = async_to_sync(match.func) if iscoroutinefunction(match.func) else match.func
        return view(request, *match.args, **match.kwargs)
