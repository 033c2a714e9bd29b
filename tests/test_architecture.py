"""The package's seams: no private name crosses a package boundary, a package is used only
through what its ``__init__`` exports, and no two modules import each other (directly or in
a circle), counting imports inside functions.

A package of glmmjax is a folder (formula, design, spec, covariance, families, laplace, fit,
results, inference, datasets, diagnostics); the top-level modules (``_model.py``, ``cli.py``)
each stand alone. A package exports in ``__all__`` its public API (the user-facing
packages: families, inference, datasets, results) or its seams (the internal ones), and, in
a user-facing package, the names that only other glmmjax packages use in ``__internal__``.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "glmmjax"


def _modules() -> dict:
    """module name (glmmjax.fit._lbfgs) -> path."""
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES.get(mod, Path()).name == "__init__.py"


def _imports(mod: str):
    """(line, target module, names) of every ``from ... import`` in a module, at any depth."""
    path = MODULES[mod]
    here = mod.split(".") if _is_package(mod) else mod.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "glmmjax":
                yield node.lineno, target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "glmmjax":
                    yield node.lineno, a.name, []


def _package(mod: str) -> str:
    """The package a module belongs to: glmmjax.fit._lbfgs -> glmmjax.fit; top-level modules
    are their own package."""
    parts = mod.split(".")
    if len(parts) >= 2 and _is_package(".".join(parts[:2])):
        return ".".join(parts[:2])
    return mod


def _resolve(target: str, name: str) -> str:
    """The module that defines ``name`` imported from ``target`` (a package's __init__
    re-export followed to its submodule)."""
    sub = f"{target}.{name}"
    if sub in MODULES:
        return sub
    if _is_package(target):
        for _, t2, names in _imports(target):
            if name in names and t2 != target:
                return _resolve(t2, name)
    return target


def test_no_private_name_crosses_a_package_boundary():
    leaks = []
    for mod in MODULES:
        for line, target, names in _imports(mod):
            if _package(target) == _package(mod) or target == "glmmjax":
                continue
            parts = target.split(".")[1:]
            private = [p for p in parts if p.startswith("_") and not p.startswith("__")]
            private += [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and not parts[0].startswith("_"):
                leaks.append(f"{MODULES[mod].relative_to(ROOT.parent)}:{line} imports {target} {names}")
    assert not leaks, "\n".join(leaks)


def test_packages_are_used_through_their_exports():
    # what another package imports from a package is in its __all__ or __internal__
    missing = []
    for mod in MODULES:
        for line, target, names in _imports(mod):
            if _package(target) == _package(mod) or not _is_package(target) or target == "glmmjax":
                continue
            pkg = importlib.import_module(target)
            exported = set(getattr(pkg, "__all__", ())) | set(getattr(pkg, "__internal__", ()))
            missing += [f"{MODULES[mod].relative_to(ROOT.parent)}:{line} {target}.{n}" for n in names
                        if n not in exported]
    assert not missing, "\n".join(missing)


def test_exports_exist():
    for mod in MODULES:
        if _is_package(mod):
            pkg = importlib.import_module(mod)
            for name in list(getattr(pkg, "__all__", ())) + list(getattr(pkg, "__internal__", ())):
                assert hasattr(pkg, name), f"{mod}.__all__ names {name!r}, which it does not define"


def _graph() -> dict:
    edges = {m: set() for m in MODULES}
    for mod in MODULES:
        if _is_package(mod):
            continue            # an __init__ re-exports; its importers are resolved to the modules
        for _, target, names in _imports(mod):
            for n in names or [""]:
                dep = _resolve(target, n) if n else target
                if dep in MODULES and dep != mod and not _is_package(dep):
                    edges[mod].add(dep)
    return edges


def _cycles(edges: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_the_checks_see_a_circle_and_a_leak():
    # the checks themselves: a made-up circle is found, and a private import is recognized
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _package("glmmjax.fit._lbfgs") == "glmmjax.fit"
    assert _resolve("glmmjax.fit", "fit_batch") == "glmmjax.fit._batch"


@pytest.mark.parametrize("pkg", ["glmmjax.families", "glmmjax.inference", "glmmjax.datasets"])
def test_public_api_lists_no_internal_seam(pkg):
    mod = importlib.import_module(pkg)
    assert not set(getattr(mod, "__all__", ())) & set(getattr(mod, "__internal__", ()))
