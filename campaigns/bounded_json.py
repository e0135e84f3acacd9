"""JSON from untrusted clients, refused when nested deeper than a limit before it is parsed, or
when it holds text that no database column can keep.

Python's decoder recurses once per level, so a body of 100,000 ``[`` raises RecursionError deep in
the parser (a 500). The depth is measured first, without recursion and on a copy with the strings
taken out, and a body past the limit is a ``JsonTooDeep`` (a ValueError) that callers turn into a
400. The API's parser and the dashboard's attribute field both read JSON through ``json_loads``.

``NaN``, ``Infinity`` and a number too large for a float (``1e400``) are not JSON, but Python's
decoder takes them, and PostgreSQL's jsonb then refuses what it gets (a 500): ``json_loads`` refuses
them as malformed, as DRF's own strict parser would.

``\\u0000`` and an unpaired ``\\ud800``..``\\udfff`` are valid JSON, but PostgreSQL takes neither in a
text or jsonb column (and psycopg cannot even encode the second): stored as they came, they were a
500. ``json_loads`` refuses them with ``JsonUnstorableText`` (a ValueError) naming where they are.
"""
import json
import math
import re

from django.conf import settings

# A JSON string, escapes included: brackets inside strings do not nest anything.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"JSON may nest at most {limit} levels deep.")


class JsonUnstorableText(ValueError):
    def __init__(self, path: list):
        self.path = path  # keys and indexes from the top, e.g. ["segments", 0, "name"]
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
        super().__init__(f"{where or 'the body'} holds a NUL character (\\u0000) or half of a surrogate pair "
                         "(\\ud800-\\udfff); text with either cannot be stored.")

    @property
    def field(self) -> str:
        """The top-level key it is under (what an API answer's `details` names)."""
        return self.path[0] if self.path and isinstance(self.path[0], str) else "non_field_errors"


# Only an escape can put either into parsed text (JSON forbids a raw control character in a string, and
# the body is decoded from UTF-8 first): the walk below runs only when one of these appears.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a surrogate the decoder could not pair
        return True
    return False


def json_unstorable_path(value) -> list | None:
    """Where the first string (or key) that a text column cannot keep is, or None."""
    stack = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _unstorable(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if _unstorable(key):
                    return [*path, key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")]
                stack.append((child, [*path, key]))
        elif isinstance(item, list):
            stack.extend((child, [*path, index]) for index, child in enumerate(item))
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


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
    """``json.loads`` that refuses nesting past ``max_depth`` (default: the JSON_MAX_DEPTH setting), what
    is not JSON (NaN, Infinity, 1e400: a ValueError) and text that cannot be stored."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    limit = json_max_depth() if max_depth is None else max_depth
    if json_depth(text) > limit:
        raise JsonTooDeep(limit)
    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    if _SUSPECT_ESCAPE.search(text):
        path = json_unstorable_path(value)
        if path is not None:
            raise JsonUnstorableText(path)
    return value
