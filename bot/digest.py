"""The weekly digest: every digest.weekday at digest.time (Monday 09:00 local by default) each
moderators' chat (bot.moderator_chat_id: every area; bot.area_moderator_chats: its area) gets the week
that ended in one PNG chart (matplotlib, Agg backend) with the numbers in the caption.

Sent through the outbox (sendPhoto with the PNG as an upload) under the dedup key
`digest:<first day>:<chat>`, so a week is never sent twice to a chat, whatever restarts or clock
jumps happen. Chinese labels need a CJK font (Debian: `apt-get install fonts-noto-cjk`), found with
matplotlib's font_manager; without one the digest is the same numbers as a text message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import io
import logging
from typing import Any

from bot.core.container import Core
from bot.core.outbox import upload
from bot.desk import Areas, DeskService, WeekFigures
from bot.reports import categories as rc
from storage import outbox as outbox_repo
from storage.outbox import NewMessage

log = logging.getLogger(__name__)

KIND = "weekly_digest"
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
TOP_CATEGORIES = 6


@functools.cache
def cjk_font() -> str | None:
    """The path of a font with Chinese glyphs that matplotlib can use, or None."""
    try:
        from matplotlib import font_manager
    except ImportError:
        return None
    by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in by_name:
            return by_name[family]
    for path in font_manager.findSystemFonts():
        lowered = path.lower()
        if "notosanscjk" in lowered.replace("-", "").replace("_", "") or "wqy" in lowered:
            return path
    return None


class DigestService:
    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def desk(self) -> DeskService:
        return self.core.service(DeskService)

    def due_week(self, now: dt.datetime) -> dt.date | None:
        """The first day of the week whose digest is due at `now` (the latest digest time passed), or
        None before the very first one could be due."""
        cfg = self.core.config.digest
        local = now.astimezone(self.core.tz)
        monday = local.date() - dt.timedelta(days=local.weekday())
        at = dt.time.fromisoformat(cfg.time)
        when = dt.datetime.combine(monday + dt.timedelta(days=cfg.weekday - 1), at, tzinfo=self.core.tz)
        if local < when:
            when -= dt.timedelta(days=7)
        return when.date() - dt.timedelta(days=7)

    def chats(self) -> dict[int, Areas]:
        """Every moderators' chat and the areas its digest covers (None: all)."""
        bot = self.core.config.bot
        chats: dict[int, Areas] = {}
        for area, chat_id in bot.area_moderator_chats.items():
            if chat_id and chat_id != bot.moderator_chat_id:
                chats[chat_id] = (chats.get(chat_id) or frozenset()) | {area}
        if bot.moderator_chat_id:
            chats[bot.moderator_chat_id] = None
        return chats

    @staticmethod
    def key(start: dt.date, chat_id: int) -> str:
        return f"digest:{start.isoformat()}:{chat_id}"

    async def queue_due(self) -> int:
        """Queue the due week's digest for every chat that has not had it; returns how many."""
        if not self.core.config.digest.enabled:
            return 0
        start = self.due_week(self.core.clock.now())
        if start is None:
            return 0
        queued = 0
        for chat_id, areas in self.chats().items():
            if await outbox_repo.get_by_key(self.core.db, self.key(start, chat_id)) is not None:
                continue  # already queued or sent: never twice
            queued += await self.queue(start, chat_id, areas)
        return queued

    async def queue(self, start: dt.date, chat_id: int, areas: Areas) -> int:
        figures = await self.desk.week(start, areas=areas)
        lang = self.core.config.bot.default_language
        caption = self.caption(figures, lang, areas)
        font = cjk_font()
        png = await asyncio.to_thread(self.render, figures, lang, font) if font else None
        if png is None:
            log.warning("digest: no CJK font found (apt-get install fonts-noto-cjk): sending text only")
            payload: dict[str, Any] = {
                "method": "sendMessage",
                "params": {"text": caption + "\n\n" + self.core.t(lang, "webapp.digest.no_chart")},
            }
        else:
            payload = {
                "method": "sendPhoto",
                "params": {"photo": upload(png, f"week-{start.isoformat()}.png"), "caption": caption[:1024]},
            }
        message = NewMessage(
            kind=KIND,
            dedup_key=self.key(start, chat_id),
            chat_id=chat_id,
            payload=payload,
            due_at=self.core.clock.now(),
            priority=5,
        )
        return await self.core.outbox.enqueue([message])

    # -- texts and the chart -----------------------------------------------------------------

    def caption(self, f: WeekFigures, lang: str, areas: Areas) -> str:
        t = self.core.t

        def hours(value: float | None) -> str:
            return t(lang, "webapp.digest.hours", hours=value) if value is not None else "—"

        lines = [
            t(
                lang,
                "webapp.digest.title",
                start=f.start.strftime("%m-%d"),
                end=f.end.strftime("%m-%d"),
                areas="、".join(sorted(areas)) if areas else t(lang, "webapp.digest.all_areas"),
            ),
            t(
                lang,
                "webapp.digest.reports",
                total=f.reports_total,
                acknowledged=f.acknowledged,
                resolved=f.resolved,
            ),
            t(
                lang,
                "webapp.digest.medians",
                ack=hours(f.median_ack_hours),
                resolve=hours(f.median_resolve_hours),
            ),
        ]
        top = sorted(f.by_category.items(), key=lambda kv: -sum(kv[1]))[:3]
        if top:
            lines.append(
                t(
                    lang,
                    "webapp.digest.top",
                    categories="、".join(f"{self._category(k, lang)} {sum(v)}" for k, v in top),
                )
            )
        lines.append(t(lang, "webapp.digest.tasks", done=sum(f.tasks_done), points=sum(f.points)))
        lines.append(t(lang, "webapp.digest.broadcasts", delivered=sum(f.broadcasts)))
        lines.append(t(lang, "webapp.digest.flags", flags=sum(f.flags.values())))
        return "\n".join(lines)

    def _category(self, key: str, lang: str) -> str:
        kind, code = key.split(":", 1)
        return rc.category_label(self.core.catalog, lang, kind, code, icon=False)

    def render(self, f: WeekFigures, lang: str, font: str | None) -> bytes:
        """The week as one PNG (2 x 2 panels). Runs in a thread: matplotlib's Agg backend only."""
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib import font_manager
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        t = self.core.t
        if font:
            font_manager.fontManager.addfont(font)
            family = font_manager.FontProperties(fname=font).get_name()
        else:
            family = "DejaVu Sans"
        days = [d.strftime("%m-%d") for d in f.days]
        x = list(range(7))

        def hours(value: float | None) -> str:
            return t(lang, "webapp.digest.hours", hours=value) if value is not None else "—"

        palette = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#9ca3af"]
        with matplotlib.rc_context({"font.family": family, "axes.unicode_minus": False, "font.size": 9}):
            fig = Figure(figsize=(9, 6.4), dpi=110)
            axes = fig.subplots(2, 2)
            fig.suptitle(
                t(lang, "webapp.digest.chart_title", start=f.start.isoformat(), end=f.end.isoformat()),
                fontsize=13,
                fontweight="bold",
            )
            # 1. reports per day by category (the largest ones, the rest as "other")
            ax = axes[0][0]
            ranked = sorted(f.by_category.items(), key=lambda kv: -sum(kv[1]))
            series = ranked[:TOP_CATEGORIES]
            rest = [sum(v[i] for _, v in ranked[TOP_CATEGORIES:]) for i in range(7)]
            bottom = [0] * 7
            for n, (key, values) in enumerate(series):
                ax.bar(
                    x, values, bottom=bottom, color=palette[n % len(palette)], label=self._category(key, lang)
                )
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            if any(rest):
                ax.bar(x, rest, bottom=bottom, color=palette[-1], label=t(lang, "webapp.digest.other"))
            ax.set_title(t(lang, "webapp.week.by_category"))
            if series:
                ax.legend(fontsize=7, loc="upper left")
            # 2. by status
            ax = axes[0][1]
            bottom = [0] * 7
            colors = {
                "new": "#ef4444",
                "acknowledged": "#f59e0b",
                "in_progress": "#3b82f6",
                "resolved": "#10b981",
                "rejected": "#6b7280",
                "duplicate": "#a855f7",
            }
            for status, values in f.by_status.items():
                ax.bar(
                    x,
                    values,
                    bottom=bottom,
                    color=colors.get(status, "#999"),
                    label=t(lang, f"reports.status.{status}"),
                )
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            ax.set_title(t(lang, "webapp.week.by_status"))
            if f.by_status:
                ax.legend(fontsize=7, loc="upper left")
            # 3. tasks done and points
            ax = axes[1][0]
            ax.bar(x, f.tasks_done, color="#10b981", label=t(lang, "webapp.week.tasks_done"))
            ax.set_title(t(lang, "webapp.week.tasks_points"))
            twin = ax.twinx()
            twin.plot(x, f.points, color="#f59e0b", marker="o", label=t(lang, "webapp.week.points"))
            ax.legend(loc="upper left", fontsize=7)
            twin.legend(loc="upper right", fontsize=7)
            # 4. broadcasts delivered and the figures in words
            ax = axes[1][1]
            ax.bar(x, f.broadcasts, color="#8b5cf6")
            ax.set_title(t(lang, "webapp.week.broadcasts"))
            summary = [
                t(
                    lang,
                    "webapp.digest.panel_ack",
                    hours=hours(f.median_ack_hours),
                ),
                t(
                    lang,
                    "webapp.digest.panel_resolve",
                    hours=hours(f.median_resolve_hours),
                ),
                t(lang, "webapp.digest.panel_flags", flags=sum(f.flags.values())),
            ]
            ax.text(
                0.98,
                0.97,
                "\n".join(summary),
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#f3f4f6", "edgecolor": "#d1d5db"},
            )
            for a in (axes[0][0], axes[0][1], axes[1][0], axes[1][1], twin):
                a.yaxis.set_major_locator(MaxNLocator(integer=True))
                a.set_ylim(bottom=0, top=max(1.0, a.get_ylim()[1]))
            for row in axes:
                for a in row:
                    a.set_xticks(x)
                    a.set_xticklabels(days, fontsize=7)
                    a.grid(axis="y", alpha=0.3)
            fig.tight_layout(rect=(0, 0, 1, 0.95))
            out = io.BytesIO()
            fig.savefig(out, format="png")
        return out.getvalue()
