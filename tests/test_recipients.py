"""Recipients in bulk and a page per recipient: the CSV upload's refusals, the import job (bad rows
by line and reason, good rows in, embedded and placed, a page each, the stored file gone), the
export CSV, the landing page (impression, click then redirect, revoked or unknown: plain 404,
the viewer's language), and a real worker running the import."""
import csv
import io
import urllib.request

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns import services
from campaigns.models import Campaign, Clip, Event, Job, Profile, RecipientPage, SegmentMembership
from campaigns.services.recipients import recipients_import_run
from campaigns.services.segmentation import segments_embed
from tests import factories
from tests.conftest import api_client_for, bucket_keys
from tests.helpers import assert_error, wait_for

pytestmark = pytest.mark.django_db
APPROVED = Clip.Status.APPROVED

GOOD_CSV = (
    "external_id,interests,style,locale\n"
    "hiker-1,hiking;camping,rugged,en\n"
    "hiker-2, hiking ; mountains ,outdoor,zh-TW\n"
    "gamer-1,video games;esports,neon,en\n"
)


@pytest.fixture
def campaign(org):
    campaign = services.campaign_create(
        organization=org, brand=factories.BrandFactory(organization=org, name="Trailhead", palette=["#0B6E4F", "#FFF8E7"]),
        name="Autumn", brief="Trail shoes", segments=[
            {"name": "Outdoors", "attributes": {"interests": ["hiking", "camping"], "style": "rugged"}},
            {"name": "Players", "attributes": {"interests": ["video games"], "style": "neon"}},
        ])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.LIVE, cta_url="https://example.com/shoes")
    campaign.refresh_from_db()
    return campaign


def csv_upload(text: str | bytes, name: str = "recipients.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text, content_type="text/csv")


def run_import(campaign, text: str) -> Job:
    job = services.recipients_upload(campaign=campaign, upload=csv_upload(text))
    services.job_run(job_id=job.pk, work=recipients_import_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


def export(client, campaign) -> list[dict]:
    response = client.get(f"/api/v1/campaigns/{campaign.pk}/recipients.csv")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    assert text.splitlines()[0] == "external_id,segment,clip_id,page_url"
    return list(csv.DictReader(io.StringIO(text)))


# --- upload: refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("body, needle", [
    (b"", "empty"),
    (b"id,interests\nv1,hiking\n", "external_id column"),
    (b"external_id,interests\n", "no recipients"),
    (b"external_id,style\nv1,caf\xe9\n", "not UTF-8 text (line 2"),
    (b"external_id,style,style\nv1,a,b\n", "style twice"),
    (b"external_id,,style\nv1,a,b\n", "column 2 of the header row has no name"),
    (b'external_id,style\nv1,"unclosed\n', "cannot be read"),
])
def test_an_unusable_file_is_a_400_naming_file_and_leaves_nothing(manage_client, campaign, s3_client, body, needle):
    before = bucket_keys(s3_client)
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/recipients",
                                  {"file": csv_upload(body)}, format="multipart")
    error = assert_error(response, 400, "invalid")
    assert "file" in error["details"] and needle in error["message"], error
    assert not Job.objects.filter(kind=Job.Kind.IMPORT_RECIPIENTS).exists()
    assert bucket_keys(s3_client) == before


@pytest.mark.slow
def test_too_many_rows_and_too_many_bytes_are_refused(manage_client, campaign, settings):
    rows = "".join(f"v{i},hiking\n" for i in range(settings.RECIPIENTS_MAX_ROWS + 1))
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/recipients",
                                  {"file": csv_upload("external_id,interests\n" + rows)}, format="multipart")
    error = assert_error(response, 400, "invalid")
    assert f"at most {settings.RECIPIENTS_MAX_ROWS}" in error["message"]

    big = "external_id,notes\n" + "v1," + "x" * (settings.RECIPIENTS_MAX_BYTES + 1) + "\n"
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/recipients",
                                  {"file": csv_upload(big)}, format="multipart")
    assert_error(response, 413, "too_large")
    assert not Job.objects.filter(kind=Job.Kind.IMPORT_RECIPIENTS).exists()


