#!/usr/bin/env python3
"""Prints the module graph of each library crate (who names `crate::<module>`)
and any import cycle in it: the worker's library (`src/`) and the extraction
core (`crates/split/src/`). A module's children count as the module itself,
except under the split parents (`mode/` and `run/` in the worker, `context/`
in the core), whose parts are nodes of their own (`mode::once`,
`context::judge`...). `super::` names the parent; `use crate::{a::X, b}` names
`a` and `b`. Only names of modules count (a `crate::extract` call names the
crate root, which is no node). Exit status 1 on a cycle."""
import pathlib, re, sys

TOP = pathlib.Path(__file__).resolve().parent.parent
CRATES = [
    # (root, parents whose children are nodes, files of the binary)
    (TOP / "src", {"mode", "run"}, {"main", "cli"}),
    (TOP / "crates" / "split" / "src", {"context"}, set()),
]


def expand(text, start):
    """The paths of the use tree that starts at text[start:] (after `crate::`
    or `super::`): `a::b`, or each member of `{a::X, b, c::{d, e}}`."""
    if start < len(text) and text[start] == "{":
        depth, i, member, out = 0, start, "", []
        while i < len(text):
            ch = text[i]
            if ch == "{":
                depth += 1
                if depth == 1:
                    i += 1
                    continue
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    out.append(member)
                    break
            if ch == "," and depth == 1:
                out.append(member)
                member = ""
            else:
                member += ch
            i += 1
        return [path for m in out for path in expand(m.strip(), 0)]
    match = re.match(r"(?:[a-z_]+::)*[a-z_]+", text[start:])
    if not match:
        return []
    after = start + match.end()
    if text.startswith("::{", after):  # a nested tree: `a::{b::X, c}`
        return [f"{match.group(0)}::{rest}" for rest in expand(text, after + 2)] or [match.group(0)]
    return [match.group(0)]


def graph(root, split, binary):
    def is_module(parts):
        p = root.joinpath(*parts)
        return p.with_suffix(".rs").exists() or p.is_dir()

    def node(parts):
        # The longest prefix of `parts` that names a module decides the node.
        if not parts or not is_module(parts[:1]):
            return None
        if parts[0] in split and len(parts) > 1 and is_module(parts[:2]):
            return f"{parts[0]}::{parts[1]}"
        return parts[0]

    def module_of(path):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("mod", "lib"):
            parts = parts[:-1]
        return parts

    edges = {}
    for path in sorted(root.rglob("*.rs")):
        parts = module_of(path)
        if not parts or parts[0] in binary:
            continue  # the crate root and the binary may name anything of the library
        here = node(parts)
        text = path.read_text()
        # Test modules may reach anywhere (they are not part of the build graph).
        text = re.split(r"#\[cfg\(test\)\]\s*(?:pub\(crate\)\s*)?mod tests", text)[0]
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        for match in re.finditer(r"\bcrate::", text):
            for path_ in expand(text, match.end()):
                target = node(path_.split("::"))
                if target and target != here:
                    edges.setdefault(here, set()).add(target)
        parent = parts[:-1]
        for match in re.finditer(r"\bsuper::", text):
            for path_ in expand(text, match.end()):
                target = node(parent + path_.split("::"))
                if target and target != here and node(parent) != here:
                    edges.setdefault(here, set()).add(target)
    return edges


def cycles_of(edges):
    # Depth-first search with colours.
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
    return cycles


total = 0
for root, split, binary in CRATES:
    print(f"# {root.relative_to(TOP)}")
    edges = graph(root, split, binary)
    for source in sorted(edges):
        print(f"{source} -> {', '.join(sorted(edges[source]))}")
    for cycle in cycles_of(edges):
        print("CYCLE: " + " -> ".join(cycle))
        total += 1
print(f"{total} cycles")
sys.exit(1 if total else 0)
