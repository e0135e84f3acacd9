"""Audience segments from profile embeddings: k-means, words for each cluster, nearest centroid.

Segments are k-anonymous (``min_size``, the SEGMENT_MIN_SIZE setting): a cluster smaller than
``min_size`` merges into its nearest neighbour, and a cluster is described only by values that at
least ``min_size`` of its members hold, so no segment's words, name or centroid single anyone out.

Embeddings are unit vectors, so distances are cosine distances (1 − dot product) and centroids
are re-normalised onto the sphere. Knows nothing of Django; scikit-learn is imported inside
``kmeans`` so that merely importing this module stays cheap.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from generation.embeddings import attributes_key
from generation.personalization import GENERAL_SEGMENT

# A value describes a cluster when at least this share of its members have it.
MIN_SHARE = 0.5
# A segment's attributes stay short: they become words of a video prompt.
MAX_LIST_ITEMS = 5
MAX_NAME_VALUES = 2
MAX_NAME_CHARS = 120


@dataclass
class Cluster:
    """One k-means cluster: its centroid, its members (row indexes), and how it reads."""

    centroid: np.ndarray
    members: list[int]
    name: str = ""
    attributes: dict = field(default_factory=dict)


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def kmeans(embeddings: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster unit vectors into at most ``k`` groups: (labels per row, unit centroids).

    Fewer distinct vectors than ``k`` give as many clusters as there are distinct vectors (k-means
    cannot split identical points). Same input and seed, same answer.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise ValueError(f"kmeans needs a non-empty 2-D array of embeddings; got shape {embeddings.shape}.")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    distinct = len(np.unique(embeddings.round(5), axis=0))
    k = min(k, distinct)
    if k == 1:
        return np.zeros(len(embeddings), dtype=np.int64), normalise(embeddings.mean(axis=0, keepdims=True))

    from sklearn.cluster import KMeans

    # n_init=4: a few restarts buy stable clusters on small audiences at little cost.
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(embeddings)
    return model.labels_.astype(np.int64), normalise(model.cluster_centers_)


def nearest(embedding, centroids) -> tuple[int, float]:
    """Index of the nearest centroid and its cosine distance (0 = same direction, 2 = opposite)."""
    centroids = np.asarray(centroids, dtype=np.float32)
    if centroids.ndim != 2 or len(centroids) == 0:
        raise ValueError("nearest needs at least one centroid.")
    similarities = centroids @ np.asarray(embedding, dtype=np.float32)
    index = int(np.argmax(similarities))
    return index, float(1.0 - similarities[index])


def nearest_many(embeddings, centroids) -> tuple[np.ndarray, np.ndarray]:
    """``nearest`` for many rows at once: (indexes, distances)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if len(embeddings) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    similarities = embeddings @ np.asarray(centroids, dtype=np.float32).T
    indexes = np.argmax(similarities, axis=1)
    return indexes, 1.0 - similarities[np.arange(len(embeddings)), indexes]


def _value_counts(members: list[dict]) -> dict[str, Counter]:
    """Per attribute key, how many members hold each value; list items count one by one."""
    counts: dict[str, Counter] = {}
    for attributes in members:
        for key, value in attributes.items():
            if value is None or value == "" or value == [] or value == {}:
                continue
            bucket = counts.setdefault(str(key), Counter())
            items = value if isinstance(value, list) else [value]
            for item in {attributes_key(v): v for v in items}:  # once per member
                bucket[item] += 1
    return counts


def describe(members: list[dict], population: list[dict] | None = None, min_count: int = 1) -> tuple[str, dict]:
    """A cluster in words: (name, attributes) from its members' most common attribute values.

    Attributes keep, per key, the values held by at least half the members and by at least
    ``min_count`` of them (a list key keeps up to five items, most common first; a single-valued
    key its most common value). The name is made of the values that set the cluster apart most
    from the whole ``population``, so it carries no value the attributes do not.
    """
    if not members:
        return GENERAL_SEGMENT, {}
    size = len(members)
    counts = _value_counts(members)
    overall = _value_counts(population) if population else counts
    total = len(population) if population else size
    list_keys = {str(k) for m in members for k, v in m.items() if isinstance(v, list)}

    attributes: dict = {}
    candidates = []  # (lift, share, key, value) for the name
    for key in sorted(counts):
        common = [(item, n) for item, n in counts[key].most_common() if n / size >= MIN_SHARE and n >= min_count]
        common.sort(key=lambda pair: (-pair[1], pair[0]))
        if not common:
            continue
        values = [json.loads(item) for item, _ in common]
        attributes[key] = values[:MAX_LIST_ITEMS] if key in list_keys else values[0]
        for (item, n), value in zip(common, values, strict=True):
            share = n / size
            lift = share - overall[key][item] / total
            candidates.append((lift, share, key, value))

    candidates.sort(key=lambda c: (-c[0], -c[1], c[2], attributes_key(c[3])))
    words = []
    for _, _, _, value in candidates:
        word = _name_word(value)
        if word and word not in words:
            words.append(word)
        if len(words) == MAX_NAME_VALUES:
            break
    name = " · ".join(words)[:MAX_NAME_CHARS] if words else GENERAL_SEGMENT
    return name, attributes


def _name_word(value) -> str:
    if isinstance(value, (dict, list)):
        return ""
    return " ".join(str(value).split())[:60]


def merge_small(clusters: list[Cluster], embeddings: np.ndarray, min_size: int) -> list[Cluster]:
    """Merge every cluster of fewer than ``min_size`` members into the one whose centroid is nearest,
    smallest first, recomputing centroids from the members; one cluster may stay below ``min_size``
    only when it is all there is (the caller then treats it as the general segment)."""
    clusters = [c for c in clusters if c.members]
    while len(clusters) > 1:
        smallest = min(clusters, key=lambda c: (len(c.members), c.members[0]))
        if len(smallest.members) >= min_size:
            break
        others = [c for c in clusters if c is not smallest]
        target = others[int(np.argmax([float(smallest.centroid @ c.centroid) for c in others]))]
        target.members = sorted(target.members + smallest.members)
        target.centroid = normalise(np.asarray(embeddings, dtype=np.float32)[target.members].mean(axis=0))
        clusters = others
    return clusters


def segment(embeddings: np.ndarray, attributes: list[dict], k: int, seed: int, min_size: int = 1) -> list[Cluster]:
    """k-means plus words: clusters biggest first, each with a unique name and its attributes.

    Clusters under ``min_size`` are merged into their nearest neighbours, and each is described only
    by values at least ``min_size`` of its members hold (see ``describe``).
    """
    if len(embeddings) != len(attributes):
        raise ValueError(f"{len(embeddings)} embeddings but {len(attributes)} attribute objects.")
    labels, centroids = kmeans(embeddings, k, seed)
    clusters = [Cluster(centroid=centroids[i], members=[int(j) for j in np.flatnonzero(labels == i)])
                for i in range(len(centroids))]
    clusters = merge_small(clusters, embeddings, max(1, min_size))
    # Biggest audience first: position 0 is also the campaign's fallback segment.
    clusters.sort(key=lambda c: (-len(c.members), c.members[0]))
    used: set[str] = set()
    for cluster in clusters:
        name, cluster.attributes = describe([attributes[i] for i in cluster.members], attributes,
                                            min_count=max(1, min_size))
        cluster.name = unique_name(name, used)
        used.add(cluster.name)
    return clusters


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``… the first not in ``used``."""
    unique, n = name, 2
    while unique in used:
        unique, n = f"{name} ({n})", n + 1
    return unique
