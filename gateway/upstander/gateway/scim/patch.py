"""SCIM PATCH (RFC 7644 3.5.2) on a resource held as JSON, with what Okta and Microsoft Entra
ID actually send:

- `op` in any case (`"Replace"`, `"Add"`, `"Remove"`: Entra capitalises);
- operations without a `path` whose `value` is an object of attributes, keyed by plain names,
  dotted sub-attributes (`"name.givenName"`) or URN-qualified names
  (`"urn:...:enterprise:2.0:User:department"`) (Entra, and Okta's `{"active": false}`);
- booleans sent as strings (`"False"`, Entra's `active`);
- the enterprise `manager` given as a bare id string (Entra) rather than `{"value": id}`;
- value filters on multi-valued attributes (`emails[type eq "work"].value`,
  `members[value eq "..."]`).

The patched JSON is then written back by the same code as a PUT, so both paths apply one set of
rules."""

from __future__ import annotations

import copy
from typing import Any

from upstander.gateway.scim.errors import ScimError
from upstander.gateway.scim.filters import Path, get_ci, matches, parse_path

MAX_OPERATIONS = 100
# Mark an extension whose `roles` or `isLeadership` a PATCH removed (read by users.read_user:
# a removal takes the value away, where a PUT that leaves it out keeps it).
ROLES_REMOVED = "$rolesRemoved"
LEADERSHIP_REMOVED = "$leadershipRemoved"


def _key(container: dict[str, Any], name: str) -> str:
    """The key under which `name` lives in `container` (case-insensitively), or `name`."""
    lowered = name.lower()
    for key in container:
        if key.lower() == lowered:
            return key
    return name


