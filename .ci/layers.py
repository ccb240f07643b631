#!/usr/bin/env python3
"""The module layers of src/, and no import circle at any depth.

1. Layers: every reference to `crate::x` outside `#[cfg(test)]` must point to a module in a
   lower layer, or the same layer. A new top-level module must be placed in LAYERS;
   docs/architecture.md's Layout section explains the order.
2. No circle between the children of any module, at any depth: the files and folders of one
   folder (a folder counted as one, with everything under it) must not use each other in a
   circle. A module's own file (`foo/mod.rs`, or `foo.rs` beside `foo/`) is the front door
   of its folder: it may use its children and they may use it, so edges between a parent
   and its own children are not counted. An item a file re-exports (`pub use x::Item`) is
   counted as used from where it is defined, so a re-export cannot hide a circle.

Imports are what the code uses: paths in `use` trees (`crate::`, `super::`, `self::`, a
child module's name) and `crate::…` / `super::…` / `self::…` / `child::…` paths in the code.
Comments and doc links are not imports: pointing a reader elsewhere creates no dependency.

The workspace's library crates under `crates/` are checked the same way, each with its own
layers (CRATES; a crate not listed there for circles only), and must not reach into another crate's files (`#[path]`, `include!`): the
sandbox shares no code with the gateway it stands in for. With a folder as argument, only
that folder is checked, as the gateway's `src/`."""
import os
import re
import sys

# Bottom to top. A module may use the ones in its own or lower layers.
LAYERS = [
    ["api", "body", "deadline", "redact", "host", "metrics", "source"],           # plain building blocks
    ["translate", "telemetry", "mapping"],                     # pure translation, data files
    ["config", "logging", "ratelimit", "instance"],   # the configuration and what reads only it
    ["identity", "upstream", "tenant", "healthcheck"],         # talking to others
    ["error", "request", "legacy", "audit"],                   # failures and the legacy shapes
    ["passthrough", "events", "runtime"],                      # legacy mode; event records; one request's world
    ["context"],                                               # one request's facts, and its refusals
    ["routes"],                                                # the translated routes
    ["shadow", "fallback", "capture"],                         # copies replay routes; v4 failing sends rows to legacy; calls recorded for replay
    ["gateway"],                                               # runtime swaps, process-long state
    ["ops", "dispatch", "layers", "watch"],                      # what serves a request or an operator
    ["admin", "stack", "server", "sandbox"],                   # listeners and services
    ["start", "replay"],                                       # a gateway wired together; replay through one
    ["cli"],                                                   # commands
]

# The library crates of the workspace: their folder → their own layers, bottom to top.
CRATES = {
    # The event transcoder; its lib.rs holds the types of a run.
    "crates/events": [
        ["key", "table"],   # the key-case rule; the event table
        ["transcode"],      # the byte path both directions take
        ["record"],         # one record: which event, legacy → v4
        ["join"],           # v4 → legacy, records grouped
        ["stream"],         # the line loop
    ],
    "crates/sandbox": [
        ["codes", "routes", "store"],   # plain data: event codes, v4 paths, users
        ["input", "log"],               # bodies read by the store's rules; the event log
        ["envelope"],                   # every answer and failure, in v4's envelope
        ["handler"],                    # one request
        ["serve"],                      # the listener
    ],
}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def modules(root):
    """Module path (a tuple) → its file, for every file under `root` but the crate roots."""
    found = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, root)[:-3].split(os.sep)
            if rel[0] in ("main", "bin"):
                continue
            if rel == ["lib"]:
                found[()] = path
                continue
            if rel[-1] == "mod":
                rel = rel[:-1]
            found[tuple(rel)] = path
    return found


