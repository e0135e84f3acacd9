"""Brands: create and edit, upload assets, train the brand's style (LoRA) and watch it learn."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import selectors, services
from campaigns.dashboard.charts import loss_chart
from campaigns.dashboard.context import (
    error_json,
    error_message,
    form_add_service_errors,
    form_start_work,
    live_panel,
    org_view,
    wants_json,
)
from campaigns.dashboard.forms import BrandForm, TrainForm
from campaigns.errors import ServiceError, error_body
from campaigns.files import signed_url
from campaigns.models import BrandAsset, Job



@org_view
def brand_list(request):
    brands = selectors.brand_list(organization=request.organization).annotate(
        asset_count=Count("assets", distinct=True), campaign_count=Count("campaigns", distinct=True))
    return render(request, "dashboard/brands/list.html", {"brands": brands})


@org_view
def brand_create(request):
    form = BrandForm(request.POST or None, palette=["#4338CA", "#F59E0B", "#FFFFFF"])
    if request.method == "POST" and form.is_valid():
        try:
            brand = services.brand_create(organization=request.organization, name=form.cleaned_data["name"],
                                          palette=form.cleaned_data["palette"],
                                          style_notes=form.cleaned_data["style_notes"])
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Brand “%(name)s” created. Upload a few assets next.") % {"name": brand.name})
            return redirect("dashboard:brand-detail", brand_id=brand.pk)
    return render(request, "dashboard/brands/create.html", {"form": form}, status=400 if form.errors else 200)


def _asset_view(asset: BrandAsset, request) -> dict:
    url, _expires = signed_url(asset.file.name, request=request)
    poster = signed_url(asset.poster.name, request=request)[0] if asset.poster else ""
    return {"asset": asset, "url": url, "poster": poster}


def _training_context(request, brand, asset_states: dict | None = None) -> dict:
    job = selectors.job_list(organization=request.organization).filter(brand=brand, kind=Job.Kind.TRAIN_LORA).first()
    loras = list(selectors.lora_list_for_brand(brand=brand).select_related("job"))
    shown = next((lora for lora in loras if job and lora.job_id == job.pk), loras[0] if loras else None)
    live = None
    if job and not job.is_finished and {"step", "total", "loss"} <= set(job.progress_data or {}):
        live = {key: job.progress_data[key] for key in ("step", "total", "loss")}
    return {
        "brand": brand,
        "job": job,
        "live": live,
        "shown_lora": shown,
        "chart": loss_chart((shown.metrics or {}).get("losses", [])) if shown else None,
        "loras": loras,
        **(asset_states or _asset_states(brand)),
        "train_form": TrainForm(),
    }


def _asset_states(brand) -> dict:
    """Whether training has a ready asset to learn from, and whether clips are still being checked."""
    statuses = set(selectors.asset_list_for_brand(brand=brand).order_by().values_list("status", flat=True).distinct())
    return {"has_assets": BrandAsset.Status.READY in statuses, "checking_assets": BrandAsset.Status.PROCESSING in statuses}


def _assets_context(request, brand, asset_states: dict | None = None) -> dict:
    return {
        "brand": brand,
        "assets": [_asset_view(a, request) for a in selectors.asset_list_for_brand(brand=brand)],
        **(asset_states or _asset_states(brand)),
    }


def _detail(request, brand, *, form=None, train_form=None, status=200):
    states = _asset_states(brand)  # read once for both panels
    context = {
        "form": form or BrandForm(initial={"name": brand.name, "style_notes": brand.style_notes},
                                  palette=list(brand.palette)),
        **_assets_context(request, brand, states),
        "campaigns": selectors.campaign_list(organization=request.organization).filter(brand=brand)[:10],
        **_training_context(request, brand, states),
    }
    if train_form is not None:
        context["train_form"] = train_form
    return render(request, "dashboard/brands/detail.html", context, status=status)


@require_GET
@org_view
def brand_detail(request, brand_id):
    brand = selectors.brand_get(organization=request.organization, brand_id=brand_id)
    return _detail(request, brand)


@require_POST
@org_view
def brand_edit(request, brand_id):
    brand = selectors.brand_get(organization=request.organization, brand_id=brand_id)
    form = BrandForm(request.POST, palette=list(brand.palette))
    if form.is_valid():
        try:
            services.brand_update(brand=brand, name=form.cleaned_data["name"], palette=form.cleaned_data["palette"],
                                  style_notes=form.cleaned_data["style_notes"])
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Brand saved."))
            return redirect("dashboard:brand-detail", brand_id=brand.pk)
    brand.refresh_from_db()
    return _detail(request, brand, form=form, status=400)


@require_POST
@org_view
def asset_upload(request, brand_id):
    """One file per request from the drop zone (JSON back), or many from the plain form."""
    brand = selectors.brand_get(organization=request.organization, brand_id=brand_id)
    files = request.FILES.getlist("files") or request.FILES.getlist("file")
    caption = request.POST.get("caption", "")
    if wants_json(request):
        if len(files) != 1:
            return JsonResponse(error_body("invalid", _("Send exactly one file.")), status=400)
        try:
            asset, created = services.asset_upload(brand=brand, upload=files[0], caption=caption)
        except (ServiceError, ValidationError) as exc:
            return error_json(exc)
        url, _expires = signed_url(asset.file.name, request=request)
        return JsonResponse({"asset": {"id": asset.pk, "kind": asset.kind, "width": asset.width,
                                       "height": asset.height, "url": url, "created": created,
                                       "status": asset.status, "status_label": asset.get_status_display(),
                                       "error": asset.error}},
                            status=201 if created else 200)
    if not files:
        messages.error(request, _("Choose at least one file to upload."))
    for upload in files:
        name = upload.name
        try:
            _asset, created = services.asset_upload(brand=brand, upload=upload, caption=caption)
        except (ServiceError, ValidationError) as exc:
            messages.error(request, f"{name}: {error_message(exc)}")
        else:
            messages.success(request, _("%(name)s uploaded.") % {"name": name} if created
                             else _("%(name)s was already uploaded.") % {"name": name})
    return redirect(reverse("dashboard:brand-detail", kwargs={"brand_id": brand.pk}) + "#assets")


@require_POST
@org_view
def asset_delete(request, brand_id, asset_id):
    brand = selectors.brand_get(organization=request.organization, brand_id=brand_id)
    asset = selectors.asset_list_for_brand(brand=brand).filter(pk=asset_id).first()
    if asset is None:
        from django.http import Http404

        raise Http404("no such asset")
    services.asset_delete(asset=asset)
    messages.success(request, _("Asset removed."))
    return redirect(reverse("dashboard:brand-detail", kwargs={"brand_id": brand.pk}) + "#assets")


@require_POST
@org_view
def brand_train(request, brand_id):
    brand = selectors.brand_get(organization=request.organization, brand_id=brand_id)
    form = TrainForm(request.POST)
    if not form.is_valid():
        return _detail(request, brand, train_form=form, status=400)
    options = {k: v for k, v in form.cleaned_data.items() if v is not None}
    if not form_start_work(request, form, lambda: services.brand_train(brand=brand, user=request.user, **options),
                           started=_("Training started. You can leave this page; it keeps going.")):
        return _detail(request, brand, train_form=form, status=400)
    return redirect(reverse("dashboard:brand-detail", kwargs={"brand_id": brand.pk}) + "#training")


@require_GET
@org_view
def brand_training(request, brand_id):
    """The training panel alone: what the live poller swaps in every second."""
    brand = selectors.brand_get(organization=request.organization, brand_id=brand_id)
    return live_panel(request, "dashboard/brands/_training.html", lambda: _training_context(request, brand),
                      page=reverse("dashboard:brand-detail", kwargs={"brand_id": brand.pk}) + "#training")


@require_GET
@org_view
def brand_assets(request, brand_id):
    """The asset grid alone: what the live poller swaps in while a clip is being checked."""
    brand = selectors.brand_get(organization=request.organization, brand_id=brand_id)
    return live_panel(request, "dashboard/brands/_assets.html", lambda: _assets_context(request, brand),
                      page=reverse("dashboard:brand-detail", kwargs={"brand_id": brand.pk}) + "#assets")
