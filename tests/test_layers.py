"""The layers of ARCHITECTURE.md, checked on the source: a module imports only from its own layer and the
layers it may use. Run alone: ``scripts/test.sh tests/test_layers.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# One prefix per folder: the folders inside asd_se are the layers (the root's own modules are the interface).
LAYERS = [
    ("asd_se.core", "core"),
    ("data_prep", "datasets"),
    ("asd_se.models", "models"),
    ("asd_se.faces", "faces"),
    ("asd_se.explain", "explain"),
    ("asd_se.explain_eval", "explain_eval"),
    ("asd_se.scoring", "scoring"),
    ("asd_se.training", "training"),
    ("asd_se.video", "video"),
    ("asd_se.render", "render"),
    ("asd_se.live", "live"),
    ("asd_se.review", "review"),
    ("asd_se.cli", "interface"),
    ("asd_se", "interface"),
]
MAY_USE = {
    "core": set(),
    "datasets": {"core", "faces"},
    "models": {"core"},
    "faces": {"core"},
    "explain": {"core", "models"},
    "scoring": {"core", "models", "explain"},
    "training": {"core", "datasets", "models", "scoring"},
    "explain_eval": {"core", "datasets", "models", "explain", "scoring"},
    "review": {"core"},
    "video": {"core", "faces", "explain"},
    "render": {"core", "models", "faces", "explain", "scoring", "review", "video"},
    "live": {"core", "models", "faces", "explain", "scoring", "review", "video"},  # render's sibling, not its tenant
    "interface": {"core", "datasets", "models", "faces", "explain", "scoring", "training", "explain_eval",
                  "review", "video", "render", "live"},
}


def layer_of(module: str) -> str | None:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def project_imports(path: Path) -> set[str]:
    """The asd_se / data_prep modules a file imports, anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.split(".")[0] in ("asd_se", "data_prep")}


def modules() -> list[tuple[str, Path]]:
    return sorted((".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"), p)
                  for package in ("asd_se", "data_prep") for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("module, path", modules(), ids=[m for m, _ in modules()])
def test_no_import_runs_up_the_layers(module, path):
    own = layer_of(module)
    assert own is not None, f"{module}: in no layer of tests/test_layers.py (add it, and to ARCHITECTURE.md)"
    wrong = sorted(f"{target} ({layer_of(target)})" for target in project_imports(path)
                   if layer_of(target) not in MAY_USE[own] | {own})
    assert not wrong, f"{module} ({own}) imports up or across the layers: {', '.join(wrong)}"


def test_every_folder_is_one_layer_and_the_root_holds_only_the_interface():
    folders = {f"asd_se.{p.name}" for p in (ROOT / "asd_se").iterdir() if (p / "__init__.py").is_file()}
    assert {prefix for prefix, _ in LAYERS} == folders | {"asd_se", "data_prep"}
    loose = sorted(p.name for p in (ROOT / "asd_se").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "demo.py"], loose


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from asd_se.training.loop import Trainer\n")
    assert layer_of("asd_se.render.pipeline") == "render"
    assert any(layer_of(m) not in MAY_USE["render"] for m in project_imports(bad))


def import_graph() -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (``from package import module`` resolved to the
    module; function-level imports included)."""
    known = {module for module, _ in modules()}
    graph = {}
    for module, path in modules():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named = {f"{node.module}.{alias.name}" for alias in node.names} & known
                targets |= named or ({node.module} & known)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names} & known
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_modules_import_each_other_in_a_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
