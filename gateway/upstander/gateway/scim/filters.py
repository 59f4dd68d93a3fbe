"""SCIM filters and attribute paths (RFC 7644 3.4.2.2 and 3.5.2): parsed into a small tree,
evaluated against a resource as JSON.

Supported: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (...)`, parentheses, value
filters (`emails[type eq "work"].value eq "a@b.example"`), URN-qualified paths
(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`). Attribute names
are case-insensitive; string comparison is too, except for `id`, `externalId` and `value` of
references, which are case-exact (RFC 7643 2.4).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from upstander.gateway.scim.errors import ScimError

MAX_FILTER_LENGTH = 1000
CASE_EXACT = {"id", "externalid"}
OPERATORS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<lbracket>\[)
      | (?P<rbracket>\])
      | (?P<word>[A-Za-z0-9_:.$\-]+)
    )""",
    re.VERBOSE,
)


def bad_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


@dataclass(frozen=True)
class Path:
    """`urn` (None for the core schema), `attribute`, optional value `filter`, `sub`."""

    urn: str | None
    attribute: str
    filter: Any = None
    sub: str | None = None


@dataclass(frozen=True)
class Compare:
    path: Path
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    path: Path


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    inner: Any


@dataclass(frozen=True)
class ValuePath:
    """`attr[filter]` as a filter: true when some element of `attr` matches."""

    path: Path
    inner: Any


def split_attribute(text: str) -> tuple[str | None, str, str | None]:
    """`urn:...:User:manager.value` → (urn, "manager", "value"); `name.givenName` → (None,
    "name", "givenName")."""
    urn: str | None = None
    if text.lower().startswith("urn:"):
        urn, _, text = text.rpartition(":")
        if not urn or not text:
            raise bad_filter("An attribute path names no attribute.")
    attribute, _, sub = text.partition(".")
    if not attribute or not re.fullmatch(r"[A-Za-z$][A-Za-z0-9_$\-]*", attribute):
        raise bad_filter("An attribute path is malformed.")
    if sub and not re.fullmatch(r"[A-Za-z$][A-Za-z0-9_$\-]*", sub):
        raise bad_filter("An attribute path is malformed.")
    return urn, attribute, sub or None


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise bad_filter("The filter could not be parsed.")
        kind = found.lastgroup or ""
        tokens.append((kind, found.group(kind)))
        position = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise bad_filter("The filter is too long.")
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise bad_filter("The filter ended early.")
        self.index += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() in words:
            self.index += 1
            return token[1].lower()
        return None

    def parse(self) -> Any:
        tree = self.or_expression()
        if self.peek() is not None:
            raise bad_filter("The filter has trailing text.")
        return tree

    def or_expression(self) -> Any:
        left = self.and_expression()
        while self.keyword("or"):
            left = Logical("or", left, self.and_expression())
        return left

    def and_expression(self) -> Any:
        left = self.unary()
        while self.keyword("and"):
            left = Logical("and", left, self.unary())
        return left

    def unary(self) -> Any:
        if self.keyword("not"):
            if self.take()[0] != "lparen":
                raise bad_filter("`not` takes a parenthesised filter.")
            inner = self.or_expression()
            if self.take()[0] != "rparen":
                raise bad_filter("A parenthesis is not closed.")
            return Not(inner)
        kind, text = self.take()
        if kind == "lparen":
            inner = self.or_expression()
            if self.take()[0] != "rparen":
                raise bad_filter("A parenthesis is not closed.")
            return inner
        if kind != "word":
            raise bad_filter("An attribute path was expected.")
        urn, attribute, sub = split_attribute(text)
        token = self.peek()
        if token and token[0] == "lbracket":
            if sub:
                raise bad_filter("A value filter follows the attribute, not a sub-attribute.")
            self.take()
            inner = self.or_expression()
            if self.take()[0] != "rbracket":
                raise bad_filter("A bracket is not closed.")
            after = self.peek()
            if after and after[0] == "word" and after[1].startswith("."):
                # `emails[type eq "work"].value eq "x"`: the tokenizer keeps `.value` as a word.
                self.take()
                path = Path(urn, attribute, inner, after[1][1:])
                return self.comparison(path)
            return ValuePath(Path(urn, attribute), inner)
        return self.comparison(Path(urn, attribute, None, sub))

    def comparison(self, path: Path) -> Any:
        if self.keyword("pr"):
            return Present(path)
        op = self.keyword(*OPERATORS)
        if op is None:
            raise bad_filter("A comparison operator was expected.")
        kind, text = self.take()
        if kind == "string":
            try:
                value: Any = json.loads(text)
            except ValueError:
                raise bad_filter("A string in the filter is malformed.") from None
        elif kind == "word" and text.lower() in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[text.lower()]
        elif kind == "word" and re.fullmatch(r"-?\d+(\.\d+)?", text):
            value = float(text) if "." in text else int(text)
        else:
            raise bad_filter("A comparison value was expected.")
        return Compare(path, op, value)


