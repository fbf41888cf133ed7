"""`dvc.yaml` deps cannot drift from the code: each stage's static import closure is covered.

The closure of a stage starts at its module (`stages/<name>.py`, from the stage registry) and
follows, with `ast`, every `import` / `from ... import` of a repo module (`repurpose.*`,
`stages.*`), function-local ones included, plus string literals that name a repo module
(the lazy registries: `"repurpose.features.visual:ClipViTB32"`). Not followed: `if
TYPE_CHECKING:` blocks and `if __name__ == "__main__":` blocks (never run by `dvc repro`).
A package's `__init__.py` counts unless it holds only a docstring and constants.

`NOT_DEPS` are modules that only decide how work is scheduled or shown, never what is
computed (like the `orchestration` params, which are not DVC params either).

The reverse check fails too: a `.py` file or folder under `repurpose/` or `stages/` listed as
a dep that no file of the stage's closure is in only causes needless reruns.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import yaml

from repurpose.stage_registry import STAGES

ROOT = Path(__file__).resolve().parents[1]
CODE = ("repurpose", "stages")
MODULE_REF = re.compile(r"^(?:repurpose|stages)(?:\.\w+)+(?::\w+)?$")
NOT_DEPS = {
    "repurpose/runner.py",  # the Mapper protocol and the local mappers: scheduling only
    "repurpose/progress.py",  # progress bars, lines and the Prefect progress artifact
}


def module_file(name: str) -> Path | None:
    """The file of repo module `name` (a module or a package's `__init__.py`), if any."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _skipped(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` and `if __name__ == "__main__":` blocks."""
    if not isinstance(node, ast.If):
        return False
    test = ast.unparse(node.test).replace("'", '"')
    return test in ("TYPE_CHECKING", "typing.TYPE_CHECKING", '__name__ == "__main__"')


def _from_base(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module of a `from X import ...` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


@cache
def references(path: Path) -> tuple[str, ...]:
    """Repo module names `path` imports or names in a string (may be `pkg.attr`, not modules)."""
    found: list[str] = []
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"), str(path))]
    while stack:
        node = stack.pop()
        if _skipped(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, path)
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and MODULE_REF.match(node.value):
            found.append(node.value.split(":")[0])
        stack.extend(ast.iter_child_nodes(node))
    return tuple(name for name in found if name.split(".")[0] in CODE)


def trivial_init(path: Path) -> bool:
    """A package `__init__.py` with only a docstring and constant assignments."""
    if path.name != "__init__.py":
        return False
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            continue
        return False
    return True


def closure(module: str) -> set[str]:
    """Repo-relative paths of every file running `module` imports (transitively)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):  # a module runs its parent packages first
            path = module_file(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo += references(path)
    return {p.relative_to(ROOT).as_posix() for p in seen
            if not trivial_init(p) or p == module_file(module)}


def dvc_instances() -> dict[str, list[dict]]:
    """dvc.yaml stage name -> its stage definitions (one, or one per `foreach` item)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    out: dict[str, list[dict]] = {}
    for name, spec in stages.items():
        if "foreach" in spec:
            text = yaml.safe_dump(spec["do"])
            out[name] = [yaml.safe_load(text.replace("${item}", str(item)))
                         for item in spec["foreach"]]
        else:
            out[name] = [spec]
    return out


def _dep_paths(spec: dict) -> list[str]:
    """A dvc stage's deps as repo-relative paths (no trailing slash)."""
    return [str(dep).rstrip("/") for dep in spec.get("deps", [])]


def covered(path: str, deps: list[str]) -> bool:
    """True if `path` is a dep or lies under a folder dep."""
    return any(path == dep.rstrip("/") or path.startswith(dep.rstrip("/") + "/")
               for dep in deps)


def test_every_registered_stage_is_a_dvc_stage() -> None:
    assert [s.name for s in STAGES] == list(dvc_instances())


def test_dvc_deps_cover_each_stages_import_closure() -> None:
    instances = dvc_instances()
    missing = []
    for stage in STAGES:
        needed = sorted(closure(stage.module) - NOT_DEPS)
        for spec in instances[stage.name]:
            deps = _dep_paths(spec)
            missing += [f"{stage.name}: {path}" for path in needed if not covered(path, deps)]
    assert not missing, ("dvc.yaml deps miss files the stage imports (add them to the stage's "
                         "deps):\n  " + "\n  ".join(sorted(set(missing))))


def test_dvc_code_deps_are_imported_by_the_stage() -> None:
    instances = dvc_instances()
    unused = []
    for stage in STAGES:
        files = closure(stage.module)
        for spec in instances[stage.name]:
            for dep in _dep_paths(spec):
                is_code = dep.split("/")[0] in CODE and (dep.endswith(".py")
                                                         or (ROOT / dep).is_dir())
                if is_code and not any(covered(f, [dep]) for f in files):
                    unused.append(f"{stage.name}: {dep}")
    assert not unused, ("dvc.yaml lists code deps the stage never imports (remove them; "
                        "they only cause reruns):\n  " + "\n  ".join(sorted(set(unused))))


def test_registry_params_equal_dvc_params() -> None:
    instances = dvc_instances()
    for stage in STAGES:
        listed = {str(p) for spec in instances[stage.name] for p in spec.get("params", [])}
        assert listed == set(stage.params), (
            f"stage {stage.name}: dvc.yaml params {sorted(listed)} != registry "
            f"{sorted(stage.params)} (repurpose/stage_registry.py)")


def test_registry_params_keys_exist_in_params_yaml() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for stage in STAGES:
        for key in stage.params:
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, (
                    f"stage {stage.name}: params key {key} is not in params.yaml")
                node = node[part]


def test_closure_follows_local_imports_and_registry_strings() -> None:
    # the checker itself: evaluate uses postprocess (iou_1d), extract reaches the
    # visual backend only through the backends registry's "module:Class" strings
    assert "repurpose/model/postprocess.py" in closure("stages.evaluate")
    assert "repurpose/features/visual.py" in closure("stages.extract")
    assert "repurpose/training/index.py" in closure("stages.report")  # function-local import
    assert "repurpose/stage_registry.py" not in closure("stages.download")  # __main__ only
    assert not covered("repurpose/features/extract.py", ["repurpose/features/extraction"])
    assert covered("repurpose/asr/transcribe.py", ["repurpose/asr"])
    assert covered("repurpose/asr/transcribe.py", ["repurpose/asr/"])