def _target(resource: dict[str, Any], path: Path, core_urns: tuple[str, ...]) -> dict[str, Any]:
    """The object that holds `path.attribute`: the resource, or its extension's object."""
    if path.urn is None or path.urn.lower() in (urn.lower() for urn in core_urns):
        return resource
    key = _key(resource, path.urn)
    holder = resource.get(key)
    if not isinstance(holder, dict):
        holder = {}
        resource[key] = holder
    return holder


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _same_item(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return get_ci(a, "value") == get_ci(b, "value") and get_ci(a, "value") is not None
    return bool(a == b)


def _apply_path(
    resource: dict[str, Any],
    op: str,
    path: Path,
    value: Any,
    core_urns: tuple[str, ...],
    multi_valued: set[str],
    set_on_add: frozenset[str] = frozenset(),
) -> None:
    holder = _target(resource, path, core_urns)
    key = _key(holder, path.attribute)
    is_multi = path.attribute.lower() in multi_valued
    if f"{path.urn or ''}:{path.attribute}".lower() in set_on_add and path.filter is None:
        is_multi = False  # a whole set of values: `add` sets it (the caller documents why)
    if path.filter is not None:
        items = holder.get(key)
        items = items if isinstance(items, list) else []
        chosen = [item for item in items if matches(item, path.filter, core_urns)]
        if op == "remove":
            if path.sub is None:
                holder[key] = [item for item in items if item not in chosen]
            else:
                for item in chosen:
                    item.pop(_key(item, path.sub), None)
            return
        if not chosen:
            if op == "replace" and path.sub is None:
                raise ScimError(400, "No value matches the path's filter.", "noTarget")
            # Entra's `emails[type eq "work"].value` on a user without one: make it.
            new_item: dict[str, Any] = _seed(path.filter)
            items.append(new_item)
            holder[key] = items
            chosen = [new_item]
        for item in chosen:
            if path.sub is None:
                if not isinstance(value, dict):
                    raise ScimError(400, "A filtered path takes an object.", "invalidValue")
                item.update(value)
            else:
                item[_key(item, path.sub)] = value
        return
    if path.sub is not None:
        parent = holder.get(key)
        if op == "remove":
            if isinstance(parent, dict):
                parent.pop(_key(parent, path.sub), None)
            return
        if not isinstance(parent, dict):
            parent = {}
            holder[key] = parent
        parent[_key(parent, path.sub)] = value
        return
    if op == "remove":
        if value is not None and is_multi and isinstance(holder.get(key), list):
            # Entra: `{"op": "Remove", "path": "members", "value": [{"value": id}]}`.
            gone = _as_list(value)
            holder[key] = [
                item for item in holder[key] if not any(_same_item(item, g) for g in gone)
            ]
        else:
            holder.pop(key, None)
        return
    if op == "add" and is_multi:
        current = holder.get(key)
        current = current if isinstance(current, list) else []
        for item in _as_list(value):
            if not any(_same_item(item, known) for known in current):
                current.append(item)
        holder[key] = current
        return
    if op == "add" and isinstance(value, dict) and isinstance(holder.get(key), dict):
        holder[key].update(value)  # add merges a complex attribute's sub-attributes
        return
    holder[key] = value


def _seed(value_filter: Any) -> dict[str, Any]:
    """A new element that satisfies a simple `attr eq "x"` filter (`type eq "work"`)."""
    from upstander.gateway.scim.filters import Compare

    if isinstance(value_filter, Compare) and value_filter.op == "eq":
        return {value_filter.path.attribute: value_filter.value}
    return {}


def apply_patch(
    resource: dict[str, Any],
    body: dict[str, Any],
    *,
    patch_schema: str,
    core_urns: tuple[str, ...],
    extension_urns: tuple[str, ...],
    multi_valued: set[str],
    set_on_add: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """`resource` (unchanged) with the PatchOp `body` applied: a new dict. `set_on_add` names
    (`urn:attribute`, lowercased) multi-valued attributes whose `add` sets the whole value
    rather than appending to it."""
    schemas = get_ci(body, "schemas")
    if not isinstance(schemas, list) or patch_schema not in schemas:
        raise ScimError(400, f"A PATCH body names the schema {patch_schema}.", "invalidSyntax")
    operations = get_ci(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "A PATCH body holds a list of Operations.", "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise ScimError(400, "Too many operations in one PATCH.", "tooMany")
    patched = copy.deepcopy(resource)
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "An operation is an object.", "invalidSyntax")
        op = str(get_ci(operation, "op") or "").lower()
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, "An operation's op is add, replace or remove.", "invalidSyntax")
        raw_path = get_ci(operation, "path")
        value = get_ci(operation, "value")
        if raw_path in (None, ""):
            if op == "remove":
                raise ScimError(400, "A remove operation needs a path.", "noTarget")
            if not isinstance(value, dict):
                raise ScimError(400, "An operation without a path takes an object.", "invalidValue")
            for name, item in value.items():
                known = next((u for u in extension_urns if u.lower() == name.lower()), None)
                if known is not None and isinstance(item, dict):
                    for sub_name, sub_value in item.items():
                        path = parse_path(f"{known}:{sub_name}")
                        _apply_path(
                            patched, op, path, sub_value, core_urns, multi_valued, set_on_add
                        )
                    continue
                if name.lower() == "schemas":
                    continue
                path = parse_path(str(name))
                _apply_path(patched, op, path, item, core_urns, multi_valued, set_on_add)
            continue
        if not isinstance(raw_path, str):
            raise ScimError(400, "A path is a string.", "invalidPath")
        whole = next((u for u in extension_urns if u.lower() == raw_path.lower()), None)
        if whole is not None:
            # The path names a whole extension: its object is added, replaced or removed.
            key = _key(patched, whole)
            if op == "remove":
                patched[key] = {ROLES_REMOVED: True, LEADERSHIP_REMOVED: True}
            elif not isinstance(value, dict):
                raise ScimError(400, "An extension's value is an object.", "invalidValue")
            elif op == "add" and isinstance(patched.get(key), dict):
                patched[key] = {**patched[key], **value}
            else:
                patched[key] = dict(value)
            continue
        path = parse_path(raw_path)
        _apply_path(patched, op, path, value, core_urns, multi_valued, set_on_add)
        if op == "remove" and path.urn and path.sub is None and path.filter is None:
            marker = {"roles": ROLES_REMOVED, "isleadership": LEADERSHIP_REMOVED}.get(
                path.attribute.lower()
            )
            if marker is not None:
                _target(patched, path, core_urns)[marker] = True
    return patched
