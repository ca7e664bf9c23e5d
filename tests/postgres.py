"""A throwaway PostgreSQL server for the tests and the benchmark, and a fresh database per test.

`python -m tests.postgres -- <command> [args...]` starts one server, runs the command with
MUSICBOT_TEST_POSTGRES_URL set to its admin URL, then stops the server and removes its folder. Loaded as a
pytest plugin, this module provides the `postgres_url` fixture: a new, empty database on that server per test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

URL_ENV = "MUSICBOT_TEST_POSTGRES_URL"
REQUIRE_ENV = "MUSICBOT_REQUIRE_POSTGRES"
BIN_ENV = "MUSICBOT_PG_BIN"
SKIP_REASON = "PostgreSQL not available: run the tests through scripts/check or set MUSICBOT_TEST_POSTGRES_URL"

_START_TIMEOUT_S = 30
_HELPER_TIMEOUT_S = _START_TIMEOUT_S + 30  # initdb, pg_ctl start or stop
_START_ATTEMPTS = 3  # a fresh port each time, should another process take the free one first
_CONNECT_TIMEOUT_S = 10.0


def required() -> bool:
    """Whether a missing PostgreSQL is an error (CI) rather than a reason to skip."""
    return os.environ.get(REQUIRE_ENV, "") == "1"


def find_pg_bin() -> Path | None:
    """The folder of PostgreSQL's server programs: $MUSICBOT_PG_BIN, else the newest Debian one, else PATH's."""
    override = os.environ.get(BIN_ENV)
    if override:
        folder = Path(override)
        return folder if (folder / "initdb").is_file() else None
    candidates = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb") if path.is_file()]
    numbered = [folder for folder in candidates if folder.parent.name.isdigit()]
    if numbered:
        return max(numbered, key=lambda folder: int(folder.parent.name))
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when root (initdb refuses root), else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, but neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as")


def _as_user(user: pwd.struct_passwd | None, command: list[str]) -> list[str]:
    if user is None:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", user.pw_name, "--", *command]
    return command  # _run switches user itself


def _run(user: pwd.struct_passwd | None, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one of PostgreSQL's programs as `user`, without the caller's PG* variables; output captured.

    It runs in a session of its own, out of reach of a terminal's Ctrl-C, and is let finish should this process
    be interrupted meanwhile: the cleanup then finds everything it made (a server pg_ctl started included).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    switch = user is not None and not shutil.which("runuser")
    with subprocess.Popen(
        _as_user(user, command),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        user=user.pw_uid if switch and user else None,
        group=user.pw_gid if switch and user else None,
        extra_groups=[] if switch else None,
    ) as process:
        try:
            out, err = process.communicate(timeout=_HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        except BaseException:
            _finish(process)
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _finish(process: subprocess.Popen[str]) -> None:
    """Wait for an interrupted helper to end by itself (they are quick), ignoring further interruptions."""
    deadline = time.monotonic() + _HELPER_TIMEOUT_S
    while True:
        try:
            process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
        except (KeyboardInterrupt, _Terminated):
            continue
        return


def _temp_parent() -> str | None:
    """The temp folder, or /tmp when some folder above it is closed to other users (the server's user)."""
    folder = Path(tempfile.gettempdir()).resolve()
    for path in (folder, *folder.parents):
        if not path.stat().st_mode & 0o001:
            return "/tmp"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _has_c_utf8() -> bool:
    import locale

    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _stop(pg_bin: Path, user: pwd.struct_passwd | None, folder: Path, data: Path) -> None:
    """Stop the server at once (nothing in it is worth keeping); SIGKILL it should pg_ctl not manage."""
    pid = _postmaster_pid(data)
    if pid is None:
        return
    try:
        stop = [str(pg_bin / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w", "-t", "10"]
        stopped = _run(user, stop, folder).returncode == 0
    except subprocess.TimeoutExpired:
        stopped = False
    if not stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # ours to reap only under _become_subreaper; else init reaps it


def _become_subreaper() -> None:
    """Adopt orphaned descendants (the server, once pg_ctl exits), so _stop can reap it: no zombie left behind."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a private PostgreSQL server in a new temp folder; yield its admin URL; stop it, remove the folder."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        if os.environ.get(BIN_ENV):
            raise RuntimeError(f"{BIN_ENV}={os.environ[BIN_ENV]} has no initdb")
        raise RuntimeError("no initdb found: install Debian's postgresql package")
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="musicbot-pg-", dir=_temp_parent()))
    data = folder / "data"
    log = folder / "server.log"
    try:
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        locale_option = "--locale=C.UTF-8" if _has_c_utf8() else "--no-locale"
        initdb = [str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "--no-sync", "-U", "postgres", "-E", "UTF8"]
        done = _run(user, [*initdb, locale_option], folder)
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
            raise RuntimeError(f"initdb failed (exit status {done.returncode}):\n{output}")
        for _attempt in range(_START_ATTEMPTS):
            port = _free_port()
            log.unlink(missing_ok=True)  # each attempt's log on its own
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {shlex.quote(str(folder))} -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            )
            start = [str(pg_bin / "pg_ctl"), "start", "-w", "-t", str(_START_TIMEOUT_S), "-D", str(data)]
            done = _run(user, [*start, "-l", str(log), "-o", options], folder)
            if done.returncode == 0:
                break
            _stop(pg_bin, user, folder, data)
            if "could not bind" not in _tail(log):
                break
        else:
            done = subprocess.CompletedProcess([], 1, "", f"its port was taken on each of {_START_ATTEMPTS} attempts")
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise RuntimeError(
                f"PostgreSQL did not start (pg_ctl exit status {done.returncode}): {output}\n"
                f"server log ({log}):\n{_tail(log)}"
            )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        try:
            _stop(pg_bin, user, folder, data)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


async def create_database(admin_url: str) -> str:
    """Create a new, empty database through the admin URL; return its URL."""
    name = f"t_{secrets.token_hex(8)}"
    connection = await asyncpg.connect(admin_url, timeout=_CONNECT_TIMEOUT_S)
    try:
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await connection.close()
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


async def drop_database(admin_url: str, url: str) -> None:
    """Drop the database `url` names, closing any connections still open to it."""
    name = urlsplit(url).path.lstrip("/")
    if not name or '"' in name:
        raise ValueError(f"not a database URL this module made: {url!r}")
    connection = await asyncpg.connect(admin_url, timeout=_CONNECT_TIMEOUT_S)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The shared server's admin URL; skips (fails under MUSICBOT_REQUIRE_POSTGRES=1) when there is none."""
    url = os.environ.get(URL_ENV)
    if not url:
        if required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {URL_ENV} is unset: run the tests through scripts/check")
        pytest.skip(SKIP_REASON)
    return url


@pytest_asyncio.fixture
async def postgres_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the shared server for one test, dropped afterwards."""
    url = await create_database(postgres_admin_url)
    try:
        yield url
    finally:
        await drop_database(postgres_admin_url, url)


class _Terminated(BaseException):
    """SIGTERM arrived while the server was starting: unwind so it is stopped and its folder removed."""


def _raise_terminated(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Terminated


def _in_terminal_foreground(pid: int) -> bool:
    """Whether `pid` is in the terminal's foreground process group (so it got the terminal's Ctrl-C too)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgid(pid)
    except OSError:
        return False
    finally:
        os.close(fd)


def _run_command(command: Sequence[str], env: dict[str, str]) -> int:
    """Run the command to its end, passing on SIGTERM/SIGHUP (and SIGINT not from the terminal); its status."""
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as error:
        print(f"tests.postgres: cannot run {command[0]!r}: {error}", file=sys.stderr)
        return 127
    deadline: list[float] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and _in_terminal_foreground(child.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)
        deadline.append(time.monotonic() + 30)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            status = child.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            if deadline and time.monotonic() > deadline[0]:
                child.kill()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # let the teardown finish
    _reap_orphans()
    return 128 - status if status < 0 else status


def _reap_orphans() -> None:
    """Reap the descendants that exited after their parent did (adopted by _become_subreaper)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def _exec(command: Sequence[str], env: dict[str, str]) -> NoReturn:
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as error:
        print(f"tests.postgres: cannot run {command[0]!r}: {error}", file=sys.stderr)
        sys.exit(127)


def main(argv: Sequence[str]) -> int:
    """`python -m tests.postgres -- <command> [args...]`: run the command against a throwaway server."""
    command = list(argv[1:] if argv[:1] == ["--"] else argv)
    if not command:
        print("usage: python -m tests.postgres -- <command> [args...]", file=sys.stderr)
        return 2
    if os.environ.get(URL_ENV):
        _exec(command, dict(os.environ))
    env = {key: value for key, value in os.environ.items() if key != URL_ENV}
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)
    _become_subreaper()
    try:
        with contextlib.ExitStack() as stack:
            try:
                url = stack.enter_context(throwaway_postgres())
            except RuntimeError as error:
                if required():
                    print(f"tests.postgres: {REQUIRE_ENV}=1 but PostgreSQL cannot start: {error}", file=sys.stderr)
                    return 1
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                print(f"PostgreSQL not available ({reason}); PostgreSQL tests will be skipped", file=sys.stderr)
                _exec(command, env)
            return _run_command(command, {**env, URL_ENV: url})
    except _Terminated:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
