"""Production settings and deployment files (issue 12): a shared Redis cache for rate limits, no
secret placeholder that would pass the deploy check, X-Forwarded-* believed only behind a declared
proxy; and requests without a valid key throttled per client address."""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.helpers import assert_error


ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "adplatform.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 10 + "a-long-random-production-secret-key-0123456789abcdefgh",
    "DJANGO_ALLOWED_HOSTS": "ads.example.com",
    "DATABASE_URL": "sqlite:////tmp/adplatform-deploy-check.sqlite3",
    "CACHE_URL": "rediscache://127.0.0.1:6379/1",
}

SHOW = ("import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'cache': s.CACHES['default']['BACKEND'], 'location': s.CACHES['default'].get('LOCATION'), "
        "'proxy_header': getattr(s, 'SECURE_PROXY_SSL_HEADER', None), 'behind_proxy': s.BEHIND_PROXY}))")


def production(**changes) -> subprocess.CompletedProcess:
    """The settings a fresh production process reads, with ``changes`` to its environment (None:
    unset). Each environment starts one interpreter per session: the answer cannot change."""
    return _production(tuple(sorted(changes.items())))


@functools.lru_cache(maxsize=None)
def _production(changes: tuple) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CACHE_URL"))}
    env = {**base, **PRODUCTION, **dict(changes)}
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_production_uses_the_cache_url_and_refuses_to_start_without_one():
    shown = production()
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert settings["location"] == "redis://127.0.0.1:6379/1"

    missing = production(CACHE_URL=None)
    assert missing.returncode != 0 and "CACHE_URL is not set" in missing.stderr


@pytest.mark.slow
def test_forwarded_proto_is_believed_only_behind_a_declared_proxy():
    direct = json.loads(production().stdout)
    assert direct["proxy_header"] is None and direct["behind_proxy"] is False
    proxied = json.loads(production(DJANGO_BEHIND_PROXY="1").stdout)
    assert proxied["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"] and proxied["behind_proxy"] is True


def _app_env(compose: dict) -> dict:
    return compose["services"]["web"]["environment"]


def test_compose_requires_a_secret_key_and_shares_a_redis_cache():
    compose = yaml.safe_load((ROOT / "infra/compose.yaml").read_text())
    env = _app_env(compose)
    # Compose's ${VAR:?message}: no value of its own, refuses to start unless the variable is set.
    assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert env["CACHE_URL"].startswith("rediscache://redis:")
    assert env["DJANGO_BEHIND_PROXY"] == "0"  # gunicorn is published directly
    for service in ("cpu-worker", "gpu-worker"):
        assert compose["services"][service]["environment"]["CACHE_URL"] == env["CACHE_URL"]


def test_k8s_pods_share_a_redis_cache_and_trust_only_their_ingress():
    documents = [doc for name in ("web.yaml", "gpu-worker.yaml")
                 for doc in yaml.safe_load_all((ROOT / "infra/k8s" / name).read_text())]
    deployments = [doc for doc in documents if doc["kind"] == "Deployment"]
    assert len(deployments) == 3
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        assert env["CACHE_URL"].startswith("rediscache://"), deployment["metadata"]["name"]
    web = next(d for d in deployments if d["metadata"]["name"] == "adplatform-web")
    web_env = {item["name"]: item["value"] for item in web["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert web_env["DJANGO_BEHIND_PROXY"] == "1"
    ingress = next(doc for doc in documents if doc["kind"] == "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "51m"


# --- requests without a valid key are throttled per address ----------------------------------------

@pytest.fixture
def anon_rate():
    from django.core.cache import cache
    from rest_framework.settings import api_settings

    from campaigns.api.throttles import AnonymousIpRateThrottle

    cache.clear()
    original = AnonymousIpRateThrottle.THROTTLE_RATES
    AnonymousIpRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "anon_ip": "3/min"}
    yield
    AnonymousIpRateThrottle.THROTTLE_RATES = original
    cache.clear()


@pytest.mark.django_db
def test_bad_keys_and_no_keys_are_throttled_per_address(client, anon_rate, full_client):
    def attempt(ip: str, **headers):
        return client.get("/api/v1/jobs/1", REMOTE_ADDR=ip, **headers)

    statuses = [attempt("203.0.113.5", HTTP_AUTHORIZATION="Api-Key adp_wrong").status_code,
                attempt("203.0.113.5").status_code,
                attempt("203.0.113.5", HTTP_AUTHORIZATION="Bearer x").status_code]
    assert statuses == [401, 401, 401]
    throttled = attempt("203.0.113.5", HTTP_AUTHORIZATION="Api-Key adp_wrong")
    body = assert_error(throttled, 429, "rate_limited")
    assert int(throttled["Retry-After"]) >= 1 and body["details"]["retry_after_seconds"] >= 1
    # Another address still gets its 401; a valid key from the throttled address is not refused.
    assert attempt("198.51.100.8").status_code == 401
    assert full_client.get("/api/v1/presets", REMOTE_ADDR="203.0.113.5").status_code == 200


@pytest.mark.django_db
def test_forwarded_for_does_not_pick_the_counter_unless_behind_a_proxy(client, anon_rate, settings):
    settings.BEHIND_PROXY = False
    statuses = [client.get("/api/v1/jobs/1", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
                for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    settings.BEHIND_PROXY = True
    assert client.get("/api/v1/jobs/1", REMOTE_ADDR="10.0.0.1",
                      HTTP_X_FORWARDED_FOR="192.0.2.77").status_code == 401


# --- manage.py under production settings (moved from the foundation tests) --------------------------

def _manage(*args, env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
