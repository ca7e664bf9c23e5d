"""The wheel the Docker image installs (`uv sync --no-editable`) carries every package, migration and the
console script."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from bot.storage.database import bundled_migrations

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_holds_code_migrations_and_entry_point(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None, "uv is needed to build the wheel (the README's commands need it too)"
    result = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for dialect in ("sqlite", "postgresql"):
        for migration in bundled_migrations(dialect):
            assert f"bot/storage/migrations/{dialect}/{migration.name}" in names
    for module in ("bot/__main__.py", "bot/backends/sunoapi.py", "cogs/music.py", "cogs/buttons.py"):
        assert module in names
    for catalogue in (ROOT / "cogs" / "locales").glob("*.po"):  # read at start-up: the image needs them too
        assert f"cogs/locales/{catalogue.name}" in names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "musicbot = bot.__main__:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