def test_upload_needs_manage_scope_a_file_segments_and_this_organizations_campaign(org, other_org, campaign):
    serve = api_client_for(org, ["serve"])
    assert_error(serve.post(f"/api/v1/campaigns/{campaign.pk}/recipients", {"file": csv_upload(GOOD_CSV)},
                            format="multipart"), 403)
    manage = api_client_for(org, ["manage"])
    assert_error(manage.post(f"/api/v1/campaigns/{campaign.pk}/recipients", {}, format="multipart"), 400)
    stranger = api_client_for(other_org, ["manage"])
    assert_error(stranger.post(f"/api/v1/campaigns/{campaign.pk}/recipients", {"file": csv_upload(GOOD_CSV)},
                               format="multipart"), 404)
    assert_error(stranger.get(f"/api/v1/campaigns/{campaign.pk}/recipients.csv"), 404)
    bare = factories.CampaignFactory(brand__organization=org)  # no segments yet
    error = assert_error(manage.post(f"/api/v1/campaigns/{bare.pk}/recipients", {"file": csv_upload(GOOD_CSV)},
                                     format="multipart"), 409, "no_segments")
    assert "segments" in error["message"]


# --- the import job -------------------------------------------------------------------------------

@pytest.mark.slow
def test_good_rows_go_in_placed_with_a_page_each_and_bad_rows_are_reported_by_line(manage_client, campaign, s3_client):
    text = GOOD_CSV + (
        "bad id!,hiking,rugged,en\n"            # line 5: external_id outside the allowed characters
        "short-row,hiking\n"                    # line 6: too few fields
        "hiker-1,cooking,cosy,en\n"             # line 7: the same recipient twice
        "\n"                                    # line 8: blank, skipped
        f"huge,{'x' * 9000},rugged,en\n"         # line 9: attributes over 8 KB
        '"quoted-1","city;coffee","minimal\nand clean",en\n'  # lines 10-11: one row over two lines
        ",hiking,rugged,en\n"                   # line 12: no external_id
    )
    response = manage_client.post(f"/api/v1/campaigns/{campaign.pk}/recipients",
                                  {"file": csv_upload(text)}, format="multipart")
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]["id"]
    assert response.json()["job"]["kind"] == "import_recipients"
    stored = Job.objects.get(pk=job_id).params["file"]
    assert stored in bucket_keys(s3_client)

    services.job_run(job_id=job_id, work=recipients_import_run)
    body = manage_client.get(f"/api/v1/jobs/{job_id}").json()
    assert body["status"] == "succeeded", body
    result = body["result"]
    assert (result["rows"], result["imported"], result["created"], result["bad_rows"]) == (9, 4, 4, 5)
    by_line = {e["line"]: e for e in result["errors"]}
    assert sorted(by_line) == [5, 6, 7, 9, 12]
    assert "external_id must be" in by_line[5]["reason"] and by_line[5]["external_id"] == "bad id!"
    assert "2 fields; the header has 4" in by_line[6]["reason"]
    assert "already appears on line 2" in by_line[7]["reason"]
    assert "at most 8192 bytes" in by_line[9]["reason"]
    assert "external_id must be" in by_line[12]["reason"]

    # Good rows: upserted with their embedding, placed in the nearest segment, a page each.
    hiker = Profile.objects.get(organization=campaign.organization, external_id="hiker-2")
    assert hiker.attributes == {"interests": ["hiking", "mountains"], "style": "outdoor", "locale": "zh-TW"}
    assert len(hiker.embedding) == 384 and hiker.embedded_at is not None
    quoted = Profile.objects.get(external_id="quoted-1")
    assert quoted.attributes["style"] == "minimal\nand clean"
    placed = dict(SegmentMembership.objects.filter(campaign=campaign).values_list("profile__external_id",
                                                                                  "segment__name"))
    assert placed == {"hiker-1": "Outdoors", "hiker-2": "Outdoors", "gamer-1": "Players",
                      "quoted-1": placed["quoted-1"]} and len(placed) == 4
    tokens = dict(RecipientPage.objects.filter(campaign=campaign).values_list("profile__external_id", "token"))
    assert set(tokens) == set(placed) and all(len(t) == 43 for t in tokens.values())
    assert len(set(tokens.values())) == 4
    assert stored not in bucket_keys(s3_client)  # personal data: not kept once imported

    # Again with one recipient changed: an update, re-embedded and re-placed; the links stay the same.
    job = run_import(campaign, "external_id,interests,style\nhiker-1,video games,neon\ngamer-1,video games;esports,neon\n")
    assert (job.result["created"], job.result["updated"], job.result["bad_rows"]) == (0, 2, 0)
    assert SegmentMembership.objects.get(campaign=campaign, profile__external_id="hiker-1").segment.name == "Players"
    assert dict(RecipientPage.objects.filter(campaign=campaign).values_list("profile__external_id", "token")) == tokens
    # An unchanged, embedded recipient costs no model time.
    job = run_import(campaign, "external_id,interests,style\nhiker-1,video games,neon\n")
    assert (job.result["unchanged"], job.result["embedded_texts"]) == (1, 0)


