"""Where and how (issue #11): segment settings, camera presets, setting suggestions by embedding,
the optional language-model brief expansion, and the dashboard's setting editor (without a browser).

Suggestions run the real MiniLM model; generation runs the tiny checkpoint in this process.
"""
import json
import time
from http.server import BaseHTTPRequestHandler

import pytest
from django.urls import reverse

from campaigns import services
from campaigns.models import Campaign, Clip, Job, Segment, SegmentMembership
from campaigns.services.generation import campaign_generate_run, segment_prompt
from campaigns.services.segmentation import campaign_segment_run, segments_embed
from campaigns.services.segments import segment_settings_suggest
from generation.embeddings import embed_attributes
from generation.personalization import (
    CAMERA_PRESETS,
    MAX_SETTING_CHARS,
    SETTINGS_BY_KEY,
    SETTINGS_CATALOGUE,
    camera_preset,
    default_camera_for_brief,
)
from generation.prompt_expander import expand_brief
from generation.limits import MAX_BRIEF_CHARS
from generation.setting_suggest import suggest_settings
from tests import factories
from tests.conftest import api_client_for
from tests.helpers import LoopbackServer, assert_error

pytestmark = pytest.mark.django_db

FOREST = SETTINGS_BY_KEY["forest_trail"].phrase
CITY_NIGHT = SETTINGS_BY_KEY["city_night"].phrase
HIKERS = {"interests": ["hiking", "camping"], "style": "rugged", "locale": "en-US"}
COMMUTERS = {"interests": ["通勤", "咖啡"], "style": "極簡", "locale": "zh-TW"}


@pytest.fixture
def brand(org):
    return services.brand_create(organization=org, name="Trailhead", palette=["#F28C28", "#29335C"],
                                 style_notes="sunlit, warm film grain")


def create(client, brand, **fields):
    body = {"brand": brand.pk, "name": "Weekend trails", "brief": "Trail shoes for the weekend", **fields}
    return client.post("/api/v1/campaigns", body, format="json")


def place(campaign: Campaign, segment: Segment, count: int) -> None:
    """`count` viewers placed in `segment` (as the cpu worker would)."""
    for _ in range(count):
        profile = factories.ProfileFactory(organization=campaign.organization)
        SegmentMembership.objects.create(organization=campaign.organization, profile=profile, campaign=campaign,
                                         segment=segment, distance=0.1)


# --- creating a campaign with settings and a camera ----------------------------------------------

def test_segments_carry_the_marketers_setting_and_the_campaign_its_camera(manage_client, brand):
    response = create(manage_client, brand, camera="pan_left", segments=[
        {"name": "Weekend hikers", "attributes": HIKERS, "setting": "  a mountain forest   trail at dawn "},
        {"name": "城市通勤族", "attributes": COMMUTERS},
    ])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["camera"] == "pan_left"
    hikers, commuters = body["segments"]
    assert (hikers["setting"], hikers["setting_source"], hikers["size"]) == (FOREST, "marketer", 0)
    # Without a setting the segment waits for its suggestion (made once it is embedded).
    assert (commuters["setting"], commuters["setting_source"]) == ("", "")
    campaign = Campaign.objects.get(pk=body["id"])
    assert campaign.camera == "pan_left"
    assert list(campaign.segments.values_list("setting", "setting_source")) == [(FOREST, "marketer"), ("", "")]


def test_without_a_camera_the_brief_chooses_one(manage_client, brand):
    body = create(manage_client, brand, brief="Rain jackets that pack into a pocket").json()
    assert body["camera"] == default_camera_for_brief("Rain jackets that pack into a pocket")
    assert Campaign.objects.get(pk=body["id"]).camera == body["camera"]


