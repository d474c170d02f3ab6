"""The README and the guides in docs/ as a reader uses them: the Python they print runs or at least compiles, every
`hub-models` command they print exists with the options they give it, their links lead somewhere, and the plugin
guide's example is the template's code."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

import hub_models
from hub_models.cli_args import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def command_lines(page: Path) -> list[list[str]]:
    """Each `hub-models ...` command of the page's bash blocks, as words (comments and line continuations gone)."""
    found = []
    for block in blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value before the command
                words.pop(0)
            if words[:1] == ["hub-models"]:
                found.append(words[1:])
            elif "hub_models.cli" in words:  # torchrun ... -m hub_models.cli train ...
                found.append(words[words.index("hub_models.cli") + 1 :])
    return found


def test_the_readme_is_one_page_and_every_guide_is_linked():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\ntitle: hub-models\n")  # the Space's front matter stays on top
    assert len(readme.splitlines()) <= 200
    for guide in sorted((ROOT / "docs").glob("*.md")):
        if guide.name != "README.md":
            assert f"docs/{guide.name}" in readme, f"README.md does not link docs/{guide.name}"
            assert f"({guide.name})" in index, f"docs/README.md does not list {guide.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_lead_to_files(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+:", target):
            assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_compile(page):
    for source in blocks(page, "python"):
        ast.parse(source)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_printed_commands_exist_with_their_options(page):
    """Every subcommand printed is one `hub-models` has, and every option is one it takes (for `generate`, with
    the named model's own inputs)."""
    commands = build_parser()._subparsers._group_actions[0].choices  # argparse keeps subparsers here
    for words in command_lines(page):
        name = words[0]
        assert name in commands, f"{page.name}: `hub-models {name}` is not a command"
        sub = build_parser(command=name)._subparsers._group_actions[0].choices[name]  # with train's settings
        if name == "generate" and len(words) > 1 and words[1] in hub_models.list_models():
            model_parser = build_parser(hub_models.get_model_class(words[1]))
            sub = model_parser._subparsers._group_actions[0].choices["generate"]
        for word in words[1:]:
            flag = word.strip("[]").split("=")[0]
            if flag.startswith("-") and flag != "-" and not re.fullmatch(r"-\d.*", flag):
                assert flag in sub._option_string_actions, f"{page.name}: `hub-models {name}` has no {flag}"


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's Python block, as printed, offline and from a fresh directory (it trains a toy GAN briefly)."""
    (source,) = blocks(ROOT / "README.md", "python")
    monkeypatch.chdir(tmp_path)
    exec(compile(source, "README.md", "exec"), {})
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "runs" / "toy" / "model" / "model.safetensors").is_file()


def test_the_plugin_guide_example_is_the_templates_code():
    """docs/plugins.md shows the template's model as it is; the template's own tests (run installed by
    tests/test_plugin_template.py) check that code with check_plugin."""
    block = next(b for b in blocks(ROOT / "docs" / "plugins.md", "python") if "class SpiralGAN" in b)
    spiral = ROOT / "plugin-template" / "hub_models_spiral" / "spiral.py"
    assert block in spiral.read_text(encoding="utf-8")


def test_the_test_command_is_what_ci_runs():
    assert "make test" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, flags=re.M) and re.search(r"^demo:", makefile, flags=re.M)
