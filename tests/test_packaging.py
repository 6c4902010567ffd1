"""One distribution, one import name: what `pip` installs and how the packages depend on each other."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> the import name it installs as
PACKAGES = {
    "restem": "restem",
    "verifiers": "restem.verifiers",
    "sandbox": "restem.sandbox",
    "harness": "restem.harness",
    "benchmarks": "restem.benchmarks",
}
BARE = ("verifiers", "sandbox", "harness", "benchmarks")


def _modules() -> dict[str, Path]:
    """Every module of the distribution, by its installed name."""
    found = {}
    for folder, name in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((name, *parts))] = path
    return found


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for each import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((name, id(node) in top))
            # `from restem.verifiers import cli` imports a module too
            found += [(f"{name}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def _package_of(name: str) -> str:
    """restem.verifiers.math.parse -> restem.verifiers; restem.errors.RestemError -> restem.errors"""
    return ".".join(name.split(".")[:2])


def test_no_module_imports_a_bare_top_level_name():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for module, path in _modules().items()
        for name, _ in _imports(path, module)
        if name.split(".")[0] in BARE
    ]
    tests = [p for p in (ROOT / "tests").rglob("*.py")]
    offenders += [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in tests
        for name, _ in _imports(path, "tests.x")
        if name.split(".")[0] in BARE
    ]
    assert offenders == []


def test_the_packages_depend_only_downwards():
    # sandbox <- verifiers <- harness; benchmarks and the CLI on top; nothing imports them.
    allowed = {
        "restem.sandbox": {"restem.sandbox", "restem.errors"},
        "restem.verifiers": {
            "restem.verifiers",
            "restem.sandbox",
            "restem.errors",
            "restem.supervisor",
        },
        "restem.harness": {
            "restem.harness",
            "restem.verifiers",
            "restem.sandbox",
            "restem.errors",
            "restem.supervisor",
        },
    }
    offenders = []
    for module, path in _modules().items():
        mine = _package_of(module)
        for name, _ in _imports(path, module):
            if not name.startswith("restem"):
                continue
            theirs = _package_of(name)
            if theirs in ("restem.cli", "restem.benchmarks") and not module.startswith(theirs):
                if module != "restem.cli" and module != "restem.__main__":
                    offenders.append(f"{module} imports {name}")
            elif mine in allowed and theirs not in allowed[mine] and theirs != "restem":
                offenders.append(f"{module} imports {name}")
    assert offenders == []


def test_no_import_cycles():
    # Function-level (lazy) imports count too: a cycle there is still two modules that need
    # each other.
    modules = _modules()
    graph = {
        module: {name for name, _ in _imports(path, module) if name in modules}
        for module, path in modules.items()
    }
    # A package's __init__ importing its own submodules (`from pkg import sub`) is how packages
    # work, not a cycle.
    for module, deps in graph.items():
        graph[module] = {d for d in deps if d != module and not module.startswith(d + ".")}
    seen, on_path, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in on_path:
            cycles.append([*on_path[on_path.index(node) :], node])
            return
        if node in seen:
            return
        seen.add(node)
        on_path.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        on_path.pop()

    for module in sorted(graph):
        visit(module)
    assert cycles == []


def test_every_package_folder_is_listed_in_pyproject():
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join((PACKAGES[folder], *init.parent.relative_to(ROOT / folder).parts))
        for folder in PACKAGES
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert folders == listed


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info into the source tree.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "runs", "out", "build", "*.egg-info"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("restem-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"restem"}
    for module, path in _modules().items():
        assert (
            "/".join(module.split(".")) + ("/__init__.py" if path.name == "__init__.py" else ".py")
            in names
        ), module
    assert "restem/sandbox/docker/Dockerfile" in names  # package data travels too


@pytest.mark.slow
def test_restem_installs_beside_the_pypi_verifiers_library(tmp_path):
    """The collision that motivated the rename: both in one environment, both importable."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    other = subprocess.run([*pip, "verifiers"], capture_output=True, text=True, cwd=tmp_path)
    if other.returncode != 0:
        pytest.skip(f"the PyPI verifiers library did not install here: {other.stderr[-500:]}")
    code = (
        "import restem, verifiers, restem.verifiers as rv;"
        "assert 'site-packages/verifiers/' in verifiers.__file__, verifiers.__file__;"
        "assert 'site-packages/restem/verifiers/' in rv.__file__, rv.__file__;"
        "assert restem.verify_math('\\\\boxed{2/4}', '0.5').correct;"
        "print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
