"""Architecture rules: dependencies point inward, and the extension list loads with unique command names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from discord import app_commands

from bot.app import EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
DISCORD_ALLOWED_IN_CORE = {"bot/app.py", "bot/tree.py", "bot/__main__.py"}


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
    assert "cogs" not in tops or relative == "bot/app.py", f"{relative} imports the Discord layer"
    if relative not in DISCORD_ALLOWED_IN_CORE:
        assert "discord" not in tops, f"{relative} imports discord; only {DISCORD_ALLOWED_IN_CORE} may"


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
                        names.append(attribute.name)
    assert "music" in names
    assert "music-custom" in names
    assert len(names) == len(set(names)), f"duplicate command names: {names}"
