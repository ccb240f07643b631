#!/usr/bin/env python3
"""The module layers of src/ (issue #18): every `crate::x` reference outside `#[cfg(test)]`
must point to a module in a lower layer, or the same layer without forming a circle. A new
top-level module must be placed in LAYERS; docs/architecture.md's Layout section explains the order."""
import os
import re
import sys

# Bottom to top. A module may use the ones in its own or lower layers.
LAYERS = [
    ["api", "body", "deadline", "redact", "host", "metrics", "source"],           # plain building blocks
    ["translate", "telemetry", "mapping"],                     # pure translation, data files
    ["config", "logging", "modes", "ratelimit", "instance"],   # the configuration and what reads only it
    ["identity", "upstream", "tenant", "healthcheck"],         # talking to others
    ["error", "request", "legacy", "audit"],                   # failures and the legacy shapes
    ["passthrough", "events", "runtime"],                      # legacy mode; event records; one request's world
    ["routes"],                                                # the translated routes
    ["shadow", "capture"],                                     # copies replay routes; calls recorded for replay
    ["gateway"],                                               # runtime swaps, process-long state
    ["ops", "router", "layers", "watch"],                      # what serves a request or an operator
    ["admin", "stack", "server", "sandbox"],                   # listeners and services
    ["start"],                                                 # a gateway wired together
    ["cli"],                                                   # commands
]

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
layer = {m: i for i, ms in enumerate(LAYERS) for m in ms}
edges = {}
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(d, f)
        rel = os.path.relpath(path, root)[:-3].split(os.sep)
        if rel[0] in ("lib", "main", "bin"):
            continue  # the crate root wires everything together
        text = open(path, encoding="utf-8").read()
        cut = text.find("#[cfg(test)]")
        text = text if cut < 0 else text[:cut]
        names = set(re.findall(r"crate::([a-z_]+)", text))
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            names |= set(re.findall(r"(?:^|,)\s*([a-z_]+)", group))
        for n in names:
            is_module = os.path.exists(os.path.join(root, n + ".rs")) or os.path.isdir(os.path.join(root, n))
            if n != rel[0] and is_module:
                edges.setdefault(rel[0], set()).add(n)

problems = []
for m in sorted(set(edges) | {n for s in edges.values() for n in s}):
    if m not in layer:
        problems.append(f"module `{m}` is in no layer: add it to LAYERS in .ci/layers.py")
for m, targets in sorted(edges.items()):
    for t in sorted(targets):
        if m in layer and t in layer and layer[t] > layer[m]:
            problems.append(f"`{m}` (layer {layer[m]}) uses `{t}` (layer {layer[t]}): an import up the layers")

# Circles among modules of one layer.
def reach(a, b, seen=()):
    return any(n == b or (n not in seen and reach(n, b, seen + (n,))) for n in edges.get(a, ()))
for m, targets in sorted(edges.items()):
    for t in sorted(targets):
        if layer.get(m) == layer.get(t) and reach(t, m):
            problems.append(f"`{m}` and `{t}` use each other: an import circle")

for p in problems:
    print(p)
if problems:
    sys.exit(1)
print(f"layers: {len(layer)} modules, {sum(map(len, edges.values()))} imports, none up the layers, no circle")
