"""Two instances on one PostgreSQL database: one active, the other on standby (issue 15).

The active instance holds a lease in the database (storage/leader.py) and renews it every third of
its length; only the active one polls (or receives the webhook), runs the jobs and the outbox. A
standby asks for the lease every second and answers `/healthz` with 503, so a reverse proxy sends the
webhook to the active one; when the active one dies its lease lapses and the standby takes over: it
then starts like any instance (PTB loads conversations and drafts from the database, the outbox
settles the rows whose sender's lease lapsed).

An active instance that cannot renew in time (the database unreachable, or the lease taken because
it stalled) stops sending at once and exits (its supervisor starts it again, as a standby): two
active instances would answer every update twice.

The lease runs on the wall clock (a lease is about real seconds, not the bot's business time), with
the usual assumption of clocks kept in step (NTP) across the machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from storage import leader

log = logging.getLogger(__name__)

LEASE_NAME = "bot"


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leadership:
    def __init__(self, db: Any, *, ttl: float, holder: str | None = None) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=ttl)
        self.holder = holder or instance_name()
        self.active = False
        self._beat: asyncio.Task[None] | None = None

    @staticmethod
    def _now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def try_acquire(self) -> bool:
        self.active = await leader.acquire(self.db, LEASE_NAME, self.holder, self._now(), self.ttl)
        return self.active

    async def wait_acquired(self, stop: asyncio.Event, poll: float = 1.0) -> bool:
        """Ask for the lease until it is ours (True) or `stop` is set (False)."""
        told = False
        while not stop.is_set():
            try:
                if await self.try_acquire():
                    log.info("cluster: this instance (%s) is active", self.holder)
                    return True
            except Exception as exc:  # the database away for a moment: keep waiting
                log.warning("cluster: cannot ask for the lease: %s", exc)
            if not told:
                with contextlib.suppress(Exception):
                    found = await leader.holder(self.db, LEASE_NAME)
                    log.info("cluster: standby; active instance: %s", found[0] if found else "?")
                    told = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll)
        return False

    def start_heartbeat(self, on_lost: Callable[[], None]) -> None:
        self._beat = asyncio.create_task(self._heartbeat(on_lost), name="cluster-heartbeat")

    async def _heartbeat(self, on_lost: Callable[[], None]) -> None:
        every = self.ttl.total_seconds() / 3
        renewed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(every)
            try:
                if not await self.try_acquire():
                    log.error("cluster: the lease was taken by another instance; stopping")
                    break
                renewed = asyncio.get_running_loop().time()
            except Exception as exc:
                # Not renewed: give up before the lease can lapse (a third of it left as a margin).
                left = self.ttl.total_seconds() - (asyncio.get_running_loop().time() - renewed)
                log.warning("cluster: cannot renew the lease (%s); %.1f s left", exc, left)
                if left <= every:
                    log.error("cluster: the lease could not be renewed in time; stopping")
                    break
        self.active = False
        on_lost()

    async def stop(self, *, release: bool = True) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat
            self._beat = None
        if release and self.active:
            with contextlib.suppress(Exception):
                await leader.release(self.db, LEASE_NAME, self.holder)
                log.info("cluster: lease released")
        self.active = False


class HealthServer:
    """GET /healthz: 200 {"role": "active"} on the active instance, 503 {"role": "standby"} else."""

    def __init__(self, is_active: Callable[[], bool], listen: str, port: int) -> None:
        self.is_active = is_active
        self.listen = listen
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _health(self, _request: web.Request) -> web.Response:
        if self.is_active():
            return web.json_response({"role": "active"})
        return web.json_response({"role": "standby"}, status=503)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        await site.start()
        log.info("cluster: health on http://%s:%s/healthz", self.listen, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
