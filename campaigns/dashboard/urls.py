"""Dashboard URLs."""
from django.urls import path

from campaigns.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
]
