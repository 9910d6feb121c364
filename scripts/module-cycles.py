#!/usr/bin/env python3
"""Prints the library's module graph (who names `crate::<module>`) and any
import cycle in it. A module's children count as the module itself, except
under `mode/` and `run/`, whose parts are nodes of their own (`mode::once`,
`run::drive`...). `super::` names the parent. Exit status 1 on a cycle."""
import pathlib, re, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"
SPLIT = {"mode", "run"}

def node(parts):
    if not parts:
        return None
    if parts[0] in SPLIT and len(parts) > 1:
        child = ROOT / parts[0] / parts[1]
        if child.with_suffix(".rs").exists() or child.is_dir():
            return f"{parts[0]}::{parts[1]}"
    return parts[0]

def module_of(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return parts

edges = {}
for path in ROOT.rglob("*.rs"):
    parts = module_of(path)
    if not parts or parts[0] in ("main", "cli"):
        continue  # the binary: it may name anything of the library
    here = node(parts)
    text = path.read_text()
    # Test modules may reach anywhere (they are not part of the build graph).
    text = re.split(r"#\[cfg\(test\)\]\s*(?:pub\(crate\)\s*)?mod tests", text)[0]
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    for match in re.finditer(r"\bcrate::((?:[a-z_]+::)*[a-z_]+)", text):
        target = node(match.group(1).split("::"))
        if target and target != here:
            edges.setdefault(here, set()).add(target)
    parent = parts[:-1]
    for match in re.finditer(r"\bsuper::([a-z_]+)", text):
        target = node(parent + [match.group(1)])
        if target and target != here and node(parent) != here:
            edges.setdefault(here, set()).add(target)

for source in sorted(edges):
    print(f"{source} -> {', '.join(sorted(edges[source]))}")

# Cycles: depth-first search with colours.
state, stack, cycles = {}, [], []
def visit(n):
    state[n] = 1
    stack.append(n)
    for m in sorted(edges.get(n, ())):
        if state.get(m) == 1:
            cycles.append(stack[stack.index(m):] + [m])
        elif m not in state:
            visit(m)
    stack.pop()
    state[n] = 2
for n in sorted(edges):
    if n not in state:
        visit(n)
for cycle in cycles:
    print("CYCLE: " + " -> ".join(cycle))
print(f"{len(cycles)} cycles")
sys.exit(1 if cycles else 0)
