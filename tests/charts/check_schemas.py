#!/usr/bin/python3
"""Checks rendered Kubernetes objects against the API's schema.

The schema is the Kubernetes OpenAPI spec as Debian's python3-kubernetes package
generated it into model classes (kubernetes.client.V1Deployment and so on: every field's
JSON name and type, and the setters' required-field and enum checks). Each object of a
built-in kind is decoded strictly: an unknown field, a wrong type, a missing required
field or a value outside an enum is an error naming its path. Kinds the package has no
model for (other API groups) are listed as skipped.

Usage: check_schemas.py RENDERED.yaml   (exit 0: all valid; 1: errors, printed)
"""
import re
import sys

import yaml
import kubernetes.client as models


class SchemaError(Exception):
    pass


def model_class(api_version, kind):
    if "/" in api_version:
        group, version = api_version.split("/", 1)
    else:
        group, version = "", api_version
    if group.endswith(".io") and not group.endswith("k8s.io"):
        return None  # not a Kubernetes API group (cert-manager.io, ...)
    if group and "." in group and not group.endswith(".k8s.io"):
        return None  # monitoring.coreos.com, ...
    return getattr(models, version.capitalize() + kind, None)


def is_quantity_map(path):
    return re.search(r"\.resources\.(limits|requests)$", path) is not None


def convert(value, type_name, path, errors):
    """Returns the value for a model's constructor, recording problems in errors."""
    if value is None:
        return None
    if type_name == "object":
        return value
    if type_name == "str":
        if not isinstance(value, str):
            errors.append(f"{path}: want a string, got {value!r}")
        return value
    if type_name == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: want an integer, got {value!r}")
        return value
    if type_name == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: want a number, got {value!r}")
        return value
    if type_name == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: want a boolean, got {value!r}")
        return value
    if type_name == "datetime":
        return value
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: want a list, got {value!r}")
            return value
        return [convert(v, m.group(1), f"{path}[{i}]", errors) for i, v in enumerate(value)]
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: want a map, got {value!r}")
            return value
        inner = m.group(1)
        out = {}
        for k, v in value.items():
            # Quantities (resources) accept numbers as well as strings.
            if inner == "str" and is_quantity_map(path) and isinstance(v, (int, float)):
                out[k] = str(v)
            else:
                out[k] = convert(v, inner, f"{path}.{k}", errors)
        return out
    cls = getattr(models, type_name, None)
    if cls is None:
        errors.append(f"{path}: unknown schema type {type_name}")
        return value
    return build(cls, value, path, errors)


def build(cls, value, path, errors):
    if not isinstance(value, dict):
        errors.append(f"{path}: want an object ({cls.__name__}), got {value!r}")
        return None
    by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    kwargs = {}
    for key, v in value.items():
        attr = by_json.get(key)
        if attr is None:
            errors.append(f"{path}: unknown field \"{key}\" in {cls.__name__}")
            continue
        kwargs[attr] = convert(v, cls.openapi_types[attr], f"{path}.{key}", errors)
    try:
        return cls(**kwargs)  # the setters check required fields and enums
    except (ValueError, TypeError) as e:
        errors.append(f"{path}: {e}")
        return None


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    with open(sys.argv[1]) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors, checked, skipped = [], 0, set()
    for doc in docs:
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        name = (doc.get("metadata") or {}).get("name", "?")
        cls = model_class(api_version, kind)
        if cls is None:
            skipped.add(f"{api_version}/{kind}")
            continue
        build(cls, doc, f"{kind}/{name}", errors)
        checked += 1
    for e in errors:
        print(e)
    print(f"checked {checked} objects against the Kubernetes API schema; "
          f"no schema for: {', '.join(sorted(skipped)) or 'none'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
