"""URLs of API v1."""
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from campaigns.api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", authentication_classes=[], permission_classes=[]), name="docs"),
    path("brands", views.BrandCreateView.as_view(), name="brand-create"),
    path("brands/<int:brand_id>", views.BrandDetailView.as_view(), name="brand-detail"),
    path("jobs/<int:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
]
