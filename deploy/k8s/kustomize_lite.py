"""Render a kustomization of deploy/k8s offline, for the tests (kubectl has kustomize built in).

    uv run python deploy/k8s/kustomize_lite.py deploy/k8s/overlays/production

The subset of Kustomize these manifests use, with Kustomize's order (patches, then namespace,
labels, images), and nothing else: any other field of a kustomization is refused, so a manifest
cannot silently rely on what this renderer does not do.

- `resources`: YAML files (several documents each) or folders holding a kustomization;
- `patches`: strategic-merge patches from `path` or inline `patch`, applied to the objects their
  `target` selects (`kind`, `name`), or without `target` to the object of the patch's own kind
  and name. Maps merge key by key (a null deletes), lists of maps that all have a `name` merge
  item by item on it (containers, env, volumes), any other list is replaced. A patch that
  matches nothing is an error;
- `namespace`: set on every namespaced object (all but `Namespace`);
- `labels`: `pairs` added to every object's labels and, with `includeTemplates`, to its pod
  template's (`includeSelectors` is not supported: selectors stay as written);
- `images`: `name` (the image without tag) replaced by `newName` and/or tagged `newTag`.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED = frozenset(
    {"apiVersion", "kind", "namespace", "resources", "patches", "labels", "images"}
)
CLUSTER_SCOPED = frozenset({"Namespace"})


class KustomizeError(ValueError):
    """A kustomization this renderer cannot build, and why."""


def read_kustomization(folder: Path) -> Obj:
    """The kustomization of `folder`, refused when it uses a field outside the subset."""
    for name in KUSTOMIZATION_FILES:
        path = folder / name
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            unsupported = sorted(set(data) - SUPPORTED)
            if unsupported:
                raise KustomizeError(f"{path}: unsupported fields {unsupported}")
            return dict(data)
    raise KustomizeError(f"{folder}: no kustomization file")


def load_documents(path: Path) -> list[Obj]:
    """Every non-empty YAML document of a file."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def build(folder: Path) -> list[Obj]:
    """The objects the kustomization of `folder` renders, in the order of its resources."""
    kustomization = read_kustomization(folder)
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        objects += build(path) if path.is_dir() else load_documents(path)
    check_unique(objects, folder)
    for patch in kustomization.get("patches", []):
        apply_patch(objects, patch, folder)
    if "namespace" in kustomization:
        set_namespace(objects, kustomization["namespace"])
    for labels in kustomization.get("labels", []):
        add_labels(objects, labels)
    for image in kustomization.get("images", []):
        set_image(objects, image)
    return objects


def identity(obj: Obj) -> tuple[str, str, str]:
    """What tells two objects apart: API group, kind, namespace/name."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    metadata = obj.get("metadata") or {}
    name = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
    return group, str(obj.get("kind", "")), name


def check_unique(objects: list[Obj], folder: Path) -> None:
    """Refuse two objects with the same identity (Kustomize does too)."""
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = identity(obj)
        if key in seen:
            raise KustomizeError(f"{folder}: {key} defined twice")
        seen.add(key)


def apply_patch(objects: list[Obj], entry: Obj, folder: Path) -> None:
    """Merge one `patches` entry into the objects it selects."""
    if "path" in entry:
        patch = yaml.safe_load((folder / entry["path"]).read_text(encoding="utf-8"))
    elif "patch" in entry:
        patch = yaml.safe_load(entry["patch"])
    else:
        raise KustomizeError(f"{folder}: a patch names neither path nor patch")
    target = entry.get("target") or {
        "kind": patch.get("kind"),
        "name": (patch.get("metadata") or {}).get("name"),
    }
    unsupported = sorted(set(target) - {"kind", "name"})
    if unsupported:
        raise KustomizeError(f"{folder}: unsupported patch target fields {unsupported}")
    body = {key: value for key, value in patch.items() if key not in ("apiVersion", "kind")}
    body.get("metadata", {}).pop("name", None)
    matched = [obj for obj in objects if selected(obj, target)]
    if not matched:
        raise KustomizeError(f"{folder}: patch target {target} matches nothing")
    for obj in matched:
        merged = merge(obj, body)
        obj.clear()
        obj.update(merged)


def selected(obj: Obj, target: Obj) -> bool:
    """Whether `obj` is of the target's kind and name (each when given)."""
    name = (obj.get("metadata") or {}).get("name")
    return all(
        wanted is None or wanted == have
        for wanted, have in ((target.get("kind"), obj.get("kind")), (target.get("name"), name))
    )


def merge(base: Any, patch: Any) -> Any:
    """`patch` merged into a copy of `base` (the strategic-merge subset described above)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = merge(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and named(base) and named(patch):
        return merge_named(base, patch)
    return copy.deepcopy(patch)


def named(items: list[Any]) -> bool:
    """A list of maps that all carry a `name`: merged item by item."""
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def merge_named(base: list[Obj], patch: list[Obj]) -> list[Obj]:
    """The items of `base` with the patch's item of the same name merged in, then the new ones."""
    by_name = {item["name"]: item for item in patch}
    merged = [merge(item, by_name.pop(item["name"])) if item["name"] in by_name else item
              for item in base]  # fmt: skip
    return merged + [copy.deepcopy(item) for item in by_name.values()]


def set_namespace(objects: list[Obj], namespace: str) -> None:
    """Put every namespaced object in `namespace`."""
    for obj in objects:
        if obj.get("kind") not in CLUSTER_SCOPED:
            obj.setdefault("metadata", {})["namespace"] = namespace


def add_labels(objects: list[Obj], entry: Obj) -> None:
    """Add a `labels` entry's pairs to every object (and pod template, when asked)."""
    if entry.get("includeSelectors"):
        raise KustomizeError("labels.includeSelectors is not supported")
    pairs = dict(entry.get("pairs") or {})
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        template = (obj.get("spec") or {}).get("template")
        if entry.get("includeTemplates") and isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def containers(obj: Obj) -> Iterator[Obj]:
    """The containers and init containers of an object's pod template, if it has one."""
    template = (obj.get("spec") or {}).get("template") or {}
    pod = template.get("spec") or {}
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def image_name(image: str) -> str:
    """An image reference without its tag or digest."""
    name = image.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def set_image(objects: list[Obj], entry: Obj) -> None:
    """Rewrite the images named `entry['name']` to `newName` and/or `newTag`."""
    for obj in objects:
        for container in containers(obj):
            if image_name(container["image"]) == entry["name"]:
                name = entry.get("newName", entry["name"])
                tag = entry.get("newTag")
                container["image"] = f"{name}:{tag}" if tag else name


def main(argv: list[str]) -> int:
    """Print the rendered objects of the kustomization folder `argv[0]` as YAML."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    objects = build(Path(argv[0]))
    print("".join("---\n" + yaml.safe_dump(obj, sort_keys=False) for obj in objects), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
