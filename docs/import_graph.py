#!/usr/bin/env python3
"""The import graph of src/: which file uses which, from `use crate::…`, `use super::…`
and inline `crate::…` paths (and, in a folder's mod.rs, its children named bare).

    python3 docs/import_graph.py            # circles between files and between stages
    python3 docs/import_graph.py --edges    # also every file -> file edge

Each path is resolved to the longest prefix that is a module file, so
`crate::segment::value::ValueModel` is an edge to src/segment/value.rs and
`crate::segment::Movement` one to src/segment/mod.rs. A file's own folder root
(mod.rs) re-exporting its children and the children using the types the root defines
are reported apart: that parent <-> child pattern is Rust's usual layout, not a
circle between stages. Exit status 0 always: this describes, it does not judge.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"


def module_of(path: Path) -> tuple:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return ()
    return tuple(parts)


FILES = {module_of(p): p for p in sorted(ROOT.rglob("*.rs")) if p.name != "main.rs"}


def strip(text: str) -> str:
    """Source without comments, string literals or #[cfg(test)] modules."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def expand(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]]."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, t):
        depth, start, items = 0, 0, []
        if t.startswith("{") and t.endswith("}"):
            inner = t[1:-1]
            for i, ch in enumerate(inner):
                depth += ch == "{"
                depth -= ch == "}"
                if ch == "," and depth == 0:
                    items.append(inner[start:i])
                    start = i + 1
            items.append(inner[start:])
            for item in items:
                if item:
                    walk(prefix, item)
            return
        m = re.match(r"([A-Za-z_0-9]+)(?:::(.*))?$", t)
        if not m:
            return
        head, rest = m.group(1), m.group(2)
        if rest is None:
            out.append(prefix + [head])
        else:
            walk(prefix + [head], rest)

    walk([], tree)
    return out


def resolve(parts: list):
    for n in range(len(parts), 0, -1):
        if tuple(parts[:n]) in FILES:
            return tuple(parts[:n])
    return None


def imports(module: tuple, path: Path) -> set:
    text = strip(path.read_text())
    here = module if path.name == "mod.rs" or not module else module[:-1]
    own = module if path.name == "mod.rs" or not module else None
    found = set()
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for p in expand(m.group(1)):
            if p[0] == "crate":
                target = resolve(p[1:])
            elif p[0] == "super":
                base = list(here)
                while p and p[0] == "super":
                    base = base[:-1] if p is not None and base is not None else base
                    p = p[1:]
                target = resolve(base + p) if base is not None else None
                # `super::` from a file x.rs in folder f means f; from f/mod.rs it means f's parent
            elif p[0] == "self" and own is not None:
                target = resolve(list(own) + p[1:])
            elif own is not None and (tuple(own) + (p[0],)) in FILES:
                target = resolve(list(own) + p)
            else:
                target = None
            if target is not None:
                found.add(target)
    for m in re.finditer(r"\bcrate((?:::[A-Za-z_][A-Za-z_0-9]*)+)", text):
        target = resolve(m.group(1).split("::")[1:])
        if target is not None:
            found.add(target)
    if own is not None:
        for m in re.finditer(r"(?<![:\w])([a-z_][a-z_0-9]*)::", text):
            if (tuple(own) + (m.group(1),)) in FILES:
                found.add(tuple(own) + (m.group(1),))
    found.discard(module)
    return found


def name(module: tuple) -> str:
    return str(FILES[module].relative_to(ROOT.parent)) if module in FILES else "src/lib.rs"


def sccs(graph: dict) -> list:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    graph = {m: imports(m, p) for m, p in FILES.items() if m}
    # `super::` in a non-mod file: `here` is its folder, so one `super` is the folder's
    # parent. Rust's `super` from x.rs means the folder itself: redo those edges.
    for m, p in FILES.items():
        if not m or p.name == "mod.rs":
            continue
        text = strip(p.read_text())
        for u in re.finditer(r"\buse\s+([^;]+);", text):
            for q in expand(u.group(1)):
                if q[0] != "super":
                    continue
                base = list(m)
                while q and q[0] == "super":
                    base, q = base[:-1], q[1:]
                t = resolve(base + q) if base else resolve(q)
                if t is not None and t != m:
                    graph[m].add(t)
    for m in graph:
        graph[m].discard(())
    if "--edges" in sys.argv:
        for m in sorted(graph):
            for t in sorted(graph[m]):
                print(f"{name(m)} -> {name(t)}")
        print()

    # A folder root (mod.rs) naming its own children (`pub mod`, `pub use child::…`) is
    # the folder's front door, not a dependency: leave those edges out of the circles,
    # and list the children that use their root's types apart.
    inner = {m: {t for t in ts if not (len(t) == len(m) + 1 and t[: len(m)] == m)} for m, ts in graph.items()}
    print("Circles between files (a folder root's edges to its own children left out):")
    comps = sccs(inner)
    for comp in comps:
        print("  one circle through: " + ", ".join(name(m) for m in comp))
        for x in comp:
            for y in sorted(inner[x] & set(comp)):
                print(f"      {name(x)} -> {name(y)}")
    if not comps:
        print("  none")
    print("Children that use their folder root's items (the root re-exports them):")
    for m in sorted(graph):
        for t in sorted(graph[m]):
            if len(m) == len(t) + 1 and m[: len(t)] == t and m in graph[t]:
                print(f"  {name(m)} -> {name(t)}")
    stages = {}
    for m, ts in graph.items():
        for t in ts:
            if m[0] != t[0]:
                stages.setdefault(m[0], set()).add(t[0])
    print("Circles between stages (top-level modules and folders):")
    comps = sccs(stages)
    for comp in comps:
        print("  one circle through: " + ", ".join(comp))
        for a in comp:
            for b in comp:
                if a < b and b in stages.get(a, ()) and a in stages.get(b, ()):
                    print(f"      two-way: {a} <-> {b}")
    if not comps:
        print("  none")


if __name__ == "__main__":
    main()
