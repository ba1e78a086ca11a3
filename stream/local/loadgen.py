"""An open-loop HTTP load generator, run as its own process: `python -m sessionrec.stream.local.loadgen < plan.json > result.json`.

Request i is due at ``start + i / rate`` whatever happened to the ones before
it (open loop: a slow answer does not slow the load, as a real crowd's
requests would not wait either). Its latency runs from the moment it was due
to the last byte of its answer, so time spent waiting for a free connection
counts too (no coordinated omission); ``service`` latency runs from the
moment it was written. HTTP/1.1 with keep-alive over a pool of connections,
written by hand over asyncio streams: a general client costs several times
the CPU per request, which on a small machine would be taken from the server
measured. Answers must carry a Content-Length (uvicorn's do).

The plan (JSON): host, port, rate, seconds, warmup_s, connections, and
requests: a list of [method, path, body or null], used round-robin.
The result (JSON): per request after the warm-up, latency and service time in
seconds and the status; the rate reached; connection errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    latency_s: list[float] = field(default_factory=list)
    service_s: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    seconds: float = 0.0  # from the first request due after the warm-up to the last answer


def encode(host: str, port: int, method: str, path: str, body: Any) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + payload


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request and read its whole answer; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), None)
    if length is None:
        raise ValueError("an answer without Content-Length")
    await reader.readexactly(length)
    return status


async def run(plan: dict[str, Any]) -> Result:
    host, port, rate = plan["host"], int(plan["port"]), float(plan["rate"])
    requests = [encode(host, port, method, path, body) for method, path, body in plan["requests"]]
    total = int(rate * (plan["warmup_s"] + plan["seconds"]))
    counted_from = int(rate * plan["warmup_s"])
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(int(plan["connections"])):
        idle.put_nowait(await asyncio.open_connection(host, port))
    result = Result()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    last_answer = start

    async def one(i: int, due: float) -> None:
        nonlocal last_answer
        reader, writer = await idle.get()
        written = loop.time()
        try:
            status = await exchange(reader, writer, requests[i % len(requests)])
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")
            writer.close()
            idle.put_nowait(await asyncio.open_connection(host, port))
            return
        done = loop.time()
        idle.put_nowait((reader, writer))
        if i >= counted_from:
            result.latency_s.append(done - due)
            result.service_s.append(done - written)
            result.status.append(status)
            last_answer = max(last_answer, done)

    tasks = []
    for i in range(total):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    result.sent = total - counted_from
    result.seconds = last_answer - (start + counted_from / rate)
    while not idle.empty():
        idle.get_nowait()[1].close()
    return result


def main() -> None:
    result = asyncio.run(run(json.load(sys.stdin)))
    json.dump(asdict(result), sys.stdout)


if __name__ == "__main__":
    main()
