"""The clip page's Edit panel without a browser: each form queues its job, refusals show in the form."""
from unittest import mock

import pytest
from django.urls import reverse

from campaigns import services
from campaigns.models import Clip, Job, Membership
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return factories.OrganizationFactory(name="Trailhead")


@pytest.fixture
def admin_client(client, org):
    user = factories.UserFactory()
    services.membership_set(user=user, organization=org, role=Membership.Role.MARKETER)
    client.force_login(user)
    return client


@pytest.fixture
def campaign(org):
    campaign = factories.CampaignFactory(brand__organization=org, width=32, height=32, status="in_review")
    factories.SegmentFactory(campaign=campaign, name="Hikers", setting="mountain forest trail at dawn")
    factories.SegmentFactory(campaign=campaign, name="Commuters", setting="city street at night")
    return campaign


@pytest.fixture
def clip(campaign):
    return factories.ClipFactory(campaign=campaign, segment=campaign.segments.first(), width=32, height=32,
                                 status=Clip.Status.APPROVED)


def post(client, clip, kind, **fields):
    data = {"kind": kind, **{f"{kind}-{name}": value for name, value in fields.items()}}
    with mock.patch("adplatform.celery.app.send_task"):
        return client.post(reverse("dashboard:clip-edit", args=[clip.pk]), data)


def test_the_clip_page_has_the_edit_panel(admin_client, clip):
    page = admin_client.get(reverse("dashboard:clip-detail", args=[clip.pk])).content.decode()
    assert 'data-box-draw' in page and 'data-box="x0"' in page
    assert 'id="rescene-form"' in page and 'id="extend-form"' in page and 'id="loop-form"' in page
    assert "Every segment" in page and "mountain forest trail at dawn" in page
    # No other clip of this size yet: nothing to connect to, and the page says so.
    assert 'id="connect-form"' not in page and "No other clip of this size" in page


