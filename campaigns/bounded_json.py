"""JSON from untrusted clients, refused when nested deeper than a limit before it is parsed.

Python's decoder recurses once per level, so a body of 100,000 ``[`` raises RecursionError deep in
the parser (a 500). The depth is measured first, without recursion and on a copy with the strings
taken out, and a body past the limit is a ``JsonTooDeep`` (a ValueError) that callers turn into a
400. The API's parser and the dashboard's attribute field both read JSON through ``json_loads``.
"""
import json
import re

from django.conf import settings

# A JSON string, escapes included: brackets inside strings do not nest anything.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"JSON may nest at most {limit} levels deep.")


def json_depth(text: str) -> int:
    """How deep the arrays and objects of ``text`` nest (0 for a scalar); malformed text may err either way."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def json_max_depth() -> int:
    return settings.JSON_MAX_DEPTH


def json_loads(text: str | bytes, *, max_depth: int | None = None):
    """``json.loads`` that refuses nesting past ``max_depth`` (default: the JSON_MAX_DEPTH setting)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    limit = json_max_depth() if max_depth is None else max_depth
    if json_depth(text) > limit:
        raise JsonTooDeep(limit)
    return json.loads(text)
