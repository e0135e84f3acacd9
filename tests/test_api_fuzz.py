"""Schemathesis fuzzes every operation of the served OpenAPI schema against a live server (issue 12).

The schema is fetched from `/api/v1/schema/` of pytest-django's live server (real PostgreSQL, S3 on
loopback) and every operation gets the same number of generated requests:
- most are valid by the schema and carry the ids of seeded rows (in the path, the `profile` query
  and the id fields of the body), so that they reach the logic behind the 404;
- some are valid by the schema with every value generated (ids of nothing, mostly);
- some are invalid by the schema (schemathesis's negative mode), aimed at the seeded rows.
Each answer goes through four checks: no 5xx, a documented status code, a documented content type,
and a body that matches the documented schema. Failures are collected across all operations and
reported together, each with its request as a curl command and the answer.
"""
import csv
import io
import itertools
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns import services
from campaigns.models import ApiKey, Campaign, Clip, SegmentMembership
from tests import factories
from tests.helpers import broker_purge

pytestmark = pytest.mark.fuzz

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Requests to each operation: valid with seeded ids, valid with every value generated, invalid.
EXAMPLES_PER_OPERATION = {"seeded": 22, "generated": 4, "negative": 8}
MIN_REQUESTS = 1_000
# Any host a webhook URL names resolves to this public address (example.com's); nothing is sent to
# it, since no worker runs here to deliver.
PUBLIC_ADDRESS = "93.184.215.14"


@dataclass
class Seed:
    """The rows the fuzzer's requests point at, and the keys it sends."""

    serve_key: str
    manage_key: str
    path_ids: dict[str, object]
    query: dict[str, str]
    body_ids: dict[str, object]
    # Operations that use up their object (erase it, decide it, move it on): each seeded request gets
    # a fresh one, so that the next still reaches the logic instead of a 404 or a 409. They also run
    # last, so that a generated id that happens to be a seeded row's cannot spoil the others' rows.
    fresh: dict[str, Callable[[], dict[str, object]]] = field(default_factory=dict)


def seed_organization() -> Seed:
    org = factories.OrganizationFactory()
    _, serve_key = services.api_key_create(organization=org, scopes=[ApiKey.Scope.SERVE])
    _, manage_key = services.api_key_create(organization=org, scopes=[ApiKey.Scope.MANAGE])
    brand = factories.BrandFactory(organization=org)
    image = factories.BrandAssetFactory(brand=brand)
    factories.LoraAdapterFactory(brand=brand)
    campaign = factories.CampaignFactory(brand=brand, status=Campaign.Status.LIVE)
    hikers = factories.SegmentFactory(campaign=campaign, name="Hikers", position=0)
    factories.SegmentFactory(campaign=campaign, name="Gamers", position=1, attributes={"interests": ["games"]})
    clip = factories.ClipFactory(campaign=campaign, segment=hikers, status=Clip.Status.APPROVED)
    other_clip = factories.ClipFactory(campaign=campaign, segment=hikers, status=Clip.Status.APPROVED)
    factories.ClipFactory(campaign=campaign, segment=hikers)  # pending review
    viewer = factories.ProfileFactory(organization=org, external_id="fuzz-viewer")
    SegmentMembership.objects.create(organization=org, profile=viewer, campaign=campaign, segment=hikers,
                                     distance=0.1)
    job = factories.JobFactory(organization=org)
    webhook = factories.WebhookEndpointFactory(organization=org)
    factories.WebhookDeliveryFactory(endpoint=webhook)
    erased = itertools.count()

    def fresh_profile():
        return {"external_id": factories.ProfileFactory(organization=org, external_id=f"erased-{next(erased)}")
                .external_id}

    def fresh_campaign():
        other = factories.CampaignFactory(brand=brand, status=Campaign.Status.LIVE)
        factories.ClipFactory(campaign=other, status=Clip.Status.APPROVED)
        return {"campaign_id": other.pk}

    return Seed(
        serve_key=serve_key, manage_key=manage_key,
        path_ids={"brand_id": brand.pk, "campaign_id": campaign.pk, "segment_id": hikers.pk, "clip_id": clip.pk,
                  "job_id": job.pk, "webhook_id": webhook.pk, "external_id": viewer.external_id},
        query={"profile": viewer.external_id},
        body_ids={"brand": brand.pk, "start_image": image.pk, "clip": clip.pk, "clip_id": clip.pk,
                  "other_clip": other_clip.pk, "segment": hikers.pk, "profile": viewer.external_id},
        fresh={
            "DELETE /api/v1/profiles/{external_id}": fresh_profile,
            "POST /api/v1/clips/{clip_id}/review": lambda: {"clip_id": factories.ClipFactory(
                campaign=campaign, segment=hikers).pk},
            "POST /api/v1/jobs/{job_id}/cancel": lambda: {"job_id": factories.JobFactory(organization=org).pk},
            "DELETE /api/v1/webhooks/{webhook_id}": lambda: {"webhook_id": factories.WebhookEndpointFactory(
                organization=org).pk},
            "POST /api/v1/campaigns/{campaign_id}/status": fresh_campaign,
        },
    )


