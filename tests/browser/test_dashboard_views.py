"""The dashboard's views without a browser: scoping, roles, final decisions, forms, languages."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns import services
from campaigns.dashboard.forms import format_sizes, parse_attributes
from campaigns.models import Campaign, Clip, Job, Membership, Review
from tests import factories

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def org():
    return factories.OrganizationFactory(name="Trailhead")


def user_in(org, role=Membership.Role.ADMIN, **fields):
    user = factories.UserFactory(**fields)
    services.membership_set(user=user, organization=org, role=role)
    return user


@pytest.fixture
def admin_client(client, org):
    client.force_login(user_in(org))
    return client


def test_pages_need_a_sign_in(client):
    response = client.get(reverse("dashboard:brand-list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_every_page_renders(admin_client, org):
    brand = factories.BrandFactory(organization=org)
    campaign = factories.CampaignFactory(brand=brand)
    segment = factories.SegmentFactory(campaign=campaign, name="Hikers")
    factories.ClipFactory(campaign=campaign, segment=segment)
    factories.JobFactory(organization=org, kind=Job.Kind.GENERATE_CLIPS, campaign=campaign)
    for name, kwargs in [("home", {}), ("brand-list", {}), ("brand-create", {}), ("brand-detail", {"brand_id": brand.pk}),
                         ("campaign-list", {}), ("campaign-create", {}), ("campaign-detail", {"campaign_id": campaign.pk}),
                         ("review-queue", {}), ("review-audit", {}), ("job-list", {})]:
        response = admin_client.get(reverse(f"dashboard:{name}", kwargs=kwargs))
        assert response.status_code == 200, name


def test_another_organizations_objects_are_404(admin_client, org):
    other = factories.OrganizationFactory()
    brand = factories.BrandFactory(organization=other)
    campaign = factories.CampaignFactory(brand=brand)
    clip = factories.ClipFactory(campaign=campaign)
    job = factories.JobFactory(organization=other)
    for url in [reverse("dashboard:brand-detail", args=[brand.pk]),
                reverse("dashboard:campaign-detail", args=[campaign.pk]),
                reverse("dashboard:brand-training", args=[brand.pk]) + "?fragment=1"]:
        assert admin_client.get(url).status_code == 404, url
    for url in [reverse("dashboard:review-decide", args=[clip.pk]), reverse("dashboard:job-cancel", args=[job.pk]),
                reverse("dashboard:asset-upload", args=[brand.pk]), reverse("dashboard:brand-train", args=[brand.pk])]:
        assert admin_client.post(url, {"decision": "approve"}).status_code == 404, url
    assert Clip.objects.get(pk=clip.pk).status == Clip.Status.PENDING_REVIEW
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED


def test_switching_organization(client, org):
    user = user_in(org)
    second = factories.OrganizationFactory(name="Zeta Org")  # sorts after: the first is current
    services.membership_set(user=user, organization=second, role=Membership.Role.MARKETER)
    mine = factories.BrandFactory(organization=org, name="First brand")
    theirs = factories.BrandFactory(organization=second, name="Second brand")
    stranger = factories.OrganizationFactory()
    client.force_login(user)
    page = client.get(reverse("dashboard:brand-list")).content.decode()
    assert 'id="org-switch"' in page and "First brand" in page and "Second brand" not in page

    assert client.post(reverse("dashboard:org-switch"), {"organization": second.pk}).status_code == 302
    page = client.get(reverse("dashboard:brand-list")).content.decode()
    assert "Second brand" in page and "First brand" not in page
    assert client.get(reverse("dashboard:brand-detail", args=[mine.pk])).status_code == 404
    assert client.get(reverse("dashboard:brand-detail", args=[theirs.pk])).status_code == 200
    assert client.post(reverse("dashboard:org-switch"), {"organization": stranger.pk}).status_code == 400


def test_a_user_without_organization_is_told_so(client):
    client.force_login(factories.UserFactory())
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 403 and b"no organization" in response.content


def test_a_decision_is_final_and_names_who_decided(client, org):
    reviewer = user_in(org, Membership.Role.REVIEWER, username="rita")
    clip = factories.ClipFactory(campaign=factories.CampaignFactory(brand__organization=org))
    client.force_login(reviewer)
    url = reverse("dashboard:review-decide", args=[clip.pk])
    first = client.post(url, {"decision": "approve", "note": "on brand"}, **JSON)
    assert first.status_code == 200 and first.json()["clip"]["status"] == "approved"

    again = client.post(url, {"decision": "reject", "note": "changed my mind"}, **JSON)
    assert again.status_code == 409
    assert "already approved by rita" in again.json()["error"]["message"]
    page = client.post(url, {"decision": "reject"})  # the form without JavaScript
    assert page.status_code == 409 and "already approved by rita" in page.content.decode()
    assert list(Review.objects.filter(clip=clip).values_list("decision", "note")) == [("approve", "on brand")]


def test_only_reviewers_and_admins_decide(client, org):
    marketer = user_in(org, Membership.Role.MARKETER)
    clip = factories.ClipFactory(campaign=factories.CampaignFactory(brand__organization=org))
    client.force_login(marketer)
    queue = client.get(reverse("dashboard:review-queue")).content.decode()
    assert "data-review-form" not in queue and "Only reviewers and admins" in queue
    response = client.post(reverse("dashboard:review-decide", args=[clip.pk]), {"decision": "approve"}, **JSON)
    assert response.status_code == 403
    assert "only reviewers and admins" in response.json()["error"]["message"]
    assert Clip.objects.get(pk=clip.pk).status == Clip.Status.PENDING_REVIEW


def test_reviewing_ones_own_campaign_can_be_forbidden(client, org, settings):
    settings.REVIEW_FORBID_OWN_CAMPAIGN = True
    admin = user_in(org)
    clip = factories.ClipFactory(campaign=factories.CampaignFactory(brand__organization=org, created_by=admin))
    client.force_login(admin)
    response = client.post(reverse("dashboard:review-decide", args=[clip.pk]), {"decision": "approve"})
    assert response.status_code == 403
    assert "your own campaign" in response.content.decode()


def test_bulk_approve(admin_client, org):
    campaign = factories.CampaignFactory(brand__organization=org)
    clips = [factories.ClipFactory(campaign=campaign) for _ in range(3)]
    decided = factories.ClipFactory(campaign=campaign, status=Clip.Status.REJECTED)
    response = admin_client.post(reverse("dashboard:review-bulk"),
                                 {"clips": [c.pk for c in clips[:2]] + [decided.pk], "note": "batch"}, follow=True)
    page = response.content.decode()
    assert "Approved 2 clips." in page and f"#{decided.pk}:" in page
    assert [Clip.objects.get(pk=c.pk).status for c in clips] == ["approved", "approved", "pending_review"]


def test_audit_trail_lists_every_decision(admin_client, org):
    campaign = factories.CampaignFactory(brand__organization=org, name="Spring")
    for decision in ("approve", "reject"):
        services.clip_review(clip=factories.ClipFactory(campaign=campaign), decision=decision, note=f"note {decision}",
                             user=Membership.objects.get(organization=org).user)
    page = admin_client.get(reverse("dashboard:review-audit")).content.decode()
    assert "note approve" in page and "note reject" in page
    only = admin_client.get(reverse("dashboard:review-audit") + "?decision=reject").content.decode()
    assert "note reject" in only and "note approve" not in only


def test_format_presets_fit_the_model():
    spec = services.model_spec()
    sizes = format_sizes(spec)
    m = spec.family.size_multiple
    long_side = max(spec.defaults["width"], spec.defaults["height"])
    assert sizes["feed"] == (long_side, long_side)
    assert sizes["story"][1] == long_side and sizes["story"][0] < long_side
    assert sizes["landscape"] == tuple(reversed(sizes["story"]))
    for width, height in sizes.values():
        assert width % m == 0 and height % m == 0
        assert not spec.family.validate(num_frames=spec.defaults["num_frames"], width=width, height=height)


def test_attributes_as_marketers_type_them():
    assert parse_attributes("interests: hiking, camping; style: minimal") == {
        "interests": ["hiking", "camping"], "style": "minimal"}
    assert parse_attributes("興趣：登山、露營；風格：簡約") == {"興趣": ["登山", "露營"], "風格": "簡約"}
    assert parse_attributes('{"age": [18, 24]}') == {"age": [18, 24]}
    assert parse_attributes("") == {}


def test_create_campaign_with_chinese_brief_and_segments(admin_client, org):
    brand = factories.BrandFactory(organization=org)
    response = admin_client.post(reverse("dashboard:campaign-create"), {
        "name": "夏季", "brand": brand.pk, "brief": "夏季登山鞋特賣，陽光步道", "format": "custom",
        "width": 64, "height": 64, "num_frames": 9, "fps": 8, "segment_mode": "define",
        "segment_name": ["登山客", "City", ""], "segment_attributes": ["興趣：登山、露營", "style: urban", ""],
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(organization=org)
    assert campaign.brief == "夏季登山鞋特賣，陽光步道" and (campaign.width, campaign.height) == (64, 64)
    assert [(s.name, s.attributes) for s in campaign.segments.all()] == [
        ("登山客", {"興趣": ["登山", "露營"]}), ("City", {"style": "urban"})]


def test_campaign_form_shows_what_the_model_allows(admin_client, org):
    brand = factories.BrandFactory(organization=org)
    response = admin_client.post(reverse("dashboard:campaign-create"), {
        "name": "Bad", "brand": brand.pk, "brief": "x", "format": "custom", "width": 65, "height": 64,
        "num_frames": 10, "fps": 8, "segment_mode": "define"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "num_frames must be 4k+1" in page and "width must be a multiple of 16" in page
    assert not Campaign.objects.exists()


def test_upload_errors_name_what_is_allowed(admin_client, org):
    brand = factories.BrandFactory(organization=org)
    bad = SimpleUploadedFile("notes.png", b"this is not an image", content_type="image/png")
    response = admin_client.post(reverse("dashboard:asset-upload", args=[brand.pk]), {"file": bad}, **JSON)
    assert response.status_code == 415
    assert "PNG, JPEG or WebP images and MP4 clips" in response.json()["error"]["message"]


def test_training_without_assets_says_why(admin_client, org):
    brand = factories.BrandFactory(organization=org)
    response = admin_client.post(reverse("dashboard:brand-train", args=[brand.pk]), follow=True)
    assert "no assets to learn from" in response.content.decode()
    assert not Job.objects.exists()


def test_cancel_a_job(admin_client, org):
    job = factories.JobFactory(organization=org, kind=Job.Kind.TRAIN_LORA)
    admin_client.post(reverse("dashboard:job-cancel", args=[job.pk]))
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    again = admin_client.post(reverse("dashboard:job-cancel", args=[job.pk]), follow=True)
    assert "already cancelled" in again.content.decode()


def test_job_table_polls_only_while_something_runs(admin_client, org):
    job = factories.JobFactory(organization=org, kind=Job.Kind.GENERATE_CLIPS, status=Job.Status.RUNNING, progress=0.4)
    fragment = admin_client.get(reverse("dashboard:job-list"), HTTP_X_FRAGMENT="1").content.decode()
    assert fragment.lstrip().startswith('<div class="card" id="jobs" data-poll=') and "40%" in fragment
    job.status = Job.Status.SUCCEEDED
    job.save()
    fragment = admin_client.get(reverse("dashboard:job-list"), HTTP_X_FRAGMENT="1").content.decode()
    assert "data-poll" not in fragment


def test_stats_per_clip_and_segment(admin_client, org):
    campaign = factories.CampaignFactory(brand__organization=org)
    segment = factories.SegmentFactory(campaign=campaign, name="Hikers")
    factories.ClipFactory(campaign=campaign, segment=segment, status=Clip.Status.APPROVED, impressions=200, clicks=10)
    page = admin_client.get(reverse("dashboard:campaign-detail", args=[campaign.pk])).content.decode()
    assert "5.0%" in page and "10/200" in page


def test_traditional_chinese_from_the_browser_language(admin_client):
    page = admin_client.get(reverse("dashboard:home"), HTTP_ACCEPT_LANGUAGE="zh-TW,zh;q=0.9").content.decode()
    assert 'lang="zh-Hant"' in page and "品牌" in page and "審核" in page


def test_a_clip_shows_while_it_is_checked_then_its_poster(admin_client, org, s3_client):
    from campaigns.models import BrandAsset
    from campaigns.services.asset_checks import asset_check
    from tests.helpers import mp4_bytes

    brand = factories.BrandFactory(organization=org)
    clip = SimpleUploadedFile("trail.mp4", mp4_bytes(9, size=(64, 48)), content_type="video/mp4")
    response = admin_client.post(reverse("dashboard:asset-upload", args=[brand.pk]), {"file": clip}, **JSON)
    assert response.status_code == 201, response.content
    assert (response.json()["asset"]["status"], response.json()["asset"]["status_label"]) == ("processing", "Being checked")

    grid_url = reverse("dashboard:brand-assets", args=[brand.pk])
    page = admin_client.get(reverse("dashboard:brand-detail", args=[brand.pk])).content.decode()
    assert f'data-poll="{grid_url}" data-reload-when-done' in page  # training waits for it: reload when done
    assert "Being checked" in page and "training opens when one is ready" in page

    asset = BrandAsset.objects.get()
    assert asset_check(asset_id=asset.pk) == "ready"
    grid = admin_client.get(grid_url, HTTP_X_FRAGMENT="1").content.decode()
    assert grid.lstrip().startswith('<div id="asset-grid"') and "data-poll" not in grid
    assert 'poster="' in grid and "Being checked" not in grid
    assert admin_client.get(grid_url).status_code == 302  # not a fragment request: the brand page