def test_a_failed_import_says_why_and_leaves_no_file(campaign, s3_client):
    job = services.recipients_upload(campaign=campaign, upload=csv_upload(GOOD_CSV))
    assert job.params["file"] in bucket_keys(s3_client)
    campaign.segments.all().delete()  # the marketer's segments went away before the worker ran
    services.job_run(job_id=job.pk, work=recipients_import_run)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "no segments any more" in job.error
    assert job.params["file"] not in bucket_keys(s3_client)
    assert not Profile.objects.exists() and not RecipientPage.objects.exists()


def test_the_import_also_places_recipients_in_the_organizations_other_campaigns(org, campaign):
    other = services.campaign_create(organization=org, brand=campaign.brand, name="Winter", brief="Boots", segments=[
        {"name": "Snow", "attributes": {"interests": ["skiing"]}}])
    segments_embed(campaign_id=other.pk)  # its cpu.segments_embed task, as a worker would run it
    run_import(campaign, GOOD_CSV)
    assert SegmentMembership.objects.filter(campaign=other).count() == 3
    assert not RecipientPage.objects.filter(campaign=other).exists()  # pages only where uploaded


# --- export and landing page -------------------------------------------------------------------------

def test_export_lists_every_placed_viewer_with_their_clip_and_a_page_that_plays_it(
        manage_client, campaign, client, tiny_mp4):
    run_import(campaign, GOOD_CSV)
    outdoors, players = campaign.segments.order_by("position")
    video = default_storage.save("tests/recipients/clip.mp4", ContentFile(tiny_mp4))
    outdoor_clip = factories.ClipFactory(campaign=campaign, segment=outdoors, status=APPROVED, video=video)
    player_clip = factories.ClipFactory(campaign=campaign, segment=players, status=APPROVED)
    factories.ClipFactory(campaign=campaign, segment=players)  # pending: never listed
    # A viewer placed through the profile API, not the CSV, is listed too, with a page of their own.
    app_viewer = factories.ProfileFactory(organization=campaign.organization, external_id="app-viewer")
    SegmentMembership.objects.create(organization=campaign.organization, profile=app_viewer, campaign=campaign,
                                     segment=players)

    rows = export(manage_client, campaign)
    assert [r["external_id"] for r in rows] == ["app-viewer", "gamer-1", "hiker-1", "hiker-2"]
    by_id = {r["external_id"]: r for r in rows}
    assert by_id["hiker-1"]["segment"] == "Outdoors" and by_id["hiker-1"]["clip_id"] == str(outdoor_clip.pk)
    assert by_id["gamer-1"]["clip_id"] == str(player_clip.pk)
    assert all(r["page_url"].startswith("http://testserver/p/") for r in rows)
    assert export(manage_client, campaign) == rows  # settled: the same answer every time

    # The page: the clip the CSV names, its poster, the brand's name and colours, the call to action.
    page_path = by_id["hiker-1"]["page_url"].removeprefix("http://testserver")
    response = client.get(page_path)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-clip="{outdoor_clip.pk}"' in html and "Trailhead" in html and "--primary: #0B6E4F" in html
    assert 'poster="http' in html and f'href="{page_path}/go"' in html
    assert response["Referrer-Policy"] == "no-referrer" and "no-store" in response["Cache-Control"]
    src = html.split('<source src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    with urllib.request.urlopen(src, timeout=10) as fetched:
        assert fetched.read() == tiny_mp4
    # Opening it recorded an impression; the call to action records a click, then redirects.
    assert Event.objects.filter(clip=outdoor_clip, profile__external_id="hiker-1", type="impression").count() == 1
    response = client.get(f"{page_path}/go")
    assert response.status_code == 302 and response["Location"] == "https://example.com/shoes"
    assert response["Referrer-Policy"] == "no-referrer"
    outdoor_clip.refresh_from_db()
    assert (outdoor_clip.impressions, outdoor_clip.clicks) == (1, 1)
    assert Event.objects.filter(clip=outdoor_clip, profile__external_id="hiker-1", type="click").count() == 1


def test_revoked_unknown_and_malformed_tokens_get_a_plain_404_page(manage_client, campaign, client):
    run_import(campaign, GOOD_CSV)
    factories.ClipFactory(campaign=campaign, segment=campaign.segments.first(), status=APPROVED)
    rows = {r["external_id"]: r for r in export(manage_client, campaign)}
    hiker_path = rows["hiker-1"]["page_url"].removeprefix("http://testserver")
    assert client.get(hiker_path).status_code == 200

    assert services.recipient_pages_revoke(campaign=campaign, external_ids=["hiker-1"]) == 1
    for path in (hiker_path, hiker_path + "/go", "/p/" + "A" * 43, "/p/short", "/p/" + "%00" * 40):
        response = client.get(path)
        assert response.status_code == 404, path
        html = response.content.decode()
        assert response["Content-Type"].startswith("text/html") and "Page not found" in html
        assert "mainnav" not in html and "Trailhead" not in html  # nothing of the dashboard or the brand
    assert rows["hiker-2"]["page_url"] and client.get(
        rows["hiker-2"]["page_url"].removeprefix("http://testserver")).status_code == 200
    assert {r["external_id"]: r["page_url"] for r in export(manage_client, campaign)}["hiker-1"] == ""
    assert Event.objects.filter(profile__external_id="hiker-1").count() == 1  # the open before revoking

    # Erasing a viewer erases their page: the link is dead.
    hiker2_path = rows["hiker-2"]["page_url"].removeprefix("http://testserver")
    serve = api_client_for(campaign.organization, ["serve"])
    assert serve.delete("/api/v1/profiles/hiker-2").status_code == 204
    assert client.get(hiker2_path).status_code == 404


def test_the_page_speaks_the_viewers_language_and_says_when_no_clip_is_ready(manage_client, campaign, client):
    run_import(campaign, GOOD_CSV)
    rows = {r["external_id"]: r for r in export(manage_client, campaign)}
    zh_path = rows["hiker-2"]["page_url"].removeprefix("http://testserver")  # locale zh-TW in the CSV
    en_path = rows["hiker-1"]["page_url"].removeprefix("http://testserver")
    html = client.get(zh_path).content.decode()
    assert '<html lang="zh-Hant">' in html and "了解更多" in html and "這段影片目前無法播放" in html
    assert "<video" not in html and not Event.objects.exists()  # no approved clip: no impression
    html = client.get(en_path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in html and "Learn more" in html


@pytest.mark.parametrize("cta_url", ["", "javascript:alert(1)", "ftp://example.com/x", "//evil.example/x"])
def test_a_call_to_action_that_is_not_http_is_neither_shown_nor_followed(manage_client, campaign, client, cta_url):
    run_import(campaign, GOOD_CSV)
    factories.ClipFactory(campaign=campaign, segment=campaign.segments.first(), status=APPROVED)
    Campaign.objects.filter(pk=campaign.pk).update(cta_url=cta_url)
    path = export(manage_client, campaign)[0]["page_url"].removeprefix("http://testserver")
    html = client.get(path).content.decode()
    assert 'class="cta"' not in html
    assert client.get(path + "/go").status_code == 404
    assert not Event.objects.filter(type="click").exists()


# --- through a real worker ---------------------------------------------------------------------------

@pytest.mark.worker
def test_an_uploaded_csv_is_imported_by_a_worker(worker, org, s3_client):
    brand = factories.BrandFactory(organization=org)
    campaign = services.campaign_create(organization=org, brand=brand, name="Autumn", brief="Trail shoes", segments=[
        {"name": "Outdoors", "attributes": {"interests": ["hiking", "camping"], "style": "rugged"}},
        {"name": "Players", "attributes": {"interests": ["video games"], "style": "neon"}},
    ])
    client = api_client_for(org, ["manage"])
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/recipients",
                           {"file": csv_upload(GOOD_CSV + "bad id!,x,y,z\n")}, format="multipart")
    assert response.status_code == 202
    job_id = response.json()["job"]["id"]
    wait_for(lambda: Job.objects.get(pk=job_id).is_finished, timeout=120)
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.result["imported"], job.result["bad_rows"]) == (3, 1)
    assert job.result["errors"] == [{"line": 5, "external_id": "bad id!", "reason": job.result["errors"][0]["reason"]}]
    assert RecipientPage.objects.filter(campaign=campaign).count() == 3
    assert job.params["file"] not in bucket_keys(s3_client)


def test_the_schema_describes_both_recipient_endpoints(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    upload = schema["paths"]["/api/v1/campaigns/{campaign_id}/recipients"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"202", "400", "404", "409", "413"} <= set(upload["responses"])
    export_op = schema["paths"]["/api/v1/campaigns/{campaign_id}/recipients.csv"]["get"]
    assert "text/csv" in export_op["responses"]["200"]["content"]


def test_a_csv_is_the_answer_whatever_the_client_accepts(manage_client, campaign):
    run_import(campaign, GOOD_CSV)
    response = manage_client.get(f"/api/v1/campaigns/{campaign.pk}/recipients.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert len(response.content.decode().splitlines()) == 1 + 3
