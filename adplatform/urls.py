"""Top-level URLs: health and metrics, the API under /api/v1/, the dashboard, the admin, and signed local media."""
from django.contrib import admin
from django.urls import include, path

from adplatform.health import ReadinessView, liveness_view
from adplatform.metrics import metrics_view
from campaigns.files import signed_media_view
from campaigns.recipient_pages import recipient_cta, recipient_page

urlpatterns = [
    # Operations (answered first by adplatform.ops.OpsEndpointsMiddleware; README "Health and metrics").
    path("healthz", liveness_view, name="healthz"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(("campaigns.api.urls", "api"))),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("files/<str:token>", signed_media_view, name="signed-file"),
    # A recipient's personal landing page and its call to action: no login, the token is the key.
    path("p/<str:token>", recipient_page, name="recipient-page"),
    path("p/<str:token>/go", recipient_cta, name="recipient-cta"),
    path("", include("campaigns.dashboard.urls")),
]

handler400 = "campaigns.api.errors.bad_request_view"
handler404 = "campaigns.api.errors.not_found_view"
handler500 = "campaigns.api.errors.server_error_view"
