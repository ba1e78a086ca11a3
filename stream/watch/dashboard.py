"""`sessionrec dashboard`: a web page of the stream's live charts, served by aiohttp from what Redis holds.

Reads Redis only (stream.watch.timeline), so one page covers any number of
workers. Routes: ``/`` the page, ``/data`` its JSON (``?window=S``), and the
two scripts it loads, plotly.js from the installed plotly wheel and the
project's own. The demo runs one inside its event loop.
"""

from __future__ import annotations

import errno
import json

from aiohttp import web
from redis.exceptions import RedisError

from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.watch.page import dashboard_js, live_page, plotly_js
from sessionrec.stream.watch.timeline import read_timeline


class Dashboard:
    """The dashboard's web server over one RedisStore; start it, read ``url``, stop it."""

    def __init__(self, store: RedisStore, *, window_s: float, refresh_s: float, title: str = "sessionrec dashboard") -> None:
        self.store = store
        self.window_s = window_s
        self.page = live_page(title, refresh_s, window_s)
        self.plotly = plotly_js()  # checked now: a missing plotly is a one-line error before anything listens
        self.script = dashboard_js()
        self.url = ""
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.get("/", self._index), web.get("/data", self._data), web.get("/plotly.min.js", self._plotly),
                        web.get("/dashboard.js", self._script)])
        return app

    async def start(self, host: str, port: int) -> str:
        """Listen on ``host:port`` (0: a free port); returns the page's URL, or raises a one-line ConnectionError."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            busy = " (in use: pick another with --port)" if exc.errno == errno.EADDRINUSE else ""
            raise ConnectionError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}{busy}") from None
        self._runner = runner
        bound = runner.addresses[0][1]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=self.page, content_type="text/html")

    async def _plotly(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.plotly, headers={"Content-Type": "text/javascript", "Cache-Control": "max-age=86400"})

    async def _script(self, request: web.Request) -> web.Response:
        return web.Response(text=self.script, content_type="text/javascript")

    async def _data(self, request: web.Request) -> web.Response:
        try:
            window_s = min(max(float(request.query.get("window", self.window_s)), 1.0), self.store.metrics.bucket_ttl_s)  # no older bucket is kept
        except ValueError:
            return web.Response(status=400, text="window must be a number of seconds")
        try:
            timeline = await read_timeline(self.store, window_s)
        except (RedisError, OSError) as exc:  # the page says so and tries again
            return web.Response(status=503, text=f"Redis failed: {exc}")
        return web.Response(text=json.dumps(timeline), content_type="application/json")