@pytest.mark.parametrize("fields,field,words", [
    ({"segments": [{"name": "A"}, {"name": "B", "setting": "x" * (MAX_SETTING_CHARS + 1)}]}, "segments",
     ["segments[1].setting", str(MAX_SETTING_CHARS)]),
    ({"segments": [{"name": "A", "setting": ""}]}, "segments", ["segments[0].setting", "1 to"]),
    ({"segments": [{"name": "A", "setting": "   "}]}, "segments", ["segments[0].setting"]),
    ({"segments": [{"name": "A", "setting": 5}]}, "segments", ["segments[0].setting", "text"]),
    ({"segments": [{"name": "A", "setting": ["a beach"]}]}, "segments", ["segments[0].setting", "text"]),
    ({"camera": "zoom_wild"}, "camera", ["zoom_wild", "pan_left", "static"]),
    ({"camera": 5}, "camera", ["pan_left"]),
    ({"camera": ["pan_left"]}, "camera", ["pan_left"]),
    ({"camera": ""}, "camera", []),
    ({"camera": None}, "camera", []),
])
def test_bad_settings_and_cameras_are_400_naming_the_field(manage_client, brand, fields, field, words):
    body = assert_error(create(manage_client, brand, **fields), 400, "invalid")
    assert list(body["details"]) == [field]
    message = " ".join(body["details"][field])
    for word in words:
        assert word in message
    assert not Campaign.objects.exists()


def test_the_service_refuses_an_unknown_camera_listing_the_presets(org, brand):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        services.campaign_create(organization=org, brand=brand, name="X", brief="y", camera="dolly_zoom")
    message = caught.value.message_dict["camera"][0]
    assert all(preset.key in message for preset in CAMERA_PRESETS)


# --- reading and editing segments ----------------------------------------------------------------

def test_a_campaign_lists_its_segments_with_setting_source_and_size(manage_client, brand,
                                                                    django_assert_max_num_queries):
    campaign_id = create(manage_client, brand, segments=[
        {"name": "Hikers", "attributes": HIKERS, "setting": "a sunny sandy beach"},
        {"name": "Commuters", "attributes": COMMUTERS}, {"name": "Empty"}]).json()["id"]
    campaign = Campaign.objects.get(pk=campaign_id)
    hikers, commuters, empty = campaign.segments.all()
    Segment.objects.filter(pk=commuters.pk).update(setting=CITY_NIGHT, setting_source="suggested")
    place(campaign, hikers, 3)
    place(campaign, commuters, 2)

    with django_assert_max_num_queries(3):  # the key, the campaign, its segments with their sizes
        body = manage_client.get(f"/api/v1/campaigns/{campaign_id}").json()
    assert [(s["id"], s["name"], s["setting"], s["setting_source"], s["size"]) for s in body["segments"]] == [
        (hikers.pk, "Hikers", "a sunny sandy beach", "marketer", 3),
        (commuters.pk, "Commuters", CITY_NIGHT, "suggested", 2),
        (empty.pk, "Empty", "", "", 0),
    ]
    assert body["segments"][0]["attributes"] == HIKERS
    listed = manage_client.get("/api/v1/campaigns").json()
    assert [s["size"] for s in listed[0]["segments"]] == [3, 2, 0]