@pytest.fixture
def public_dns(monkeypatch):
    """Webhook URLs name hosts that the platform resolves (its SSRF guard): here every name but the
    live server's resolves to one public address, without asking any resolver."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in ("127.0.0.1", "localhost", "::1"):
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC_ADDRESS, port or 443))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


RECIPIENTS_UPLOAD = "POST /api/v1/campaigns/{campaign_id}/recipients"
# A recipients CSV that the upload takes (its rows are judged later, by the import job): an
# `external_id` column and attributes; some ids are bad on purpose.
CSV_ROWS = st.lists(st.tuples(st.from_regex(r"[A-Za-z0-9._:@-]{1,40}|[^,\n]{0,10}", fullmatch=True),
                              st.text(max_size=20), st.sampled_from(["minimal", "bold", ""])), min_size=1, max_size=8)


def recipients_csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["external_id", "interests", "style"])
    writer.writerows(rows)
    return out.getvalue().encode()


@dataclass
class Tally:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)  # (operation, status code): how many


def fuzz_operation(operation, *, base_url: str, seed: Seed, session: requests.Session, tally: Tally) -> None:
    serve = any("ServeApiKeyAuth" in requirement for requirement in operation.definition.raw.get("security", []))
    headers = {"Authorization": f"Api-Key {seed.serve_key if serve else seed.manage_key}"}
    names = {parameter.name for parameter in operation.iter_parameters()}
    path_ids = {name: value for name, value in seed.path_ids.items() if name in names} or None
    query = {name: value for name, value in seed.query.items() if name in names} or None
    fresh = seed.fresh.get(operation.label)
    strategies = {
        "seeded": operation.as_strategy(path_parameters=path_ids, query=query),
        "generated": operation.as_strategy(),
        # Invalid somewhere by the schema (the key included: schemathesis then leaves it out).
        "negative": operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=path_ids),
    }

    # The recipients upload's seeded requests carry a CSV it takes (a generated file never has the
    # `external_id` header), so that they reach the import; the others send what schemathesis makes.
    csv_upload = operation.label == RECIPIENTS_UPLOAD

    def send(kind: str, case, csv_rows) -> None:
        if kind == "seeded":
            if fresh is not None:
                case.path_parameters = {**case.path_parameters, **fresh()}
            if isinstance(case.body, dict):
                case.body = {**case.body, **{key: value for key, value in seed.body_ids.items() if key in case.body}}
                if csv_upload:
                    case.body = {**case.body, "file": recipients_csv(csv_rows)}
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        tally.requests += 1
        tally.answers[operation.label, response.status_code] += 1
        for check in CHECKS:  # one at a time, so that each failure names its check
            try:
                case.validate_response(response, checks=[check], headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    tally.failures.append(
                        f"{operation.label} ({kind} request) {check.__name__}: {failure.title}\n"
                        f"  request: {case.as_curl_command(headers=headers)}\n"
                        f"  answer: {response.status_code} {response.text[:500]}\n"
                        f"  {failure.message[:500]}")

    for kind, examples in EXAMPLES_PER_OPERATION.items():
        @hypothesis_settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategies[kind], csv_rows=CSV_ROWS if csv_upload else st.none())
        def run(case, csv_rows):
            send(kind, case, csv_rows)

        try:
            run()
        except Unsatisfiable:
            assert kind == "negative", f"{operation.label}: no {kind} request could be generated"
            # Nothing of it can be invalid (no parameters, no body, no key): GET /api/v1/health.


def test_every_operation_survives_the_fuzzer(live_server, transactional_db, public_dns):
    seed = seed_organization()
    base_url = live_server.url
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/schema/")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda operation: operation.label in seed.fresh)  # those that use up rows last
    tally = Tally()
    try:
        with requests.Session() as session:
            for operation in operations:
                fuzz_operation(operation, base_url=base_url, seed=seed, session=session, tally=tally)
    finally:
        broker_purge()  # no worker runs here: a later test's worker must not pick up tasks of rows that are gone

    print(f"{tally.requests} requests over {len(operations)} operations:")  # shown with -s or on failure
    for operation in operations:
        print(f"  {operation.label}: " + ", ".join(f"{code} x{n}" for (label, code), n in sorted(tally.answers.items())
                                                   if label == operation.label))
    assert len(operations) >= 30, [operation.label for operation in operations]
    assert tally.requests >= MIN_REQUESTS, f"only {tally.requests} requests over {len(operations)} operations"
    assert not tally.failures, (f"{len(tally.failures)} failures in {tally.requests} requests:\n\n"
                                + "\n\n".join(tally.failures))
