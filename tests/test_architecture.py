"""Architecture rules: dependencies point inward, and the extension list and the backend registry load with unique
names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from discord import app_commands

from bot.app import EXTENSIONS
from bot.backends import ADAPTERS

ROOT = Path(__file__).resolve().parent.parent
DISCORD_ALLOWED_IN_CORE = {"bot/app.py", "bot/tree.py", "bot/__main__.py"}
COGS_ALLOWED_IN_CORE = {"bot/app.py", "bot/tree.py"}  # the bot loads the cogs; the tree answers with their words
DISCORD_MARKUP = ("<t:", "<@", "<#", "](http", "**")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def top_level(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


@pytest.mark.parametrize("path", sorted((ROOT / "bot").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_discord_or_cogs(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    tops = {top_level(module) for module in imported_modules(path)}
    assert "cogs" not in tops or relative in COGS_ALLOWED_IN_CORE, f"{relative} imports the Discord layer"
    if relative not in DISCORD_ALLOWED_IN_CORE:
        assert "discord" not in tops, f"{relative} imports discord; only {DISCORD_ALLOWED_IN_CORE} may"


def string_literals(source: str) -> list[str]:
    """Every string a module can show anyone, f-string parts included; docstrings and other bare string
    statements are documentation, not output."""
    tree = ast.parse(source)
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in documentation
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "bot").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_strings_hold_no_discord_markup(path: Path) -> None:
    """The core says what happened in data; mentions, timestamps, links and bold belong to the Discord layer."""
    relative = path.relative_to(ROOT).as_posix()
    if relative in DISCORD_ALLOWED_IN_CORE:
        return
    literals = string_literals(path.read_text(encoding="utf-8"))
    offending = [text for text in literals if any(mark in text for mark in DISCORD_MARKUP)]
    assert not offending, f"{relative} holds Discord markup in {offending}"


def test_the_markup_checker_sees_f_strings_and_skips_docstrings() -> None:
    sample = '''"""Says **when**."""\nWHEN = f"<t:{stamp}:R>"\nWHO = "<@" + str(user) + ">"\n'''
    literals = string_literals(sample)
    assert "<t:" in literals
    assert "<@" in literals
    assert not any("**" in text for text in literals)


@pytest.mark.parametrize("path", sorted((ROOT / "cogs").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_cogs_hold_no_sql_and_no_http(path: Path) -> None:
    tops = {top_level(module) for module in imported_modules(path)}
    assert not tops & {"aiosqlite", "sqlite3", "aiohttp"}, f"{path.name} reaches past the core"
    assert not any(module.startswith("bot.storage") for module in imported_modules(path))


def test_the_rule_checker_sees_imports() -> None:
    sample = ROOT / "cogs" / "music.py"
    assert "discord" in {top_level(module) for module in imported_modules(sample)}


def test_every_extension_imports_and_command_names_are_unique() -> None:
    names: list[str] = []
    for extension in EXTENSIONS:
        module = importlib.import_module(extension)
        assert callable(getattr(module, "setup", None)), f"{extension} has no setup()"
        for value in vars(module).values():
            if isinstance(value, type):
                for attribute in vars(value).values():
                    if isinstance(attribute, app_commands.Command | app_commands.Group):
                        names.append(attribute.qualified_name)  # subcommands of two groups may share a name
    assert "music" in names
    assert "music-custom" in names
    assert len(names) == len(set(names)), f"duplicate command names: {names}"


def test_every_adapter_module_is_listed_once_in_the_backend_registry() -> None:
    names = [spec.name for spec in ADAPTERS]
    assert len(names) == len(set(names)), f"duplicate backend names: {names}"
    for path in sorted((ROOT / "bot" / "backends").glob("*.py")):
        module = importlib.import_module(f"bot.backends.{path.stem}")
        spec = getattr(module, "ADAPTER", None)
        assert spec is None or spec in ADAPTERS, f"{path.name} defines ADAPTER but is not in ADAPTERS"


def test_the_backends_never_import_the_settings() -> None:
    """Settings reads the adapters' specs; the adapters get plain values, so there is no cycle to hide."""
    for path in sorted((ROOT / "bot" / "backends").rglob("*.py")):
        assert "bot.settings" not in imported_modules(path), f"{path.name} imports bot.settings"
    settings = ast.parse((ROOT / "bot" / "settings.py").read_text(encoding="utf-8"))
    for function in ast.walk(settings):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            inner = [node for node in ast.walk(function) if isinstance(node, ast.Import | ast.ImportFrom)]
            assert not inner, f"bot/settings.py imports inside {function.name}()"