def test_patch_a_segment_makes_the_setting_the_marketers(manage_client, org):
    campaign = factories.CampaignFactory(brand__organization=org)
    segment = factories.SegmentFactory(campaign=campaign, name="Commuters", setting=CITY_NIGHT,
                                       setting_source="suggested")
    place(campaign, segment, 2)
    url = f"/api/v1/campaigns/{campaign.pk}/segments/{segment.pk}"
    response = manage_client.patch(url, {"setting": "a  rainy city street at dawn"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": segment.pk, "name": "Commuters", "attributes": segment.attributes,
                               "setting": "a rainy city street at dawn", "setting_source": "marketer", "size": 2}
    response = manage_client.patch(url, {"name": "Night commuters"}, format="json")
    assert (response.json()["name"], response.json()["setting"]) == ("Night commuters", "a rainy city street at dawn")
    segment.refresh_from_db()
    assert (segment.name, segment.setting, segment.setting_source) == (
        "Night commuters", "a rainy city street at dawn", "marketer")


@pytest.mark.parametrize("body,field", [
    ({"setting": "x" * (MAX_SETTING_CHARS + 1)}, "setting"),
    ({"setting": ""}, "setting"),
    ({"setting": "   "}, "setting"),
    ({"setting": 5}, "setting"),
    ({"setting": None}, "setting"),
    ({"name": ""}, "name"),
    ({"name": 7}, "name"),
    ({"name": "Hikers"}, "name"),  # taken by the other segment of the campaign
])
def test_patch_refuses_bad_values_naming_the_field(manage_client, org, body, field):
    campaign = factories.CampaignFactory(brand__organization=org)
    factories.SegmentFactory(campaign=campaign, name="Hikers", position=0)
    segment = factories.SegmentFactory(campaign=campaign, name="Commuters", setting=CITY_NIGHT,
                                       setting_source="suggested", position=1)
    answer = assert_error(manage_client.patch(f"/api/v1/campaigns/{campaign.pk}/segments/{segment.pk}", body,
                                              format="json"), 400, "invalid")
    assert list(answer["details"]) == [field]
    segment.refresh_from_db()
    assert (segment.name, segment.setting, segment.setting_source) == ("Commuters", CITY_NIGHT, "suggested")


def test_patch_of_another_organizations_segment_is_404(manage_client, org, other_org):
    mine = factories.CampaignFactory(brand__organization=org)
    other_of_mine = factories.CampaignFactory(brand__organization=org)
    theirs = factories.CampaignFactory(brand__organization=other_org)
    their_segment = factories.SegmentFactory(campaign=theirs, setting="a sunny sandy beach", setting_source="marketer")
    sibling = factories.SegmentFactory(campaign=other_of_mine)
    for url in [f"/api/v1/campaigns/{theirs.pk}/segments/{their_segment.pk}",  # their campaign
                f"/api/v1/campaigns/{mine.pk}/segments/{their_segment.pk}",  # their segment under my campaign
                f"/api/v1/campaigns/{mine.pk}/segments/{sibling.pk}",  # a segment of another campaign
                f"/api/v1/campaigns/{mine.pk}/segments/999999"]:
        assert_error(manage_client.patch(url, {"setting": "a neon-lit concert stage"}, format="json"), 404, "not_found")
    their_segment.refresh_from_db()
    assert their_segment.setting == "a sunny sandy beach"


def test_patch_needs_the_manage_scope(serve_client, org):
    segment = factories.SegmentFactory(campaign__brand__organization=org)
    assert_error(serve_client.patch(f"/api/v1/campaigns/{segment.campaign_id}/segments/{segment.pk}",
                                    {"setting": "a sunny sandy beach"}, format="json"), 403)


def test_presets_list_cameras_and_the_catalogue_for_any_key(client, org):
    for scopes in (["serve"], ["manage"]):
        body = api_client_for(org, scopes).get("/api/v1/presets").json()
        assert [(c["key"], c["label"]) for c in body["camera"]] == [(p.key, p.label) for p in CAMERA_PRESETS]
        assert {"pan_left", "pan_right", "rise", "descend", "push_in", "static"} == {c["key"] for c in body["camera"]}
        assert [(s["key"], s["phrase"]) for s in body["settings"]] == [(e.key, e.phrase) for e in SETTINGS_CATALOGUE]
        assert body["camera"][0]["label_zh"] == "向左平移"
    assert_error(client.get("/api/v1/presets"), 401)


def test_the_schema_states_the_constraints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    patch = components["PatchedSegmentUpdateInRequest"]["properties"]["setting"]
    assert (patch["minLength"], patch["maxLength"]) == (1, MAX_SETTING_CHARS)
    segments = components["CampaignInRequest"]["properties"]["segments"]["oneOf"]
    item = next(s for s in segments if s["type"] == "array")["items"]["properties"]["setting"]
    assert (item["minLength"], item["maxLength"]) == (1, MAX_SETTING_CHARS)
    assert components["CameraEnum"]["enum"] == [p.key for p in CAMERA_PRESETS]
    assert "/api/v1/campaigns/{campaign_id}/segments/{segment_id}" in schema["paths"]
    assert "patch" in schema["paths"]["/api/v1/campaigns/{campaign_id}/segments/{segment_id}"]
    assert "/api/v1/presets" in schema["paths"]
    assert set(components["Segment"]["required"]) >= {"setting", "setting_source", "size"}


# --- suggestions by embedding (the real MiniLM model) ---------------------------------------------

def test_suggestions_pick_the_catalogue_entry_of_clearly_themed_audiences():
    audiences = [HIKERS, COMMUTERS, {"interests": ["skiing", "snowboarding"]}, {"interests": ["surfing", "beach"]}]
    picked = [entry.key for entry in suggest_settings(embed_attributes(audiences))]
    assert picked == ["forest_trail", "city_night", "snowy_slope", "sunny_beach"]


def test_marketer_segments_get_suggestions_only_where_they_set_none(org):
    campaign = factories.CampaignFactory(brand__organization=org)
    own = factories.SegmentFactory(campaign=campaign, name="Hikers", attributes=HIKERS, position=0,
                                   setting="a red rock canyon at sunset", setting_source="marketer")
    commuters = factories.SegmentFactory(campaign=campaign, name="城市通勤族", attributes=COMMUTERS, position=1)
    segments_embed(campaign_id=campaign.pk)
    own.refresh_from_db()
    commuters.refresh_from_db()
    assert (own.setting, own.setting_source) == ("a red rock canyon at sunset", "marketer")
    assert (commuters.setting, commuters.setting_source) == (CITY_NIGHT, "suggested")


def test_a_suggestion_never_overwrites_a_setting_written_meanwhile(org):
    segment = factories.SegmentFactory(campaign__brand__organization=org, attributes=HIKERS)
    stale = Segment.objects.get(pk=segment.pk)  # read by a worker before the marketer's edit
    services.segment_update(segment=segment, setting="a calm lake under a clear blue sky")
    assert segment_settings_suggest(segments=[stale], vectors=embed_attributes([HIKERS])) == 0
    segment.refresh_from_db()
    assert (segment.setting, segment.setting_source) == ("a calm lake under a clear blue sky", "marketer")


def test_clustered_segments_are_all_suggested_a_setting(org):
    # Ten of each: every cluster holds at least SEGMENT_MIN_SIZE (20) viewers.
    for attributes in [HIKERS, {"interests": ["hiking", "trekking"], "style": "rugged"}, COMMUTERS,
                       {"interests": ["通勤", "咖啡", "城市"], "style": "極簡"}] * 10:
        factories.ProfileFactory(organization=org, attributes=attributes)
    campaign = factories.CampaignFactory(brand__organization=org, segment_count=2)
    job = factories.JobFactory(organization=org, kind=Job.Kind.SEGMENT_PROFILES, campaign=campaign, params={"k": 2})
    services.job_run(job_id=job.pk, work=campaign_segment_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    settings = {s.attributes["interests"][0] if isinstance(s.attributes.get("interests"), list) else s.name:
                (s.setting, s.setting_source) for s in Segment.objects.filter(campaign=campaign)}
    assert all(source == "suggested" for _, source in settings.values())
    assert sorted(setting for setting, _ in settings.values()) == sorted([FOREST, CITY_NIGHT])
    assert {s["setting"] for s in job.result["segments"]} == {FOREST, CITY_NIGHT}


# --- prompts -------------------------------------------------------------------------------------

def test_the_prompt_says_the_segments_setting_and_the_campaigns_camera(org, settings):
    campaign = factories.CampaignFactory(brand__organization=org, camera="rise")
    segment = factories.SegmentFactory(campaign=campaign, setting="a snowy mountain slope", setting_source="marketer")
    prompt, _ = segment_prompt(campaign=campaign, segment=segment)
    # On `tiny` the camera is worded as the toy world shows it: rising makes the scene sink.
    assert "Summer sale on trail shoes. set in a snowy mountain slope. moving down." in prompt
    # A real checkpoint gets its family's wording.
    settings.GENERATION_MODEL, settings.GENERATION_MODEL_FAMILY = "/models/wan2.1-t2v", "wan"
    prompt, _ = segment_prompt(campaign=campaign, segment=segment)
    assert "set in a snowy mountain slope. the camera rises slowly, crane up." in prompt
    settings.GENERATION_MODEL, settings.GENERATION_MODEL_FAMILY = "/models/ltx-video", "ltx"
    prompt, _ = segment_prompt(campaign=campaign, segment=segment)
    assert camera_preset("rise").words_for("ltx").rstrip(".") in prompt
    assert "crane up." not in prompt
    # A campaign without a camera (made before presets) gets the brief's default, as the API shows.
    Campaign.objects.filter(pk=campaign.pk).update(camera="")
    campaign.refresh_from_db()
    settings.GENERATION_MODEL, settings.GENERATION_MODEL_FAMILY = "tiny", ""
    prompt, _ = segment_prompt(campaign=campaign, segment=segment)
    assert camera_preset(default_camera_for_brief(campaign.brief)).words_for("tiny") in prompt


# --- generation: settings filled before prompts, the optional expander ----------------------------

class FakeChatServer(LoopbackServer):
    """An OpenAI-compatible /v1/chat/completions on loopback: answers well, 500s, hangs or talks nonsense."""

    path = "/v1"

    def __init__(self, mode: str, answer: str = "", hang_s: float = 5.0):
        self.mode, self.answer, self.hang_s = mode, answer, hang_s
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                outer.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length) or b"{}")})
                if outer.mode == "hang":
                    time.sleep(outer.hang_s)
                status, body = 200, json.dumps({"choices": [{"message": {"role": "assistant",
                                                                         "content": outer.answer}}]})
                if outer.mode == "error":
                    status, body = 500, '{"error": "model crashed"}'
                elif outer.mode == "garbage":
                    body = "<html>not json</html>"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body.encode())
                except OSError:
                    pass  # the client gave up waiting: that is the point of the hang mode

        super().__init__(Handler)


