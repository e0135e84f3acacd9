"""Optional brief expansion by a language model, before the deterministic prompt builder.

Sora and DALL-E 3 rewrite a short request into a vivid caption with a language model. When an
OpenAI-compatible server is configured (llama.cpp's server, vLLM, Ollama, OpenAI itself), a
campaign's brief goes through one chat-completions call that rewrites it into one scene
description; the rest of the prompt is built from it by ``generation.prompts`` as always, and the
result is stored with every clip, so clips stay explainable.

Expansion is a nicety, never a dependency: any failure (no connection, a timeout, a non-200
answer, bad JSON, an empty or over-long answer) gives back the brief as written with the reason,
and the call never takes longer than its deadline, whatever the server does (the request runs in
a daemon thread that the caller stops waiting for). Knows nothing of Django; uses requests.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from generation.limits import MAX_BRIEF_CHARS

SYSTEM_PROMPT = (
    "You rewrite an advertising brief into one vivid scene description for a text-to-video model. "
    "Keep every product fact of the brief (names, features, claims) and invent none. Describe what "
    "is seen: subject, action, surroundings, light. Write one paragraph of at most "
    f"{MAX_BRIEF_CHARS} characters, in the same language as the brief. Answer with the description "
    "only: no title, no quotes, no notes."
)
# Bounds on PROMPT_EXPANDER_TIMEOUT: below 1 s no model answers; above 120 s a generation job
# would mostly wait on the text.
MIN_TIMEOUT_S = 1.0
MAX_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Expansion:
    brief: str  # what the prompt builder gets: the expansion, or the brief as written
    used: bool
    reason: str  # "expanded", "off", or why it fell back
    seconds: float
    model: str = ""

    def as_record(self) -> dict:
        """What a job records: whether expansion was used, why not, and how long it took."""
        return {"used": self.used, "reason": self.reason, "model": self.model, "seconds": round(self.seconds, 3)}


def bounded_timeout(value: float) -> float:
    return min(MAX_TIMEOUT_S, max(MIN_TIMEOUT_S, float(value)))


def expand_brief(brief: str, *, url: str, model: str = "", timeout: float = 10.0) -> Expansion:
    """The brief rewritten by the model at ``url`` (an OpenAI-compatible base URL, e.g.
    ``http://127.0.0.1:8080/v1``), or the brief as written with the reason; within ``timeout`` s."""
    if not url:
        return Expansion(brief, False, "off", 0.0, model)
    timeout = bounded_timeout(timeout)
    started = time.monotonic()
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["text"] = _ask(brief, url=url, model=model, timeout=timeout)
        except _Refused as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # any transport error is a fallback, never a failed job
            outcome["error"] = f"request failed: {type(exc).__name__}: {exc}"[:300]

    worker = threading.Thread(target=call, name="prompt-expander", daemon=True)
    worker.start()
    worker.join(timeout)
    seconds = time.monotonic() - started
    if worker.is_alive():
        return Expansion(brief, False, f"timed out after {timeout:g} s", seconds, model)
    if "error" in outcome:
        return Expansion(brief, False, outcome["error"], seconds, model)
    return Expansion(outcome["text"], True, "expanded", seconds, model)


class _Refused(Exception):
    """An answer that came back but cannot be used."""


def _ask(brief: str, *, url: str, model: str, timeout: float) -> str:
    import requests

    body = {
        "model": model or "default",
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": brief}],
        "temperature": 0.2,
        "max_tokens": 400,
    }
    # requests' timeouts are per connect and per read; the caller's join() bounds the whole call.
    response = requests.post(f"{url.rstrip('/')}/chat/completions", json=body, timeout=(timeout, timeout))
    if response.status_code != 200:
        raise _Refused(f"the server answered {response.status_code}")
    try:
        text = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _Refused("the answer is not a chat completion (bad JSON)") from None
    if not isinstance(text, str):
        raise _Refused("the answer is not a chat completion (bad JSON)")
    text = " ".join(text.split()).strip("\"'“”「」 ")
    if not text:
        raise _Refused("the answer is empty")
    if len(text) > MAX_BRIEF_CHARS:
        raise _Refused(f"the answer is {len(text)} characters, over {MAX_BRIEF_CHARS}")
    return text