def code_of(path):
    """The file's code before its tests (a test module may use anything), comments blanked."""
    text = without_comments(open(path, encoding="utf-8").read())
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def without_comments(text):
    """`text` with its comments (doc comments too) removed; string and char literals kept
    whole, so a `//` inside one is not taken for a comment."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                depth += text.startswith("/*", i)
                depth -= text.startswith("*/", i)
                i += 2 if text.startswith(("/*", "*/"), i) else 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 8]) and not re.match(r"\w", text[max(i - 1, 0):i].replace("b", "") or text[max(i - 2, 0):max(i - 1, 0)]):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(text[i:end])
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]):
            lit = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]).group(0)
            out.append(lit)
            i += len(lit)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_tree(tree):
    """`a::{b, c::{d, e}}` → [`a::b`, `a::c::d`, `a::c::e`]; `{self, …}` → `a`; an alias stays
    on its leaf (`a::b as c`)."""
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        return [tree] if tree else []
    prefix, inner = tree[:brace], tree[brace + 1:tree.rfind("}")]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        depth += c == "{"
        depth -= c == "}"
        if c == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    out = []
    for p in parts:
        for leaf in split_tree(p):
            out.append((prefix + leaf) if leaf != "self" else prefix.rstrip(":"))
    return out


USE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]*);", re.M)
PATH = re.compile(rf"\b(crate|super|self)((?:::{IDENT})+)")


def resolve_start(first, here, children):
    """Where a path's first segment points: a module path, or None (another crate)."""
    if first == "crate":
        return ()
    if first == "self":
        return here
    if first == "super":
        return here[:-1]
    if first in children:
        return here + (first,)
    return None


def read_file(mod, path, mods):
    """(paths used, re-exports) of one file: each path as a list of segments from the crate
    root; re-exports as name → segments."""
    text = code_of(path)
    children = {m[-1] for m in mods if len(m) == len(mod) + 1 and m[:-1] == mod}
    used, exports = [], {}

    def absolute(segments):
        segs = list(segments)
        start = resolve_start(segs[0], mod, children)
        if start is None:
            return None
        segs = segs[1:]
        start = list(start)
        while segs and segs[0] == "super":
            start = start[:-1]
            segs = segs[1:]
        return start + segs

    for m in USE.finditer(text):
        public = m.group(1) is not None
        for leaf in split_tree(" ".join(m.group(2).split())):
            leaf_path, _, alias = (s.strip() for s in leaf.partition(" as "))
            segs = [s.strip() for s in leaf_path.split("::") if s.strip()]
            glob = segs[-1:] == ["*"]
            segs = segs[:-1] if glob else segs
            full = absolute(segs) if segs else None
            if full is None:
                continue
            used.append(full)
            if public and not glob:
                exports[alias or segs[-1]] = full
    body = USE.sub("", text)
    for m in PATH.finditer(body):
        full = absolute([m.group(1)] + m.group(2).split("::")[1:])
        if full is not None:
            used.append(full)
    for child in children:
        for m in re.finditer(rf"(?<![:\w]){child}((?:::{IDENT})+)", body):
            used.append(list(mod) + [child] + m.group(1).split("::")[1:])
    return used, exports


def target(segments, mods, exports, depth=0):
    """The module a path lands in: its longest module prefix, followed through re-exports."""
    n = len(segments)
    while n > 0 and tuple(segments[:n]) not in mods:
        n -= 1
    mod, rest = tuple(segments[:n]), segments[n:]
    hop = exports.get(mod, {}).get(rest[0]) if rest else None
    if hop is not None and hop != segments[: n + 1] and depth < 16:
        return target(hop + rest[1:], mods, exports, depth + 1)
    return mod


