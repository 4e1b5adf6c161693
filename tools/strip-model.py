#!/usr/bin/env python3
"""Writes botocore's service model for ECS without documentation, as the embedded
reference that the control plane validates requests against (shapes, required members,
enums, ranges). Re-run after upgrading botocore: tools/strip-model.py ecs"""
import json, os, sys
import botocore.loaders

def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in ("documentation", "documentationUrl", "examples")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node

service = sys.argv[1] if len(sys.argv) > 1 else "ecs"
model = botocore.loaders.Loader().load_service_model(service, "service-2")
out = os.path.join(os.path.dirname(__file__), "..", "src", "Core", "Api", "Model", f"{service}.json")
with open(out, "w") as f:
    json.dump(strip(model), f, separators=(",", ":"), sort_keys=False)
print(out, os.path.getsize(out))