EXPANDED = "A hiker in orange trail shoes strides over wet granite as morning mist lifts off the pines"


@pytest.mark.slow
def test_expander_answers_and_falls_back_for_every_kind_of_failure():
    brief = "Trail shoes for the weekend"
    with FakeChatServer("ok", answer=f'"{EXPANDED}"\n') as good:
        expansion = expand_brief(brief, url=good.url, model="llama-3-8b", timeout=5)
        assert (expansion.brief, expansion.used, expansion.reason) == (EXPANDED, True, "expanded")
        (request,) = good.requests
        assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "llama-3-8b"
        system, user = request["body"]["messages"]
        assert system["role"] == "system" and str(MAX_BRIEF_CHARS) in system["content"]
        assert "same language" in system["content"] and user == {"role": "user", "content": brief}
    cases = [(FakeChatServer("error"), "answered 500"), (FakeChatServer("garbage"), "bad JSON"),
             (FakeChatServer("ok", answer="  "), "empty"),
             (FakeChatServer("ok", answer="x" * (MAX_BRIEF_CHARS + 1)), f"over {MAX_BRIEF_CHARS}")]
    for server, reason in cases:
        with server:
            expansion = expand_brief(brief, url=server.url, timeout=5)
        assert (expansion.brief, expansion.used) == (brief, False) and reason in expansion.reason, expansion
    # Nothing listening: a refused connection is a fallback too.
    with FakeChatServer("ok") as closed:
        url = closed.url
    expansion = expand_brief(brief, url=url, timeout=2)
    assert (expansion.brief, expansion.used) == (brief, False) and "request failed" in expansion.reason
    assert expand_brief(brief, url="", timeout=5).reason == "off"