def circles(nodes, edges):
    """The circles among `nodes`: each group of more than one node that reach each other
    (Tarjan's strongly connected components), reported as one shortest circle through it."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:
        inside = set(group)
        # The shortest way back to the group's first node, so the message names one circle.
        start = group[0]
        paths, seen, found = [[start]], {start}, None
        while paths and found is None:
            nxt = []
            for p in paths:
                for w in sorted(edges.get(p[-1], ())):
                    if w == start:
                        found = p + [start]
                        break
                    if w in inside and w not in seen:
                        seen.add(w)
                        nxt.append(p + [w])
                if found:
                    break
            paths = nxt
        cycles.append(found)
    return cycles


def outside_files(crate):
    """`#[path]` and `include!` paths in `crate`'s code that lead out of its folder: code taken
    from another crate. Data (`include_str!`, `include_bytes!`: the shipped mapping files a
    test reads) is not code and may come from anywhere in the repository."""
    found = []
    for d, _, files in os.walk(os.path.join(crate, "src")):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            text = without_comments(open(path, encoding="utf-8").read())
            for m in re.finditer(r'#\[\s*path\s*=\s*"([^"]*)"|\binclude!\s*\(\s*"([^"]*)"', text):
                target = os.path.realpath(os.path.join(d, m.group(1) or m.group(2)))
                if os.path.commonpath([target, os.path.realpath(crate)]) != os.path.realpath(crate):
                    found.append(f"{os.path.relpath(path, os.path.join(crate, '..', '..'))} reaches outside its crate: {m.group(0)}")
    return found


def main():
    if len(sys.argv) > 1:
        problems, summary = check(sys.argv[1], LAYERS, "LAYERS")
    else:
        repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
        problems, summary = check(os.path.join(repo, "src"), LAYERS, "LAYERS")
        present = sorted(f"crates/{c}" for c in os.listdir(os.path.join(repo, "crates"))) \
            if os.path.isdir(os.path.join(repo, "crates")) else []
        for crate in present:
            # A crate not (yet) in CRATES is still checked for circles and outside files.
            layers = CRATES.get(crate)
            more, line = check(os.path.join(repo, crate, "src"), layers, f'CRATES["{crate}"]', repo)
            problems += more + outside_files(os.path.join(repo, crate))
            summary += f"\n{crate}: {line}"
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(summary)


def check(root, layers, named, base=None):
    """The problems of one crate's `root` folder against its `layers` (`named` so in this
    file), files named from `base` (the folder above `root` by default), and a summary line."""
    mods = modules(root)
    used, exports = {}, {}
    for mod, path in mods.items():
        used[mod], exports[mod] = read_file(mod, path, mods)

    # File-level edges: the modules each file's code uses, re-exports followed.
    edges = {}
    for mod, paths in used.items():
        for p in paths:
            t = target(p, mods, exports)
            if t != mod:
                edges.setdefault(mod, set()).add(t)

    rel = lambda m: os.path.relpath(mods[m], base or os.path.join(root, ".."))
    layer = {m: i for i, ms in enumerate(layers or []) for m in ms}
    problems = []

    top = {m[0] for m in mods if m}
    top_edges = {}
    for a, ts in edges.items():
        for b in ts:
            if a and b and a[0] != b[0]:
                top_edges.setdefault(a[0], set()).add(b[0])
    for m in sorted(top):
        if layers is not None and m not in layer:
            problems.append(f"module `{m}` is in no layer: add it to {named} in .ci/layers.py")
    for m, targets in sorted(top_edges.items()):
        for t in sorted(targets):
            if m in layer and t in layer and layer[t] > layer[m]:
                files = sorted(rel(a) for a in edges if a and a[0] == m and any(b and b[0] == t for b in edges[a]))
                problems.append(
                    f"`{m}` (layer {layer[m]}) uses `{t}` (layer {layer[t]}): an import up the layers ({', '.join(files)})")

    # Circles between the children of every module, the crate root included.
    parents = {m[:-1] for m in mods if m}
    checked = 0
    for parent in sorted(parents):
        depth = len(parent)
        unit = lambda m: m[: depth + 1]
        sib = {}
        examples = {}
        for a, ts in edges.items():
            if a[:depth] != parent or len(a) <= depth:
                continue
            for b in ts:
                if b[:depth] != parent or len(b) <= depth or unit(a) == unit(b):
                    continue
                sib.setdefault(unit(a), set()).add(unit(b))
                examples.setdefault((unit(a), unit(b)), []).append((a, b))
        checked += 1
        for cycle in circles({unit(m) for m in mods if m[:depth] == parent and len(m) > depth}, sib):
            steps = []
            for a, b in zip(cycle, cycle[1:]):
                x, y = sorted(examples[(a, b)])[0]
                steps.append(f"{rel(x)} uses {rel(y)}")
            where = "::".join(parent) or "the crate"
            names = " → ".join("::".join(c) for c in cycle)
            problems.append(f"an import circle in `{where}`: {names} ({'; '.join(steps)})")

    return problems, (
        f"layers: {len(layer)} top-level modules, {sum(map(len, top_edges.values()))} imports between them, "
        f"none up the layers; {len(mods)} files in {checked} folders, no import circle at any depth")


if __name__ == "__main__":
    main()