@pytest.mark.parametrize("kind,fields,job_kind,edit", [
    ("rescene", {"x0": 0.1, "y0": 0.2, "x1": 0.6, "y1": 0.9, "target": "all", "variants": 2},
     Job.Kind.RESCENE_CAMPAIGN, None),
    ("rescene", {"x0": 0.1, "y0": 0.2, "x1": 0.6, "y1": 0.9, "target": "prompt", "prompt": "a beach", "variants": 1},
     Job.Kind.EDIT_CLIP, {"kind": "rescene", "keep_box": [0.1, 0.2, 0.6, 0.9], "prompt": "a beach"}),
    ("extend", {"frames": 8, "direction": "backward", "variants": 1}, Job.Kind.EDIT_CLIP,
     {"kind": "extend", "frames": 8, "direction": "backward"}),
    ("loop", {"variants": 3}, Job.Kind.EDIT_CLIP, {"kind": "loop"}),
])
def test_each_form_queues_its_job_and_comes_back(admin_client, clip, kind, fields, job_kind, edit):
    response = post(admin_client, clip, kind, **fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"].endswith(reverse("dashboard:clip-detail", args=[clip.pk]) + "#edit-jobs")
    job = Job.objects.get()
    assert job.kind == job_kind and job.params["clip"] == clip.pk
    if edit:
        assert job.params["edit"] == edit and job.params["variants"] == fields["variants"]
    else:
        assert job.params["keep_box"] == [0.1, 0.2, 0.6, 0.9] and job.params["variants_per_segment"] == 2
    page = admin_client.get(response["Location"]).content.decode()
    assert f"job #{job.pk}" in page  # the message
    assert f'data-job="{job.pk}"' in page and "data-poll" in page  # the jobs panel, live


def test_rescene_into_one_segment_and_connect(admin_client, campaign, clip):
    commuters = campaign.segments.get(name="Commuters")
    other = factories.ClipFactory(campaign=campaign, width=32, height=32)
    assert post(admin_client, clip, "rescene", x0=0, y0=0, x1=0.5, y1=0.5, target=commuters.pk,
                variants=1).status_code == 302
    assert post(admin_client, clip, "connect", other_clip=other.pk, variants=1).status_code == 302
    edits = [j.params["edit"] for j in Job.objects.order_by("pk")]
    assert edits == [{"kind": "rescene", "keep_box": [0, 0, 0.5, 0.5], "segment": commuters.pk},
                     {"kind": "connect", "other_clip": other.pk}]


@pytest.mark.parametrize("kind,fields,message", [
    ("rescene", {"x0": 0.6, "y0": 0, "x1": 0.5, "y1": 1, "target": "all", "variants": 1}, "x0 &lt; x1"),
    ("rescene", {"x0": 0, "y0": 0, "x1": 1.5, "y1": 1, "target": "all", "variants": 1}, "less than or equal to 1"),
    ("rescene", {"x0": 0, "y0": 0, "x1": 1, "y1": 1, "target": "prompt", "variants": 1}, "Write the new scene"),
    ("rescene", {"x0": 0, "y0": 0, "x1": 1, "y1": 1, "target": "all", "prompt": "x", "variants": 1},
     "Every segment takes its own setting"),
    ("extend", {"frames": 0, "direction": "forward", "variants": 1}, "greater than or equal to 1"),
    ("extend", {"frames": 4, "direction": "sideways", "variants": 1}, "Select a valid choice"),
    ("loop", {"variants": 9}, "less than or equal to 8"),
])
def test_refusals_show_in_the_form(admin_client, clip, kind, fields, message):
    response = post(admin_client, clip, kind, **fields)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page and f'id="{kind}-form"' in page
    assert not Job.objects.exists()


def test_an_unapproved_clip_for_every_segment_is_refused_in_the_form(admin_client, campaign):
    pending = factories.ClipFactory(campaign=campaign, segment=campaign.segments.first(), width=32, height=32)
    response = post(admin_client, pending, "rescene", x0=0, y0=0, x1=1, y1=1, target="all", variants=1)
    assert response.status_code == 409
    assert "only an approved clip" in response.content.decode()
    assert not Job.objects.exists()


def test_a_rejected_clip_cannot_be_edited(admin_client, campaign):
    rejected = factories.ClipFactory(campaign=campaign, width=32, height=32, status=Clip.Status.REJECTED)
    page = admin_client.get(reverse("dashboard:clip-detail", args=[rejected.pk])).content.decode()
    assert "rejected clips cannot be edited" in page and 'id="loop-form"' not in page
    response = post(admin_client, rejected, "loop", variants=1)
    assert response.status_code == 409 and "rejected clips cannot be edited" in response.content.decode()


def test_another_organizations_clip_is_404(admin_client):
    foreign = factories.ClipFactory(campaign__brand__organization=factories.OrganizationFactory())
    assert admin_client.get(reverse("dashboard:clip-detail", args=[foreign.pk])).status_code == 404
    assert post(admin_client, foreign, "loop", variants=1).status_code == 404
    assert admin_client.get(reverse("dashboard:clip-edit-jobs", args=[foreign.pk]) + "?fragment=1").status_code == 404
    assert not Job.objects.exists()


def test_an_unknown_kind_goes_back_with_a_message(admin_client, clip):
    response = admin_client.post(reverse("dashboard:clip-edit", args=[clip.pk]), {"kind": "recolour"}, follow=True)
    assert response.status_code == 200 and "Choose an edit" in response.content.decode()


def test_the_campaign_page_shows_edits_under_their_parent(admin_client, campaign, clip):
    segment = clip.segment
    first_sibling = factories.ClipFactory(campaign=campaign, segment=segment, variant=0)
    loop = factories.ClipFactory(campaign=campaign, segment=segment, parent=clip, edit={"kind": "loop"}, variant=5)
    extended = factories.ClipFactory(campaign=campaign, segment=segment, parent=loop,
                                     edit={"kind": "extend", "frames": 4, "direction": "forward"}, variant=6)
    page = admin_client.get(reverse("dashboard:campaign-detail", args=[campaign.pk])).content.decode()
    order = [page.index(f'data-clip="{c.pk}"') for c in (clip, loop, extended)]
    assert order == sorted(order)  # parent, its edit, the edit's edit
    assert page.index(f'data-clip="{first_sibling.pk}"') < order[0] or page.index(
        f'data-clip="{first_sibling.pk}"') > order[2]  # nothing lands between a parent and its edits
    assert f'class="clip is-edit depth-1" data-clip="{loop.pk}"' in page
    assert f'class="clip is-edit depth-2" data-clip="{extended.pk}"' in page
    assert f"Loop of #{clip.pk}" in page and f"Extend of #{loop.pk}" in page
    assert reverse("dashboard:clip-detail", args=[clip.pk]) in page


def test_the_edit_jobs_panel_polls_while_a_job_runs(admin_client, clip):
    job = services.clip_edit(clip=clip, kind="loop", enqueue=False)
    url = reverse("dashboard:clip-edit-jobs", args=[clip.pk])
    fragment = admin_client.get(url, HTTP_X_FRAGMENT="1").content.decode()
    assert "data-poll" in fragment and f'data-job="{job.pk}"' in fragment
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, progress=1.0)
    assert "data-poll" not in admin_client.get(url, HTTP_X_FRAGMENT="1").content.decode()
    assert admin_client.get(url).status_code == 302  # not a fragment request: to the page


def test_the_panel_speaks_traditional_chinese(admin_client, clip):
    page = admin_client.get(reverse("dashboard:clip-detail", args=[clip.pk]),
                            HTTP_ACCEPT_LANGUAGE="zh-Hant").content.decode()
    assert "換場景" in page and "延長" in page and "循環" in page
