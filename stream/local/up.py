"""`sessionrec up` and `down`: local Tansu and Redis that outlive the command, for running the parts by hand.

`up` starts both detached on free loopback ports and records them (pid,
port, URL, log folder) in a state file, by default ``runs/local-servers.json``;
`down` reads that file and stops exactly those processes. A recorded pid is
taken for the server only while that process still runs the recorded binary
on the recorded port, so a pid the system has since given to another
program is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sessionrec.stream.local.servers import Service, ServiceError, start_redis, start_tansu
from sessionrec.stream.settings import PREFIX

_PROC = Path("/proc")


@dataclass(frozen=True)
class Server:
    """One recorded server process."""

    name: str  # tansu or redis
    pid: int
    port: int
    url: str
    binary: str  # the program it runs: checked before it is signalled
    workdir: str  # its log (and Redis' working directory), removed by `down`

    @classmethod
    def of(cls, service: Service) -> Server:
        return cls(service.name, service.process.pid, service.port, service.url, service.process.args[0], str(service.workdir))

    @property
    def running(self) -> bool:
        """Whether the pid still is this server: it runs the recorded binary with the port on its command line (not a zombie)."""
        if not _PROC.is_dir():  # no /proc here: all one can know is whether the pid exists
            return _exists(self.pid)
        try:
            exe = os.readlink(_PROC / str(self.pid) / "exe")  # the binary itself: a server may rewrite its command line
            argv = (_PROC / str(self.pid) / "cmdline").read_bytes()
        except OSError:
            return False
        return exe == os.path.realpath(self.binary) and str(self.port).encode() in argv

    def line(self) -> str:
        return f"{'Tansu' if self.name == 'tansu' else 'Redis'} {self.url} (pid {self.pid})"


@dataclass(frozen=True)
class Servers:
    """What `up` started: a broker and a Redis."""

    tansu: Server
    redis: Server

    @property
    def exports(self) -> dict[str, str]:
        """The settings that point every command at these servers."""
        return {f"{PREFIX}KAFKA_BOOTSTRAP": self.tansu.url, f"{PREFIX}REDIS_URL": self.redis.url}

    def export_lines(self) -> str:
        return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in self.exports.items())

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(json.dumps({"tansu": asdict(self.tansu), "redis": asdict(self.redis), "exports": self.exports}, indent=2))
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> Servers | None:
        """The servers ``path`` records; None without the file. A file that is not such a record is a ServiceError."""
        try:
            data = json.loads(path.read_text())
            return cls(Server(**data["tansu"]), Server(**data["redis"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ServiceError(f"{path} is not a record of local servers ({exc}); remove it if nothing runs from it") from None


def up(path: Path, kafka_port: int | None = None, redis_port: int | None = None) -> Servers:
    """Start Tansu and Redis detached and record them in ``path``; refuses while servers recorded there still run."""
    recorded = Servers.read(path)
    if recorded is not None and (live := [s for s in (recorded.tansu, recorded.redis) if s.running]):
        raise ServiceError(f"local servers are already up: {', '.join(s.line() for s in live)} (recorded in {path}); "
                           "`sessionrec down` stops them")
    started = [start_tansu(kafka_port, detached=True)]
    try:
        started.append(start_redis(redis_port, detached=True))
        servers = Servers(*(Server.of(service) for service in started))
        try:
            servers.write(path)
        except OSError as exc:
            raise ServiceError(f"cannot record the servers in {path}: {exc.strerror or exc}") from None
    except BaseException:
        for service in started:  # nothing left running that no record names
            service.stop()
        raise
    return servers


def down(path: Path, timeout: float = 10.0) -> list[tuple[Server, bool]]:
    """Stop the servers ``path`` records and forget them: each with whether it was still running. Empty without a record."""
    recorded = Servers.read(path)
    if recorded is None:
        return []
    stopped = [(server, _stop(server, timeout)) for server in (recorded.tansu, recorded.redis)]
    path.unlink(missing_ok=True)
    return stopped


def _stop(server: Server, timeout: float = 10.0) -> bool:
    """Terminate the server's process group, then kill it after ``timeout``; remove its folder. Whether it was running."""
    was_running = server.running
    if was_running:
        _signal(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while server.running and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.running:
            _signal(server.pid, signal.SIGKILL)
            while server.running and time.monotonic() < deadline + timeout:
                time.sleep(0.05)
    shutil.rmtree(server.workdir, ignore_errors=True)
    return was_running


def _signal(pid: int, sig: signal.Signals) -> None:
    """The server leads its own process group (it was started in a new session): signal the group, else the process."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
