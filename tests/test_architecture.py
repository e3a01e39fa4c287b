"""The package's shape: imports go one way, one module reads the environment, spaces import no flax.

Layers, lowest first (a module may import its own layer's packages and any lower layer, never a higher one):

    0  spaces, relax, data, io, platform        pure combinatorics and leaves
    1  nn                                      flax modules
    2  registry, search, strategies, benchmarks
    3  runners, plot                           files and progress bars (runners); pictures (plot)
    4  cli
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jaxnas"
LAYERS = {
    "spaces": 0, "relax": 0, "data": 0, "io": 0, "platform": 0,
    "nn": 1,
    "registry": 2, "search": 2, "strategies": 2, "benchmarks": 2,
    "runners": 3, "plot": 3,
    "cli": 4,
}


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(path: pathlib.Path, known: set[str]) -> list[tuple[str, bool, int]]:
    """``(imported module, is function-local, line)`` for every jaxnas import in ``path``."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jaxnas":
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "jaxnas"]
        for name in names:
            out.append((name, id(node) not in top_level, node.lineno))
    return out


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_subpackage_has_a_layer():
    assert {m.split(".")[1] for m in modules() if m.count(".") >= 1} <= set(LAYERS)


def test_imports_go_one_way():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        if name == "jaxnas":
            continue  # the curated public API may name anything
        for target, _, line in imports_of(path, set(mods)):
            if target == "jaxnas":
                continue
            if layer(target) > layer(name):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} (layer {layer(target)} "
                             f"above {layer(name)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    mods = modules()
    graph = {name: {t for t, local, _ in imports_of(path, set(mods)) if not local and t != name and t in mods}
             for name, path in mods.items()}
    # a package's __init__ re-exporting its submodules is not a cycle with them
    for name in graph:
        graph[name] = {t for t in graph[name] if not (name.startswith(t + ".") and t in mods)}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_function_local_imports_of_jaxnas():
    mods = modules()
    local = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} inside a function"
             for name, path in mods.items() for target, is_local, line in imports_of(path, set(mods)) if is_local]
    assert not local, "\n".join(local)


def test_only_platform_settings_reads_the_environment():
    readers = []
    for name, path in modules().items():
        text = path.read_text()
        if name != "jaxnas.platform.settings" and any(s in text for s in ("os.environ", "os.getenv", "getenv(")):
            readers.append(name)
    assert readers == []


def test_spaces_import_no_flax():
    for path in (PACKAGE / "spaces").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "flax" for a in node.names), path
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "flax", path
                assert not node.module.startswith("jaxnas.") or node.module.startswith("jaxnas.spaces"), \
                    f"{path} imports {node.module}"
