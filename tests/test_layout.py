"""Tests mirror modules: ``thinkless/FOLDER/NAME.py`` has ``tests/FOLDER/test_NAME.py`` (a folder's ``__init__`` and
``__main__``: its ``test_base.py`` where it has one); the package's top-level modules have ``tests/test_NAME.py``."""

from .conftest import ROOT

COVERED_ELSEWHERE = {"thinkless/_verify_worker.py": "tests/test_grading.py",
                     "thinkless/__init__.py": "tests/test_grading.py",
                     "thinkless/vllm_think_bias.py": "tests/serving/test_requests.py"}  # the public path's alias


def test_every_module_has_a_test_file():
    missing = []
    for p in sorted((ROOT / "thinkless").rglob("*.py")):
        rel = p.relative_to(ROOT).as_posix()
        if rel in COVERED_ELSEWHERE:
            assert (ROOT / COVERED_ELSEWHERE[rel]).is_file(), rel
            continue
        folder = p.parent.relative_to(ROOT / "thinkless")
        tests = ROOT / "tests" / folder
        if p.stem in ("__init__", "__main__"):
            if folder.parts and not (tests / "test_base.py").is_file() and p.stem == "__main__":
                missing.append(rel)
            continue
        if not (tests / f"test_{p.stem}.py").is_file():
            missing.append(rel)
    assert not missing, f"modules without a test file of their name: {missing}"


def test_every_test_folder_mirrors_a_package_folder():
    for d in (ROOT / "tests").iterdir():
        if d.is_dir() and any(d.glob("test_*.py")):
            assert (ROOT / "thinkless" / d.name).is_dir(), f"tests/{d.name}/ mirrors no thinkless/{d.name}/"


def _imports(path, module):
    """The project modules ``module`` imports anywhere in its file (module level or inside a function)."""
    import ast

    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out |= {f"{name}.{a.name}" for a in node.names} | {name}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("thinkless")}


def test_no_import_circle():
    """No module imports, directly or through others, a module that imports it back (lazy imports count too: a
    function-local import is the same dependency, deferred)."""
    modules = {}
    for p in (ROOT / "thinkless").rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}
    # a package's face re-exports its modules: importing through it is importing them, not a dependency of its own
    faces = {m for m, p in modules.items() if p.name == "__init__.py"}
    graph = {m: {i for i in deps if i not in faces} for m, deps in graph.items()}
    state, circle = {}, []

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                circle.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circle, f"import circles: {circle}"
