"""Who is asking and for which organization: every dashboard view runs inside one organization.

The current organization is kept in the session; a user with several memberships switches it in
the header. ``org_view`` resolves it (or shows the "no organization" page) and puts it on the
request, so views pass ``request.organization`` to every selector and service.
"""
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render

from campaigns import selectors
from campaigns.errors import ServiceError, error_payload
from campaigns.models import Membership

SESSION_KEY = "dashboard_org_id"
DECIDER_ROLES = {Membership.Role.REVIEWER, Membership.Role.ADMIN}


def org_view(view):
    """login_required + the current organization and membership on the request."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        organizations = list(selectors.organization_list_for_user(user=request.user))
        if not organizations:
            return render(request, "dashboard/no_organization.html", status=403)
        wanted = request.session.get(SESSION_KEY)
        organization = next((o for o in organizations if o.pk == wanted), organizations[0])
        request.session[SESSION_KEY] = organization.pk
        request.organization = organization
        request.organizations = organizations
        request.membership = selectors.membership_get(user=request.user, organization=organization)
        request.can_decide = request.membership is not None and request.membership.role in DECIDER_ROLES
        if not is_fragment(request):
            request.pending_count = selectors.clip_list_pending(organization=organization).count()
        return view(request, *args, **kwargs)

    return wrapper


def wants_json(request) -> bool:
    """Fetch calls from the dashboard's script ask for JSON; plain form posts get pages."""
    return "application/json" in request.headers.get("Accept", "")


def is_fragment(request) -> bool:
    """The live poller asks for the fragment of a page, not the whole page."""
    return request.headers.get("X-Fragment") == "1" or request.GET.get("fragment") == "1"


def live_panel(request, template: str, context, *, page: str):
    """A live panel alone, for the poller (``context``: a callable, run only then); any other request
    for it goes to ``page``, the URL of the page that holds the panel."""
    if not is_fragment(request):
        return redirect(page)
    return render(request, template, context())


def error_message(exc: Exception) -> str:
    """The one sentence a person reads for a refused action; services write them to be shown as-is."""
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return " ".join(f"{msg}" for msgs in exc.message_dict.values() for msg in msgs)
        return " ".join(exc.messages)
    if isinstance(exc, PermissionDenied):
        return str(exc) or "You are not allowed to do this."
    return str(exc)


def error_status(exc: Exception) -> int:
    return error_payload(exc)[0]


def error_json(exc: Exception) -> JsonResponse:
    """The API's error envelope (campaigns.errors.error_payload) for the dashboard's fetch calls."""
    status, body = error_payload(exc)
    return JsonResponse(body, status=status)


def form_add_service_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: its fields where the form has them, else on top."""
    if hasattr(exc, "error_dict"):
        for field, texts in exc.message_dict.items():
            for message in texts:
                form.add_error(field if field in form.fields else None, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def form_start_work(request, form, start, *, started: str) -> bool:
    """Call ``start()``, a service that queues work for a valid form. False when the service named
    a field (its errors are now on the form: show it again, 400); else True, with a message that
    says the work started or why it was refused."""
    try:
        start()
    except ValidationError as exc:
        form_add_service_errors(form, exc)
        return False
    except (ServiceError, PermissionDenied) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, started)
    return True
