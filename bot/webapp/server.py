"""The desk's web server: aiohttp in the bot's own process and event loop (polling and webhook mode
alike), on webapp.listen:webapp.port. `/` is the Mini App, `/static/` its files (the front-end
libraries are vendored under static/vendor/: nothing comes from a CDN), `/api/` the JSON API."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.core.container import Core
from bot.webapp import api

log = logging.getLogger(__name__)

STATIC = Path(str(resources.files("bot.webapp") / "static"))


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    # Only our own files and the configured tiles; never a third-party script.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


async def index(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def build_app(core: Core, bot: Any) -> web.Application:
    app = web.Application(
        middlewares=[security_headers, api.auth_middleware], client_max_size=api.MAX_UPLOAD + 1024
    )
    app[api.CORE] = core
    app[api.BOT] = bot
    app.router.add_get("/", index)
    app.router.add_get("/healthz", health)
    app.router.add_static("/static/", STATIC, append_version=False)
    api.add_routes(app)
    return app


class WebappServer:
    """Started by the desk's start-up hook when webapp.public_url is set; stopped with the bot."""

    def __init__(self, core: Core, bot: Any) -> None:
        self.core = core
        self.app = build_app(core, bot)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, *, port: int | None = None) -> None:
        cfg = self.core.config.webapp
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.listen, cfg.port if port is None else port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the port actually bound (0 = any)
        self.port = sockets[0].getsockname()[1] if sockets else cfg.port
        log.info(
            "webapp: serving the desk on http://%s:%s (public %s)", cfg.listen, self.port, cfg.public_url
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