@pytest.mark.slow
def test_a_hanging_expander_costs_at_most_its_timeout():
    with FakeChatServer("hang", answer=EXPANDED, hang_s=6) as server:
        started = time.monotonic()
        expansion = expand_brief("Trail shoes for the weekend", url=server.url, timeout=1)
        elapsed = time.monotonic() - started
    assert (expansion.brief, expansion.used) == ("Trail shoes for the weekend", False)
    assert "timed out after 1 s" in expansion.reason
    assert elapsed < 1.5, elapsed


def generate_here(campaign: Campaign) -> Job:
    job = services.campaign_generate(campaign=campaign, variants_per_segment=1, steps=1, enqueue=False)
    services.job_run(job_id=job.pk, work=campaign_generate_run)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


@pytest.fixture
def two_segment_campaign(org, brand):
    campaign = services.campaign_create(organization=org, brand=brand, name="Weekend trails", camera="pan_left",
                                        brief="Trail shoes for the weekend", segments=[
                                            {"name": "Weekend hikers", "attributes": HIKERS},
                                            {"name": "Canyon runners", "attributes": {"interests": ["running"]},
                                             "setting": "a red rock canyon at sunset"}])
    assert not campaign.segments.filter(centroid__isnull=False).exists()  # the cpu job has not run
    return campaign


