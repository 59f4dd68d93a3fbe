"""A small kustomize renderer for the deployment tests: `render(folder)` is what
`kubectl kustomize folder` prints, for the subset of kustomize that `deploy/k8s/` uses.

kubectl is not on the development and CI machines (and cannot be installed from the
registries they reach), so the suite renders the manifests itself. The subset, with
kustomize's semantics:

- `resources`: YAML files (one or more documents) and folders holding a kustomization;
- `configMapGenerator` with `literals` and `envs`, behaviours `create`, `merge` and
  `replace`; the generated name gets a content-hash suffix computed as kustomize computes it,
  and references to it from pod specs (`envFrom`, `env.valueFrom`, `volumes`) follow;
- `patches`: one patch per entry (inline `patch` or `path`), strategic merge (lists of
  containers, env, ports, volumes and mounts merged by key, other lists replaced, `null`
  deletes) or JSON 6902 (`add`, `replace`, `remove`), with an optional `target` (kind, name,
  namespace, group, version as regular expressions; `labelSelector` of `k=v` pairs);
- `namespace` on namespaced resources, `images` (`newName`, `newTag`, `digest`).

Anything else in a kustomization is refused, so a manifest change that needs more of
kustomize fails here instead of rendering silently wrong.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
# libyaml's loader where PyYAML has it: ten times faster than the pure-Python one.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SUPPORTED_FIELDS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "configMapGenerator", "images", "patches"}
)
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
# Strategic merge: the key that identifies an item of these lists (Kubernetes' patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "envFrom": None,  # no merge key: replaced, as in Kubernetes
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "tolerations": None,
}
# Marks a ConfigMap this renderer generated (removed before output).
GENERATED = "__kustomize_support_generated__"


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not do, or is wrong."""


def load_documents(path: Path) -> list[Resource]:
    with path.open() as handle:
        documents = [d for d in yaml.load_all(handle, Loader=Loader) if d is not None]
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document:
            raise KustomizeError(f"{path}: every document must be a resource with a kind")
    return documents


def render(folder: Path) -> list[Resource]:
    """The resources `kubectl kustomize folder` would print (order aside)."""
    resources = _build(folder)
    _name_generated(resources)
    for resource in resources:
        resource.pop(GENERATED, None)
    return resources


def render_yaml(folder: Path) -> str:
    return yaml.safe_dump_all(render(folder), sort_keys=False)


# ----------------------------------------------------------------------------- one level


def _build(folder: Path) -> list[Resource]:
    path = folder / "kustomization.yaml"
    kustomization = yaml.load(path.read_text(), Loader=Loader) or {}
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{path}: not a Kustomization")

    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        resources.extend(_build(target) if target.is_dir() else load_documents(target))
    for generator in kustomization.get("configMapGenerator", []):
        _generate(folder, generator, resources)
    for patch in kustomization.get("patches", []):
        _patch(folder, patch, resources)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        _set_image(image, resources)
    _check_unique(resources, path)
    return resources


def _check_unique(resources: list[Resource], path: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for resource in resources:
        key = (
            resource["apiVersion"],
            resource["kind"],
            resource["metadata"].get("namespace", ""),
            resource["metadata"]["name"],
        )
        if key in seen:
            raise KustomizeError(f"{path}: resource {key} defined twice")
        seen.add(key)


# ----------------------------------------------------------------------------- generators


def _generate(folder: Path, generator: dict[str, Any], resources: list[Resource]) -> None:
    unknown = set(generator) - {"name", "behavior", "literals", "envs"}
    if unknown:
        raise KustomizeError(f"configMapGenerator: unsupported fields {sorted(unknown)}")
    data: dict[str, str] = {}
    for literal in generator.get("literals", []):
        key, sep, value = str(literal).partition("=")
        if not sep:
            raise KustomizeError(f"configMapGenerator literal without '=': {literal!r}")
        data[key] = value
    for env_file in generator.get("envs", []):
        for line in (folder / env_file).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                data[key] = value
    name = generator["name"]
    behavior = generator.get("behavior", "create")
    existing = [r for r in resources if r.get(GENERATED) and r["metadata"]["name"] == name]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"configMapGenerator {name}: already generated below")
        resources.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": dict(sorted(data.items())),
                GENERATED: True,
            }
        )
    elif behavior in ("merge", "replace"):
        if not existing:
            raise KustomizeError(f"configMapGenerator {name}: nothing to {behavior}")
        merged = {**existing[0]["data"], **data} if behavior == "merge" else data
        existing[0]["data"] = dict(sorted(merged.items()))
    else:
        raise KustomizeError(f"configMapGenerator {name}: unknown behavior {behavior!r}")


