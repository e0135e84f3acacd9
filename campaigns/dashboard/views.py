"""Dashboard pages."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from campaigns import selectors


@login_required
def home(request):
    organizations = selectors.organization_list_for_user(user=request.user)
    return render(request, "dashboard/home.html", {"organizations": organizations})
