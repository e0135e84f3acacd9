"""Top-level URLs: the API under /api/v1/, the dashboard, the admin, and signed local media."""
from django.contrib import admin
from django.urls import include, path

from campaigns.files import signed_media_view

urlpatterns = [
    path("api/v1/", include(("campaigns.api.urls", "api"))),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("files/<str:token>", signed_media_view, name="signed-file"),
    path("", include("campaigns.dashboard.urls")),
]

handler400 = "campaigns.api.errors.bad_request_view"
handler404 = "campaigns.api.errors.not_found_view"
handler500 = "campaigns.api.errors.server_error_view"
