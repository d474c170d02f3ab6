"""The code's layout: every name has one home, and every import names it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["hub_models", "tests", "benchmarks", "demo", "train", "plugin-template"]


def _module_path(module: str) -> Path | None:
    """The file of a hub_models module (a package's ``__init__.py``), None for other packages."""
    if module != "hub_models" and not module.startswith("hub_models."):
        return None
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _defined_names(body: list[ast.stmt]) -> set[str]:
    """Names a module defines itself at top level (functions, classes, assignments, also inside top-level ``if`` /
    ``try`` blocks), not the ones it imports."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.If | ast.Try):
            blocks = [node.body, node.orelse, *([h.body for h in node.handlers] if isinstance(node, ast.Try) else [])]
            names |= set().union(*(_defined_names(block) for block in blocks))
    return names


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """(absolute module, name, line) of every ``from X import name`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        found += [(module, alias.name, node.lineno) for alias in node.names]
    return found


def test_every_import_names_the_module_that_defines_the_name():
    """No module re-exports another's names: ``from hub_models.X import n`` only where X defines n (or n is a
    submodule of the package X). A package's ``__init__`` may gather its own public API under ``__all__`` (the
    package ``hub_models`` for users and plugin authors, ``hub_models.engine`` for the trainer)."""
    wrong = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            for module, name, line in _imports(path):
                target = _module_path(module)
                if target is None or not target.is_file():
                    continue
                tree = ast.parse(target.read_text(encoding="utf-8"))
                if (
                    name in _defined_names(tree.body)
                    or (target.parent / name).is_dir()
                    or (target.parent / f"{name}.py").is_file()
                ):
                    continue
                if target.name == "__init__.py" and name in _public_api(tree):
                    continue
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {name} is not defined in {module}")
    assert wrong == []


def _public_api(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {ast.literal_eval(element) for element in node.value.elts}
    return set()


def test_only_packages_have_a_public_api_list():
    """``__all__`` in a plain module would list re-exported names; packages' ``__init__`` files list their API."""
    modules = [p for p in (ROOT / "hub_models").rglob("*.py") if p.name != "__init__.py"]
    assert [str(p.relative_to(ROOT)) for p in modules if _public_api(ast.parse(p.read_text(encoding="utf-8")))] == []


# what the contract provides on top of the hooks: a plugin that overrode one would change it for its callers only
PROVIDED = {"generate", "decode_latents", "train", "to", "save_pretrained", "generate_model_card"}


def test_plugins_override_only_the_hooks_and_keep_their_signatures():
    """Substitutable plugins: a plugin (or its helper mixin) overrides the contract's hooks only, and each hook
    with the contract's positional parameters, by name and in order (a plugin adds inputs after them)."""
    import inspect

    import hub_models
    from hub_models.contract import GenerativeModel
    from hub_models.locations import BUILTIN_MODELS

    wrong = []
    for model_id in BUILTIN_MODELS:
        cls = hub_models.get_model_class(model_id)
        for name, base in vars(GenerativeModel).items():
            if not inspect.isfunction(base) or name.startswith("__") or getattr(cls, name) is base:
                continue
            if name in PROVIDED:
                wrong.append(f"{model_id} overrides {name}")
                continue
            expected = _positional(base)
            if _positional(getattr(cls, name))[: len(expected)] != expected:
                wrong.append(
                    f"{model_id}.{name}{inspect.signature(getattr(cls, name))} is not {name}{inspect.signature(base)}"
                )
    assert wrong == []


def _positional(fn) -> list[str]:
    import inspect

    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds]


def test_one_function_writes_model_cards():
    """Every card on disk is written by ``weights.write_card`` (save_pretrained and push_to_hub, update_metrics, the
    regeneration of the bundled cards, the MNIST classifier's export): only it, and the mixin's
    ``generate_model_card`` that returns the card object, call ``build_card``."""
    callers = set()
    for path in sorted((ROOT / "hub_models").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "build_card":
                        callers.add(f"{path.relative_to(ROOT / 'hub_models')}:{function.name}")
    assert callers == {"weights.py:write_card", "contract.py:generate_model_card"}


MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60
REASON = "long because"  # how a longer file (in its first 30 lines) or function (in its body) states why
# Long code that predates this check, to be split by its owners: each may shrink, none may grow (drop an entry once
# its code is short).
KNOWN_LONG: dict[str, int] = {}  # path or path:function -> its length (none: each says why)


def test_long_files_and_functions_say_why():
    """No Python file over 400 lines and no function over 60 unless it says why ("... long because ...")."""
    long = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            name = path.relative_to(ROOT).as_posix()
            if len(lines) > KNOWN_LONG.get(name, MAX_FILE_LINES) and REASON not in "\n".join(lines[:30]).lower():
                long.append(f"{name}: {len(lines)} lines")
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    size = node.end_lineno - node.lineno + 1
                    body = "\n".join(lines[node.lineno - 1 : node.end_lineno]).lower()
                    if size > KNOWN_LONG.get(f"{name}:{node.name}", MAX_FUNCTION_LINES) and REASON not in body:
                        long.append(f"{name}:{node.lineno} {node.name}(): {size} lines")
    assert long == []