@pytest.mark.slow
def test_generation_suggests_missing_settings_and_expands_the_brief_once(two_segment_campaign, settings):
    with FakeChatServer("ok", answer=EXPANDED) as server:
        settings.PROMPT_EXPANDER_URL, settings.PROMPT_EXPANDER_MODEL = server.url, "llama-3-8b"
        job = generate_here(two_segment_campaign)
    assert len(server.requests) == 1  # one call per job, whatever the number of segments
    assert job.result["prompt_expansion"]["used"] is True
    assert job.result["prompt_expansion"]["model"] == "llama-3-8b"
    prompts = {c.segment.name: c.prompt for c in Clip.objects.filter(job=job).select_related("segment")}
    wording = camera_preset("pan_left").words_for("tiny")
    assert f"{EXPANDED}. set in {FOREST}. {wording}." in prompts["Weekend hikers"]
    assert f"{EXPANDED}. set in a red rock canyon at sunset. {wording}." in prompts["Canyon runners"]
    assert all("Trail shoes for the weekend" not in p for p in prompts.values())
    hikers = two_segment_campaign.segments.get(name="Weekend hikers")
    assert (hikers.setting, hikers.setting_source) == (FOREST, "suggested")
    runners = two_segment_campaign.segments.get(name="Canyon runners")
    assert runners.setting_source == "marketer"


@pytest.mark.slow
def test_generation_falls_back_to_the_brief_when_the_expander_fails(two_segment_campaign, settings):
    with FakeChatServer("error") as server:
        settings.PROMPT_EXPANDER_URL = server.url
        job = generate_here(two_segment_campaign)
    assert job.result["prompt_expansion"]["used"] is False
    assert "answered 500" in job.result["prompt_expansion"]["reason"]
    for clip in Clip.objects.filter(job=job):
        assert "Trail shoes for the weekend. set in" in clip.prompt


@pytest.mark.slow
def test_generation_waits_at_most_the_timeout_for_a_hanging_expander(two_segment_campaign, settings):
    with FakeChatServer("hang", answer=EXPANDED, hang_s=8) as server:
        settings.PROMPT_EXPANDER_URL, settings.PROMPT_EXPANDER_TIMEOUT = server.url, 1.0
        job = generate_here(two_segment_campaign)
    expansion = job.result["prompt_expansion"]
    assert expansion["used"] is False and "timed out" in expansion["reason"]
    assert expansion["seconds"] < 1.5
    assert all("Trail shoes for the weekend. set in" in c.prompt for c in Clip.objects.filter(job=job))


@pytest.mark.slow
def test_without_an_expander_the_job_says_so(two_segment_campaign):
    job = generate_here(two_segment_campaign)
    assert job.result["prompt_expansion"] == {"used": False, "reason": "off", "model": "", "seconds": 0.0}


# --- the dashboard, without a browser --------------------------------------------------------------

@pytest.fixture
def admin_client(client, org):
    user = factories.UserFactory()
    services.membership_set(user=user, organization=org, role="admin")
    client.force_login(user)
    return client


