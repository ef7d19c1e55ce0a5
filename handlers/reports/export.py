"""`/export [YYYY-MM-DD]` for moderators: the reports filed since a date (default: the last 30 days) of
their areas (authz scope) as a CSV document, UTF-8 with a BOM so Excel opens it. In a private chat or
a moderators' chat only: the file names reporters (never anonymous ones)."""

from __future__ import annotations

import datetime as dt
import io
import re

from telegram import InputFile, Update

from bot.core.app import XContext
from bot.core.authz import Perm
from handlers.common import is_private, private_only, reply, require
from handlers.reports.common import _service

DEFAULT_DAYS = 30
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")


def parse_since(text: str) -> dt.date | None:
    """2026-11-01 (also 2026/11/1, 2026.11.01, 2026年11月1日), or None."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


async def export_command(update: Update, context: XContext) -> None:
    await _export(update, context, " ".join(context.args or []))


async def export_link(update: Update, context: XContext, arg: str) -> None:
    """`/start export[_<date>]`: the button a moderator got in another group opens the export here."""
    await _export(update, context, arg)


async def _export(update: Update, context: XContext, arg: str) -> None:
    if not await require(update, context, Perm.REPORTS_HANDLE):
        return
    payload = f"export_{arg.strip()}" if parse_since(arg) else "export"
    if not await private_only(update, context, payload, moderators_chat=True):
        return
    core = context.core
    today = core.clock.now().astimezone(core.tz).date()
    if arg.strip():
        since = parse_since(arg)
        if since is None:
            await reply(update, context, context.t("reports.export_cmd.bad_date", text=arg.strip()[:30]))
            return
        if since > today:
            await reply(update, context, context.t("reports.export_cmd.future", date=since.isoformat()))
            return
    else:
        since = today - dt.timedelta(days=DEFAULT_DAYS)
    areas = await core.authz.areas_for(update.effective_user.id, Perm.REPORTS_HANDLE)
    # The file's columns and labels: the asker's language in private, the chat's default in a group.
    lang = context.lang if is_private(update) else core.config.bot.default_language
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    count = await _service(context).export_csv(since, stream, lang=lang, areas=areas)
    stream.flush()
    data = buffer.getvalue()
    stream.detach()
    scope = (
        context.t("role.everywhere")
        if areas is None
        else context.t("role.list_sep").join(sorted(areas)) or "—"
    )
    if count == 0:
        await reply(
            update, context, context.t("reports.export_cmd.empty", since=since.isoformat(), areas=scope)
        )
        return
    name = f"reports-{since.isoformat()}-{today.isoformat()}.csv"
    await context.bot.send_document(
        update.effective_chat.id,
        InputFile(io.BytesIO(data), filename=name),
        caption=context.t("reports.export_cmd.caption", count=count, since=since.isoformat(), areas=scope),
    )