def parse_filter(text: str) -> Any:
    return _Parser(text).parse()


def parse_path(text: str) -> Path:
    """A PATCH `path`: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, URN-qualified."""
    parser = _Parser(text)
    kind, word = parser.take()
    if kind != "word":
        raise ScimError(400, "The path is malformed.", "invalidPath")
    try:
        urn, attribute, sub = split_attribute(word)
    except ScimError:
        raise ScimError(400, "The path is malformed.", "invalidPath") from None
    value_filter = None
    token = parser.peek()
    if token and token[0] == "lbracket":
        parser.take()
        value_filter = parser.or_expression()
        if parser.take()[0] != "rbracket":
            raise ScimError(400, "A bracket is not closed.", "invalidPath")
        after = parser.peek()
        if after and after[0] == "word" and after[1].startswith("."):
            parser.take()
            sub = after[1][1:]
    if parser.peek() is not None:
        raise ScimError(400, "The path has trailing text.", "invalidPath")
    return Path(urn, attribute, value_filter, sub)


# ----------------------------------------------------------------------------- evaluation


def get_ci(mapping: Any, key: str) -> Any:
    """`mapping[key]`, attribute names compared case-insensitively."""
    if not isinstance(mapping, dict):
        return None
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if name.lower() == lowered:
            return value
    return None


def resolve(resource: dict[str, Any], path: Path, core_urns: tuple[str, ...]) -> list[Any]:
    """The values `path` names in `resource` (flattened over multi-valued attributes)."""
    container: Any = resource
    if path.urn is not None and path.urn.lower() not in (urn.lower() for urn in core_urns):
        container = get_ci(resource, path.urn)
    value = get_ci(container, path.attribute)
    values = value if isinstance(value, list) else [] if value is None else [value]
    if path.filter is not None:
        values = [item for item in values if matches(item, path.filter, core_urns)]
    if path.sub is not None:
        values = [get_ci(item, path.sub) for item in values]
        values = [item for item in values if item is not None]
    return values


def _compare(found: Any, op: str, wanted: Any, exact: bool) -> bool:
    if isinstance(found, dict):  # a complex value compares through its `value`
        found = get_ci(found, "value")
    if isinstance(found, bool) or isinstance(wanted, bool):
        return (op == "eq" and found == wanted) or (op == "ne" and found != wanted)
    if isinstance(found, str) and isinstance(wanted, str):
        if not exact:
            found, wanted = found.lower(), wanted.lower()
    elif found is None or wanted is None:
        return (op == "eq") == (found == wanted) if op in ("eq", "ne") else False
    try:
        if op == "eq":
            return bool(found == wanted)
        if op == "ne":
            return bool(found != wanted)
        if op == "co":
            return isinstance(found, str) and wanted in found
        if op == "sw":
            return isinstance(found, str) and found.startswith(wanted)
        if op == "ew":
            return isinstance(found, str) and found.endswith(wanted)
        return bool(
            {
                "gt": found > wanted,
                "ge": found >= wanted,
                "lt": found < wanted,
                "le": found <= wanted,
            }[op]
        )
    except TypeError:
        return False


def matches(resource: Any, tree: Any, core_urns: tuple[str, ...] = ()) -> bool:
    if isinstance(tree, Logical):
        left = matches(resource, tree.left, core_urns)
        if tree.op == "and":
            return left and matches(resource, tree.right, core_urns)
        return left or matches(resource, tree.right, core_urns)
    if isinstance(tree, Not):
        return not matches(resource, tree.inner, core_urns)
    if isinstance(tree, ValuePath):
        items = get_ci(resource, tree.path.attribute) if isinstance(resource, dict) else None
        if tree.path.urn is not None and isinstance(resource, dict):
            items = get_ci(get_ci(resource, tree.path.urn) or {}, tree.path.attribute)
        items = items if isinstance(items, list) else [] if items is None else [items]
        return any(matches(item, tree.inner, core_urns) for item in items)
    if not isinstance(resource, dict):
        return False
    values = resolve(resource, tree.path, core_urns)
    if isinstance(tree, Present):
        return any(value not in (None, "", [], {}) for value in values)
    exact = tree.path.attribute.lower() in CASE_EXACT and tree.path.sub is None
    if tree.op == "ne":
        return (
            all(_compare(value, "ne", tree.value, exact) for value in values)
            if values
            else (tree.value is not None)
        )
    return any(_compare(value, tree.op, tree.value, exact) for value in values)
