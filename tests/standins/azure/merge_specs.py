#!/usr/bin/env python3
"""Merge the official Azure Compute and AKS specs into the one file Prism serves.

Usage: merge_specs.py OUT.json

Prism validates against one document, and the stand-in needs both Compute
(`azure-compute-2019-03-01.json`) and AKS (`azure-aks-2019-08-01.json`), which sit
next to this script unchanged. Both are Swagger 2.0 with their own
`definitions` and `parameters` whose names collide (`Resource`, `CloudError`,
`ApiVersionParameter`...), so every definition and parameter is renamed with a
prefix (`compute_`, `aks_`) and every `$ref` follows. The paths do not overlap.

One deliberate change, so that today's AKS body validates: the 2019 AKS spec
requires `clientAppID` and `serverAppID` in `aadProfile` (the legacy Entra ID
integration). Managed Entra ID integration (`aadProfile: {managed: true,
enableAzureRBAC: true}`), which the component uses and current API versions
document, needs neither, so that `required` list is dropped. Nothing else is
edited.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = [("compute_", "azure-compute-2019-03-01.json"), ("aks_", "azure-aks-2019-08-01.json")]


def rename_refs(node, prefix):
    """Rewrite `#/definitions/X` and `#/parameters/X` refs to the prefixed names."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                for section in ("definitions", "parameters"):
                    head = f"#/{section}/"
                    if v.startswith(head):
                        v = head + prefix + v[len(head):]
            out[k] = rename_refs(v, prefix)
        return out
    if isinstance(node, list):
        return [rename_refs(x, prefix) for x in node]
    return node


def merge():
    merged = None
    for prefix, name in SOURCES:
        with open(os.path.join(HERE, name)) as f:
            spec = json.load(f)
        spec = rename_refs(spec, prefix)
        if merged is None:
            merged = {k: v for k, v in spec.items() if k not in ("paths", "definitions", "parameters")}
            merged["info"] = {"title": "Azure Compute 2019-03-01 + AKS 2019-08-01 (merged for the stand-in)",
                              "version": "2019"}
            merged.update({"paths": {}, "definitions": {}, "parameters": {}})
        for path, item in spec.get("paths", {}).items():
            if path in merged["paths"]:
                raise SystemExit(f"path {path} is in two specs")
            merged["paths"][path] = item
        for section in ("definitions", "parameters"):
            for key, value in spec.get(section, {}).items():
                merged[section][prefix + key] = value
    aad = merged["definitions"].get("aks_ManagedClusterAADProfile")
    if aad is not None:
        aad.pop("required", None)
    return merged


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.splitlines()[2])
    out = sys.argv[1]
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merge(), f)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
