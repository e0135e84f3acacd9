"""Setting suggestions: the catalogue entry nearest to a segment, by the embedding that places viewers.

Each catalogue entry's ``suggestion_text`` (its phrase and the audiences it suits) is embedded once
per process with the same MiniLM model as profiles and segments (``generation.embeddings``); a
segment's embedding (its centroid) then picks the entry of highest cosine similarity. Both sides
are unit vectors, so cosine is a dot product. Knows nothing of Django; workers only (the model
loads on first use).
"""

from __future__ import annotations

import threading

import numpy as np

from generation.personalization import SETTINGS_CATALOGUE, SettingEntry

_lock = threading.Lock()
_VECTORS: np.ndarray | None = None


def catalogue_vectors() -> np.ndarray:
    """Unit embeddings of the catalogue, one row per entry, computed once per process."""
    global _VECTORS
    if _VECTORS is None:
        with _lock:
            if _VECTORS is None:
                from generation.embeddings import embed_texts

                _VECTORS = embed_texts([entry.suggestion_text for entry in SETTINGS_CATALOGUE])
    return _VECTORS


def suggest_settings(vectors) -> list[SettingEntry]:
    """The nearest catalogue entry for each segment embedding (rows of ``vectors``)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if not len(matrix):
        return []
    catalogue = catalogue_vectors()
    if matrix.shape[1] != catalogue.shape[1]:
        raise ValueError(f"segment embeddings have {matrix.shape[1]} dimensions; the catalogue's have "
                         f"{catalogue.shape[1]} (embed segments with generation.embeddings).")
    # Centroids read back from JSON may have drifted off unit length: normalise before comparing.
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = (matrix / np.where(norms > 0, norms, 1.0)) @ catalogue.T
    return [SETTINGS_CATALOGUE[int(i)] for i in scores.argmax(axis=1)]


def suggest_setting(vector) -> SettingEntry:
    """The nearest catalogue entry for one segment embedding."""
    return suggest_settings(vector)[0]
