"""A throwaway ``redis-server`` for the tests, the benchmarks and trying the Redis cache backend.

Like :mod:`queryopt.embedded.postgres` does for PostgreSQL: a child process listening
only on a unix socket in a fresh temporary directory (no TCP port, so no
clashes), with persistence off, stopped by a parent-death signal
(``setpriv --pdeathsig``, Linux) if the process that started it dies::

    with EmbeddedRedis() as server:
        backend = RedisBackend(server.url, namespace="app")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from queryopt.errors import ServerError

__all__ = ["EmbeddedRedis", "find_redis_server"]

_INSTALL_ADVICE = (
    "Install it with `apt-get install redis-server` (Debian/Ubuntu), `dnf install redis` (Fedora) or "
    "`brew install redis` (macOS), or set REDIS_SERVER to its path"
)


def find_redis_server() -> Path:
    """``$REDIS_SERVER``, else ``redis-server`` on PATH; :class:`~queryopt.ServerError` when neither exists."""
    candidate = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if candidate and os.access(candidate, os.X_OK):
        return Path(candidate)
    raise ServerError(f"no redis-server binary found. {_INSTALL_ADVICE}")


class EmbeddedRedis:
    """A disposable Redis on a unix socket; :meth:`stop` and :meth:`start` again keep the same socket path."""

    def __init__(self, *, binary: str | Path | None = None, startup_timeout: float = 10.0) -> None:
        self.binary = Path(binary) if binary is not None else find_redis_server()
        self.startup_timeout = startup_timeout
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        if self.directory is None:
            raise ServerError("the embedded Redis has not been started")
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        """A ``unix://`` URL the ``redis`` package accepts."""
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError("the embedded Redis is not running")
        return self._process.pid

    def start(self) -> EmbeddedRedis:
        """Start the server (in the directory of a previous :meth:`stop`, if any: same socket path, no data)."""
        if self._process is not None:
            raise ServerError("the embedded Redis is already started")
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="queryopt-redis-"))
        prefix = [setpriv, "--pdeathsig", "TERM", "--"] if (setpriv := shutil.which("setpriv")) else []
        command = [
            *prefix, str(self.binary),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, keep_directory: bool = False) -> None:
        """Stop the server; ``keep_directory=True`` lets :meth:`start` listen on the same socket path again."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                try:
                    process.wait(5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if not keep_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def restart(self) -> EmbeddedRedis:
        """Stop and start again on the same socket path (the data is gone: persistence is off)."""
        self.stop(keep_directory=True)
        return self.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                status = self._process.returncode
                raise ServerError(f"redis-server exited during start-up (exit {status}): {self._log()}")
            if self._answers_ping():
                return
            time.sleep(0.01)
        raise ServerError(f"redis-server did not become ready within {self.startup_timeout:g}s: {self._log()}")

    def _answers_ping(self) -> bool:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1.0)
            client.connect(str(self.socket_path))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
        return False

    def _log(self) -> str:
        assert self.directory is not None
        try:
            return (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""