def test_the_create_form_takes_a_camera_and_a_setting_per_segment(admin_client, org, brand):
    page = admin_client.get(reverse("dashboard:campaign-create")).content.decode()
    assert 'name="camera"' in page and ">Pan left<" in page and 'name="segment_setting"' in page
    response = admin_client.post(reverse("dashboard:campaign-create"), {
        "name": "Trails", "brand": brand.pk, "brief": "Trail shoes", "format": "feed", "num_frames": 9, "fps": 8,
        "segment_mode": "define", "camera": "descend",
        "segment_name": ["Hikers", "城市通勤族", ""], "segment_attributes": ["interests: hiking", "興趣：通勤、咖啡", ""],
        "segment_setting": ["a mountain forest trail at dawn", "", ""],
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(organization=org)
    assert campaign.camera == "descend"
    assert list(campaign.segments.values_list("name", "setting", "setting_source")) == [
        ("Hikers", FOREST, "marketer"), ("城市通勤族", "", "")]


def test_the_create_form_refuses_a_setting_too_long(admin_client, org, brand):
    response = admin_client.post(reverse("dashboard:campaign-create"), {
        "name": "Trails", "brand": brand.pk, "brief": "Trail shoes", "format": "feed", "num_frames": 9, "fps": 8,
        "segment_mode": "define", "segment_name": ["Hikers"], "segment_attributes": [""],
        "segment_setting": ["x" * (MAX_SETTING_CHARS + 1)]})
    assert response.status_code == 400
    assert f"longer than {MAX_SETTING_CHARS}" in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_campaign_page_marks_suggestions_and_saves_the_marketers_setting(admin_client, org):
    campaign = factories.CampaignFactory(brand__organization=org, camera="pan_left")
    own = factories.SegmentFactory(campaign=campaign, name="Hikers", setting=FOREST, setting_source="marketer",
                                   position=0)
    suggested = factories.SegmentFactory(campaign=campaign, name="Commuters", setting=CITY_NIGHT,
                                         setting_source="suggested", position=1)
    page = admin_client.get(reverse("dashboard:campaign-detail", args=[campaign.pk])).content.decode()
    assert page.count('class="pill suggested"') == 1
    commuters_block = page[page.index(f'id="segment-{suggested.pk}"'):]
    assert 'class="pill suggested"' in commuters_block and CITY_NIGHT in commuters_block
    assert "Pan left" in page

    url = reverse("dashboard:segment-setting", args=[campaign.pk, suggested.pk])
    response = admin_client.post(url, {"setting": "a rainy city street at dawn"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "a rainy city street at dawn" in page and 'class="pill suggested"' not in page
    suggested.refresh_from_db()
    assert (suggested.setting, suggested.setting_source) == ("a rainy city street at dawn", "marketer")

    too_long = admin_client.post(url, {"setting": "y" * (MAX_SETTING_CHARS + 1)}, follow=True).content.decode()
    assert "was not saved" in too_long
    suggested.refresh_from_db()
    assert suggested.setting == "a rainy city street at dawn"
    own.refresh_from_db()
    assert own.setting == FOREST


def test_the_campaign_page_in_traditional_chinese(admin_client, org):
    campaign = factories.CampaignFactory(brand__organization=org, camera="pan_left")
    factories.SegmentFactory(campaign=campaign, name="Commuters", setting=CITY_NIGHT, setting_source="suggested")
    page = admin_client.get(reverse("dashboard:campaign-detail", args=[campaign.pk]),
                            HTTP_ACCEPT_LANGUAGE="zh-TW").content.decode()
    assert "向左平移" in page and ">建議<" in page and "儲存場景" in page and "夜晚的城市街道" in page


def test_another_organizations_segment_cannot_be_edited_from_the_dashboard(admin_client, other_org):
    segment = factories.SegmentFactory(campaign__brand__organization=other_org, setting=FOREST,
                                       setting_source="marketer")
    url = reverse("dashboard:segment-setting", args=[segment.campaign_id, segment.pk])
    assert admin_client.post(url, {"setting": "a sunny sandy beach"}).status_code == 404
    segment.refresh_from_db()
    assert segment.setting == FOREST