def config_map_hash(config_map: Resource) -> str:
    """kustomize's suffix: SHA-256 of the ConfigMap's kind, name and data as Go's
    `json.Marshal` writes them (sorted keys, HTML characters escaped), first ten hex digits
    with 0, 1, 3, a, e swapped for letters so the suffix is never read as a number or word."""
    encoded = json.dumps(
        {
            "data": config_map.get("data", {}),
            "kind": "ConfigMap",
            "name": config_map["metadata"]["name"],
        },
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    )
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _name_generated(resources: list[Resource]) -> None:
    renames: dict[str, str] = {}
    for resource in resources:
        if resource.get(GENERATED):
            old = resource["metadata"]["name"]
            renames[old] = f"{old}-{config_map_hash(resource)}"
            resource["metadata"]["name"] = renames[old]
    for spec in pod_specs(resources):
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef")
                if ref and ref.get("name") in renames:
                    ref["name"] = renames[ref["name"]]
            for variable in container.get("env", []):
                ref = (variable.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and ref.get("name") in renames:
                    ref["name"] = renames[ref["name"]]
        for volume in spec.get("volumes", []):
            ref = volume.get("configMap")
            if ref and ref.get("name") in renames:
                ref["name"] = renames[ref["name"]]


def pod_specs(resources: list[Resource]) -> list[dict[str, Any]]:
    """The pod specs inside workloads (Deployment, Job, CronJob, ...) and bare Pods."""
    specs = []
    for resource in resources:
        kind = resource["kind"]
        if kind == "Pod":
            specs.append(resource["spec"])
        elif kind == "CronJob":
            specs.append(resource["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            specs.append(resource["spec"]["template"]["spec"])
    return specs


# ----------------------------------------------------------------------------- patches


def _patch(folder: Path, entry: dict[str, Any], resources: list[Resource]) -> None:
    unknown = set(entry) - {"path", "patch", "target"}
    if unknown:
        raise KustomizeError(f"patches: unsupported fields {sorted(unknown)}")
    text = (folder / entry["path"]).read_text() if "path" in entry else entry["patch"]
    documents = [d for d in yaml.load_all(text, Loader=Loader) if d is not None]
    if len(documents) != 1:
        raise KustomizeError("patches: an entry holds exactly one patch (as in kustomize)")
    patch = documents[0]
    target = entry.get("target")
    if isinstance(patch, list):
        if target is None:
            raise KustomizeError("patches: a JSON 6902 patch needs a target")
        matches = [r for r in resources if _selected(r, target)]
        for resource in matches:
            _json6902(resource, patch)
    else:
        if target is None:
            target = {"kind": patch["kind"], "name": patch["metadata"]["name"]}
            if "namespace" in patch["metadata"]:
                target["namespace"] = patch["metadata"]["namespace"]
        matches = [r for r in resources if _selected(r, target)]
        body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
        metadata = {
            k: v for k, v in body.get("metadata", {}).items() if k not in ("name", "namespace")
        }
        body["metadata"] = metadata
        for resource in matches:
            merged = strategic_merge(resource, body)
            resource.clear()
            resource.update(merged)
    if not matches:
        raise KustomizeError(f"patches: no resource matches {target}")


def _selected(resource: Resource, target: dict[str, Any]) -> bool:
    group, _, version = resource["apiVersion"].rpartition("/")
    metadata = resource["metadata"]
    checks = {
        "kind": resource["kind"],
        "name": metadata["name"],
        "namespace": metadata.get("namespace", ""),
        "group": group,
        "version": version,
    }
    for field, value in target.items():
        if field == "labelSelector":
            labels = metadata.get("labels", {})
            for pair in str(value).split(","):
                key, _, wanted = pair.partition("=")
                if labels.get(key.strip()) != wanted.strip():
                    return False
        elif field in checks:
            if not re.fullmatch(str(value), checks[field]):
                return False
        else:
            raise KustomizeError(f"patch target: unsupported field {field!r}")
    return True


def strategic_merge(original: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes' strategic merge for the cases the manifests use."""
    if isinstance(patch, dict):
        if any(str(k).startswith("$") for k in patch):
            raise KustomizeError(f"strategic merge directives are not supported: {patch}")
        if not isinstance(original, dict):
            return copy.deepcopy(patch)
        merged = copy.deepcopy(original)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(original.get(key), value, key)
        return merged
    if isinstance(patch, list) and isinstance(original, list):
        key = _merge_key(field, patch)
        if key is None:
            return copy.deepcopy(patch)
        merged_list = copy.deepcopy(original)
        for item in patch:
            index = next(
                (i for i, o in enumerate(merged_list) if o.get(key) == item.get(key)), None
            )
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = strategic_merge(merged_list[index], item)
        return merged_list
    return copy.deepcopy(patch)


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":  # containers' ports by number, Services' by port
        if all(isinstance(i, dict) and "containerPort" in i for i in items):
            return "containerPort"
        if all(isinstance(i, dict) and "port" in i for i in items):
            return "port"
        return None
    return MERGE_KEYS.get(field)


def _json6902(resource: Resource, operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        op, path = operation["op"], operation["path"]
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
        parent: Any = resource
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op in ("add", "replace"):
            value = copy.deepcopy(operation["value"])
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                elif op == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                if op == "replace" and last not in parent:
                    raise KustomizeError(f"JSON patch: nothing to replace at {path}")
                parent[last] = value
        elif op == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise KustomizeError(f"JSON patch: unsupported op {op!r}")


# ----------------------------------------------------------------------------- images


def _set_image(image: dict[str, Any], resources: list[Resource]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images: unsupported fields {sorted(unknown)}")
    name = image["name"]
    for spec in pod_specs(resources):
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            current = container.get("image", "")
            base, tag = _split_image(current)
            if base != name:
                continue
            new = image.get("newName", base)
            if "digest" in image:
                container["image"] = f"{new}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{new}:{image['newTag']}"
            else:
                container["image"] = new + tag


def _split_image(image: str) -> tuple[str, str]:
    """`name` and its `:tag` or `@digest` suffix (a registry port is part of the name)."""
    if "@" in image:
        base, _, digest = image.partition("@")
        return base, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""
