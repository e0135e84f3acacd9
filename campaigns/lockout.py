"""The page a locked-out sign-in gets (django-axes' AXES_LOCKOUT_CALLABLE), dashboard and admin alike."""
from django.conf import settings
from django.shortcuts import render


def lockout_response(request, *args):
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return render(request, "registration/locked_out.html",
                  {"failure_limit": settings.AXES_FAILURE_LIMIT, "lockout_minutes": minutes}, status=429)
