"""Warm stations in chat: a shared location, a venue or typed coordinates -> the nearest stations
(paging, facility filters, wider search, venue and Amap buttons); /stations TEXT searches by name or
address; /station ID shows one; couriers flag problems; moderators add, edit and deactivate.

Callback data carries the search point (st:n:LAT:LON:PAGE:FILTERS:WIDE), so every list button keeps
working after a restart and needs no state; station ids in buttons are re-read and re-checked.

Groups: Telegram allows no location-request keyboard there, and with privacy mode on the bot gets
neither plain locations nor plain text. /stations answers with a ForceReply prompt (a reply to the
bot always reaches it): a location, venue, coordinates or a place name sent as a reply to that prompt
is answered, and a deep link opens the private chat (/start stations) where the menu's 📍 button works.

Moderator edits time out after EDIT_TIMEOUT without input (PTB's conversation_timeout, plus the clock
check in ``_fresh`` that also holds after a restart, when PTB's timeout jobs are gone); while a text
field is being edited, a location or typed coordinates leave the edit and are searched instead.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.kit.geo import CoordinateError, LatLon, amap_marker_url, parse_coordinates
from bot.kit.numbers import parse_id
from bot.kit.opening_hours import OpeningHoursError, parse_opening_hours
from bot.stations import facilities as fac
from bot.stations import intents
from bot.stations.service import (
    FLAG_REASONS,
    OPEN_FILTER,
    Found,
    StationInputError,
    StationService,
    format_distance,
    format_when,
    format_where,
    render_card,
    render_details,
)
from handlers.common import (
    Command,
    actor_of,
    cb,
    community,
    deep_link,
    draft_state,
    drop_draft,
    is_private,
    main_menu,
    open_private_button,
    reply,
    require,
)
from handlers.core import cancel_fallback, deep_links

COMMANDS = [
    Command("stations", "stations.ui.cmd_stations"),
    Command("station", "stations.ui.cmd_station"),
    Command("addstation", "stations.ui.cmd_addstation", scope="private", perm=Perm.STATIONS_EDIT),
]

# Filter codes <-> one letter in callback data ("o": open now, beside the facility filters).
_LETTER = {OPEN_FILTER: "o", "charge": "c", "swap": "s", "meal": "m", "toilet": "t", "water": "w"}
_CODE = {v: k for k, v in _LETTER.items()}
_FILTER_BUTTONS = ((OPEN_FILTER, "🟢"), *((f.code, f.icon) for f in fac.FILTERS))
LOCATION_FRESH = dt.timedelta(minutes=30)
"""A shared location this recent answers a typed word (厕所, 充电...) without asking again."""
PENDING_FRESH = dt.timedelta(minutes=15)
"""A word typed without a fresh location: its filter applies to a location shared within this time."""
PENDING = "stations_pending"  # user_data: {"letters": "t", "at": ISO}
FLAG_NOTES = "stations_flag_notes"  # user_data: [{"flag", "chat", "msg", "at"}], the latest last
FLAG_NOTES_KEPT = 5
FLAG_NOTE_FRESH = dt.timedelta(hours=24)
EDIT_FIELDS = ("name", "address", "opening_hours", "facilities", "phone", "location")
TEXT_LIMITS = {"name": 60, "address": 120, "opening_hours": 120, "facilities": 300, "phone": 40}
DRAFT = "stations"
NOTE_REASONS = ("broken", "other")  # flags that ask for an optional explanation
EDIT_VALUE, ADD_NAME, ADD_LOCATION, ADD_KIND, ADD_FACILITIES, ADD_HOURS, ADD_ADDRESS, ADD_AREA = range(8)
SEARCH_LIMIT = 5
EDIT_TIMEOUT = dt.timedelta(minutes=10)
MAX_AREA_CHOICES = 24


def _service(context: XContext) -> StationService:
    return context.core.service(StationService)


def _filters_text(letters: str) -> str:
    return "".join(ch for ch in "ocswtm" if ch in letters)


def _remember_location(context: XContext, lat: float, lon: float) -> None:
    """The last shared location (user_data["location"], also read by the wish wall): a typed 厕所
    within LOCATION_FRESH uses it."""
    if context.user_data is not None:
        context.user_data["location"] = {"lat": lat, "lon": lon, "at": context.core.clock.now().isoformat()}


def _since(context: XContext, saved: Any) -> dt.timedelta | None:
    """How long ago an ISO time stored in user_data was (None: missing or unreadable)."""
    try:
        at = dt.datetime.fromisoformat(str(saved))
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        return None
    return context.core.clock.now() - at


def _fresh_location(context: XContext) -> tuple[float, float, dt.timedelta] | None:
    """The last shared location if it is at most LOCATION_FRESH old: (lat, lon, age)."""
    saved = context.user_data.get("location") if context.user_data is not None else None
    if not isinstance(saved, dict):
        return None
    age = _since(context, saved.get("at"))
    try:
        lat, lon = float(saved["lat"]), float(saved["lon"])
    except (KeyError, TypeError, ValueError):
        return None
    if age is None or not dt.timedelta(0) <= age <= LOCATION_FRESH:
        return None
    return lat, lon, age


def _take_pending(update: Update, context: XContext) -> str:
    """The filter letters a typed word left for the next location (private chats only), used once."""
    if not is_private(update) or context.user_data is None:
        return ""
    pending = context.user_data.pop(PENDING, None)
    if not isinstance(pending, dict):
        return ""
    age = _since(context, pending.get("at"))
    if age is None or not dt.timedelta(0) <= age <= PENDING_FRESH:
        return ""
    return "".join(ch for ch in str(pending.get("letters", "")) if ch in _CODE)


# -- nearest ------------------------------------------------------------------------------------


async def _nearest_view(
    context: XContext, lat: float, lon: float, page: int, letters: str, wide: bool
) -> tuple[str, InlineKeyboardMarkup]:
    service = _service(context)
    config = context.core.config.stations
    radius = config.wide_radius_m if wide else config.radius_m
    codes = [_CODE[ch] for ch in letters if ch in _CODE]
    result = await service.nearest_page(lat, lon, page=page, radius_m=radius, filters=codes)
    catalog, lang = context.core.catalog, context.lang
    radius_text = _radius_text(context, radius)
    rows: list[list[InlineKeyboardButton]] = []
    lines: list[str] = []
    labels = context.t("stations.label_sep").join(context.t(f"stations.filter.{c}") for c in codes)
    if result.items:
        lines.append(context.t("stations.results_title", radius=radius_text))
        if codes:
            lines.append(context.t("stations.ui.filters_active", filters=labels))
        if result.passed_closed:
            lines.append(context.t("stations.open_first_note"))
        for i, found in enumerate(result.items, start=result.offset + 1):
            lines.append("")
            lines.append(render_card(catalog, lang, found, index=i))
            rows.append(_station_buttons(context, found, i))
    else:
        if codes:
            lines.append(context.t("stations.ui.no_match_filters", radius=radius_text, filters=labels))
        else:
            lines.append(context.t("stations.none_within", radius=radius_text))
        nearest = await service.nearest_any(lat, lon, filters=codes)
        if nearest is None:
            if await service.has_stations():
                far = _radius_text(context, service.any_radius_m(codes))
                lines.append(
                    context.t("stations.ui.none_far_filtered" if codes else "stations.none_far", radius=far)
                )
            elif not codes:
                lines.append(context.t("stations.none_at_all"))
        else:
            lines.append(_nearest_anyway(context, nearest))
            lines.append(render_card(catalog, lang, nearest, index=1))
            rows.append(_station_buttons(context, nearest, 1))
        # Offer the wider radius only when it would find something (the nearest one lies within it).
        wider_finds = nearest is not None and (nearest.distance_m or 0) <= config.wide_radius_m
        if not wide and config.wide_radius_m > config.radius_m and wider_finds:
            wider = _radius_text(context, config.wide_radius_m)
            rows.append(
                [
                    InlineKeyboardButton(
                        context.t("stations.ui.wider", radius=wider),
                        callback_data=_n(lat, lon, 0, letters, True),
                    )
                ]
            )
    buttons = [
        InlineKeyboardButton(
            ("✅" if _LETTER[code] in letters else icon) + context.t(f"stations.filter.{code}"),
            callback_data=_n(lat, lon, 0, _toggle(letters, _LETTER[code]), wide),
        )
        for code, icon in _FILTER_BUTTONS
    ]
    rows += [buttons[:3], buttons[3:]]
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                context.t("stations.ui.prev"), callback_data=_n(lat, lon, page - 1, letters, wide)
            )
        )
    if result.has_more:
        nav.append(
            InlineKeyboardButton(
                context.t("stations.ui.more"), callback_data=_n(lat, lon, page + 1, letters, wide)
            )
        )
    if codes:
        nav.append(
            InlineKeyboardButton(
                context.t("stations.ui.clear_filters"), callback_data=_n(lat, lon, 0, "", wide)
            )
        )
    if nav:
        rows.append(nav)
    return "\n".join(lines), InlineKeyboardMarkup(rows)


def _nearest_anyway(context: XContext, found: Found) -> str:
    """The line above the one station shown when none is within the radius: open, or when it opens."""
    where = format_where(context.core.catalog, context.lang, found)
    status = found.status
    if status is None:
        return context.t("stations.nearest_anyway", where=where)
    if status.is_open:
        return context.t("stations.nearest_anyway_open", where=where)
    if status.changes_at is None:
        return context.t("stations.nearest_anyway_shut", where=where)
    when = format_when(context.core.catalog, context.lang, status.changes_at, found.checked_at)
    return context.t("stations.nearest_anyway_closed", where=where, when=when)


def _radius_text(context: XContext, metres: float) -> str:
    """A search radius: "3 公里", "500 米", "2.5 公里"."""
    if metres >= 1000 and metres % 1000 == 0:
        return context.t("stations.km", n=int(metres // 1000))
    return format_distance(context.core.catalog, context.lang, metres)


def _n(lat: float, lon: float, page: int, letters: str, wide: bool) -> str:
    return cb("st", "n", f"{lat:.5f}", f"{lon:.5f}", page, _filters_text(letters) or "-", int(wide))


def _toggle(letters: str, letter: str) -> str:
    return letters.replace(letter, "") if letter in letters else letters + letter


def _station_buttons(context: XContext, found: Found, index: int) -> list[InlineKeyboardButton]:
    s = found.station
    return [
        InlineKeyboardButton(
            context.t("stations.ui.navigate", index=index), callback_data=cb("st", "v", s.id)
        ),
        InlineKeyboardButton(
            context.t("stations.ui.amap", index=index), url=amap_marker_url(LatLon(s.lat, s.lon), s.name)
        ),
        InlineKeyboardButton(
            context.t("stations.ui.details", index=index), callback_data=cb("st", "d", s.id)
        ),
    ]


async def _answer_point(
    update: Update,
    context: XContext,
    lat: float,
    lon: float,
    note: str = "",
    letters: str | None = None,
    *,
    remember: bool = True,
) -> None:
    """The nearest stations to a point sent now (``remember``: kept as the last location); ``letters``:
    filters, by default those a typed word left waiting for this location (厕所 -> "t")."""
    if remember:
        _remember_location(context, lat, lon)
    if letters is None:
        letters = _take_pending(update, context)
    text, keyboard = await _nearest_view(context, lat, lon, 0, letters, False)
    await reply(update, context, (note + "\n" + text) if note else text, reply_markup=keyboard)


async def on_location(update: Update, context: XContext) -> None:
    """A location or venue. Only new messages reach here: a live location answers its first share,
    its updates (edited messages) are not answered again."""
    await _answer_message_point(update, context)


async def on_coordinates(update: Update, context: XContext) -> None:
    await _answer_message_point(update, context)


async def _answer_message_point(update: Update, context: XContext, note: str = "") -> None:
    """Nearest stations to a message's location, venue or typed coordinates (prefixed by ``note``)."""
    message = update.effective_message
    point = message.venue.location if message.venue else message.location
    if point is not None:
        await _answer_point(update, context, point.latitude, point.longitude, note)
        return
    try:
        parsed = parse_coordinates(message.text or "")
    except CoordinateError as exc:
        error = context.t(f"stations.ui.{exc.key.replace('.', '_')}", **exc.details)
        await reply(update, context, (note + "\n" + error) if note else error)
        return
    if parsed.swapped:
        note = (note + "\n" if note else "") + context.t("stations.ui.swapped")
    await _answer_point(update, context, parsed.point.lat, parsed.point.lon, note)


def _coordinate_like(text: str | None) -> bool:
    """Two numbers as coordinates are typed (in range or not); never a phone number or a name."""
    if not text:
        return False
    try:
        parse_coordinates(text)
    except CoordinateError as exc:
        return exc.key != "coords.format"
    return True


def _point_like(message: Message) -> bool:
    return message.location is not None or message.venue is not None or _coordinate_like(message.text)


async def page_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    try:
        _, _, lat_s, lon_s, page_s, letters, wide_s = (query.data or "").split(":")
        lat, lon, page = float(lat_s), float(lon_s), int(page_s)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 <= page < 1000) or wide_s not in ("0", "1"):
            raise ValueError
    except ValueError:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    letters = "" if letters == "-" else "".join(ch for ch in letters if ch in _CODE)
    text, keyboard = await _nearest_view(context, lat, lon, page, letters, wide_s == "1")
    await query.answer()
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except Exception:  # the same page pressed twice ("not modified"): nothing to change
        pass


async def _ask_location_private(update: Update, context: XContext) -> None:
    """The main menu (its first button shares the location) and how to use it."""
    button = context.t("menu.stations")
    await reply(
        update, context, context.t("stations.ui.ask_location", button=button), reply_markup=main_menu(context)
    )


async def _ask_location_group(update: Update, context: XContext) -> None:
    """A ForceReply prompt (replies to it reach the bot under privacy mode) and a private-chat link."""
    message = update.effective_message
    await reply(
        update,
        context,
        context.t("stations.ui.group_ask"),
        reply_markup=ForceReply(
            selective=True, input_field_placeholder=context.t("stations.ui.group_placeholder")
        ),
        reply_to_message_id=message.message_id if message else None,
    )
    await reply(
        update,
        context,
        context.t("stations.ui.group_private", button=context.t("menu.stations")),
        reply_markup=open_private_button(context, "stations", "stations.ui.open_private"),
    )


async def stations_link(update: Update, context: XContext, _arg: str) -> None:
    """/start stations: the deep link from a group."""
    await _ask_location_private(update, context)


async def stations_command(update: Update, context: XContext) -> None:
    text = " ".join(context.args or []).strip()
    if not text:
        if is_private(update):
            await _ask_location_private(update, context)
        else:
            await _ask_location_group(update, context)
        return
    try:
        parsed = parse_coordinates(text)
    except CoordinateError:
        parsed = None
    if parsed is not None:
        await _answer_point(update, context, parsed.point.lat, parsed.point.lon)
        return
    await _search(update, context, text)


async def on_prompt_reply(update: Update, context: XContext) -> None:
    """In a group, a reply to the /stations prompt: a location, venue, coordinates or a place name."""
    message = update.effective_message
    if _point_like(message):
        await _answer_message_point(update, context)
        return
    text = (message.text or "").strip()
    if text:
        await _search(update, context, text)


_MENU_KEYS = ("menu.stations", "menu.report", "menu.wishes", "menu.meetings", "menu.me")


async def on_free_text(update: Update, context: XContext) -> None:
    text = (update.effective_message.text or "").strip()
    intent = intents.read(text)
    if intent is not None:
        await _answer_intent(update, context, intent)
        return
    if text and await _service(context).search(text[:40], limit=1):
        await _search(update, context, text)
        return
    await reply(
        update,
        context,
        context.t("stations.ui.free_text_hint", query=text[:40], button=context.t("menu.stations")),
        reply_markup=main_menu(context),
    )


async def _answer_intent(update: Update, context: XContext, intent: intents.Intent) -> None:
    """A word typed in private: 你好 -> the short help; 附近 -> ask for the location; 厕所 -> the
    nearest with a toilet from the last location shared within LOCATION_FRESH, else ask for one and
    keep the filter for it (PENDING_FRESH)."""
    if intent.kind == "hello":
        name = update.effective_user.first_name if update.effective_user else ""
        text = context.t("start.greeting", name=name) + "\n\n" + context.t("stations.ui.hello_tip")
        await reply(update, context, text, reply_markup=main_menu(context))
        return
    if intent.kind == "nearby":
        context.user_data.pop(PENDING, None)
        await _ask_location_private(update, context)
        return
    letters = _filters_text("".join(_LETTER[c] for c in intent.filters))
    button = context.t("menu.stations")
    fresh = _fresh_location(context)
    if fresh is not None:
        lat, lon, age = fresh
        minutes = int(age.total_seconds() // 60)
        if minutes < 1:
            note = context.t("stations.ui.word_saved_location_now", button=button)
        else:
            note = context.t("stations.ui.word_saved_location", minutes=minutes, button=button)
        context.user_data.pop(PENDING, None)
        await _answer_point(update, context, lat, lon, note, letters=letters, remember=False)
        return
    context.user_data[PENDING] = {"letters": letters, "at": context.core.clock.now().isoformat()}
    labels = context.t("stations.label_sep").join(context.t(f"stations.filter.{c}") for c in intent.filters)
    what = context.t("stations.ui.word_filter_label", filters=labels)
    await reply(
        update,
        context,
        context.t("stations.ui.word_ask_location", filters=what, button=button),
        reply_markup=main_menu(context),
    )


async def _search(update: Update, context: XContext, text: str) -> None:
    text = text[:40]
    found = await _service(context).search(text, limit=SEARCH_LIMIT + 1)
    if not found:
        await reply(update, context, context.t("stations.search_none", query=text))
        return
    catalog, lang = context.core.catalog, context.lang
    lines = [context.t("stations.search_title", query=text)]
    rows = []
    for i, item in enumerate(found[:SEARCH_LIMIT], start=1):
        lines.append("")
        lines.append(render_card(catalog, lang, item, index=i))
        rows.append(_station_buttons(context, item, i))
    if len(found) > SEARCH_LIMIT:
        lines.append("")
        lines.append(context.t("stations.ui.search_more", count=SEARCH_LIMIT))
    await reply(update, context, "\n".join(lines), reply_markup=InlineKeyboardMarkup(rows))


# -- one station ----------------------------------------------------------------------------------


def _station_id(data: str | None, position: int = 2) -> int | None:
    try:
        return int((data or "").split(":")[position])
    except (IndexError, ValueError):
        return None


async def venue_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    station = await _service(context).get(_station_id(query.data) or 0)
    if station is None or not station.active:
        await query.answer(context.t("stations.ui.gone"), show_alert=True)
        return
    await query.answer()
    await context.bot.send_venue(
        update.effective_chat.id,
        latitude=station.lat,
        longitude=station.lon,
        title=station.name,
        address=station.address or station.name,
    )


async def _details_view(
    context: XContext, station_id: int, actor_update: Update
) -> tuple[str, InlineKeyboardMarkup] | None:
    service = _service(context)
    found = await service.describe(station_id)
    if found is None:
        return None
    s = found.station
    text = render_details(context.core.catalog, context.lang, found)
    if not s.active:
        text = context.t("stations.ui.inactive_note") + "\n" + text
    rows = [
        [
            InlineKeyboardButton(context.t("stations.ui.navigate_one"), callback_data=cb("st", "v", s.id)),
            InlineKeyboardButton(
                context.t("stations.ui.amap_one"), url=amap_marker_url(LatLon(s.lat, s.lon), s.name)
            ),
        ],
        [InlineKeyboardButton(context.t("stations.ui.flag"), callback_data=cb("st", "f", s.id))],
    ]
    decision = await context.core.authz.check(actor_of(actor_update), Perm.STATIONS_EDIT, s.area)
    if decision.allowed and not is_private(actor_update):
        # A moderator in a group (the moderators' chat, from a flag notice): editing is a private
        # conversation; this button opens it at the station.
        rows.append(
            [
                InlineKeyboardButton(
                    context.t("stations.ui.edit_private"), url=deep_link(context, f"station_{s.id}")
                )
            ]
        )
    if decision.allowed and is_private(actor_update):
        edit = [
            InlineKeyboardButton(context.t(f"stations.ui.edit_{f}"), callback_data=cb("st", "e", s.id, f))
            for f in EDIT_FIELDS
        ]
        rows.append(edit[:3])
        rows.append(edit[3:])
        toggle = "on" if not s.active else "off"
        rows.append(
            [
                InlineKeyboardButton(
                    context.t("stations.ui.activate" if not s.active else "stations.ui.deactivate"),
                    callback_data=cb("st", toggle, s.id),
                )
            ]
        )
    return text, InlineKeyboardMarkup(rows)


async def details_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    view = await _details_view(context, _station_id(query.data) or 0, update)
    if view is None:
        await query.answer(context.t("stations.ui.gone"), show_alert=True)
        return
    await query.answer()
    await reply(update, context, view[0], reply_markup=view[1])


async def station_link(update: Update, context: XContext, arg: str) -> None:
    """/start station_12: a station's details in private (from the moderators' chat)."""
    view = await _details_view(context, parse_id(arg) or 0, update)
    if view is None:
        await reply(update, context, context.t("stations.ui.gone"), reply_markup=main_menu(context))
        return
    await reply(update, context, view[0], reply_markup=view[1])


async def station_command(update: Update, context: XContext) -> None:
    try:
        station_id = int((context.args or [""])[0])
    except ValueError:
        await reply(update, context, context.t("stations.ui.station_usage"))
        return
    view = await _details_view(context, station_id, update)
    if view is None:
        await reply(update, context, context.t("stations.ui.gone"))
        return
    await reply(update, context, view[0], reply_markup=view[1])


# -- flags --------------------------------------------------------------------------------------


async def flag_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    station = await _service(context).get(_station_id(query.data) or 0)
    if station is None:
        await query.answer(context.t("stations.ui.gone"), show_alert=True)
        return
    await query.answer()
    rows = [
        [
            InlineKeyboardButton(
                context.t(f"stations.flag_reason.{r}"), callback_data=cb("st", "fr", station.id, r)
            )
        ]
        for r in FLAG_REASONS
    ]
    await reply(
        update,
        context,
        context.t("stations.ui.flag_ask", name=station.name),
        reply_markup=InlineKeyboardMarkup(rows),
    )


async def flag_reason_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = (query.data or "").split(":")
    station_id = _station_id(query.data)
    reason = parts[3] if len(parts) == 4 else ""
    if station_id is None or reason not in FLAG_REASONS:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    result = await _service(context).flag(station_id, update.effective_user.id, reason)
    if result is None:
        await query.answer(context.t("stations.ui.gone"), show_alert=True)
        return
    if result.duplicate:
        text = context.t("stations.ui.flag_repeat")
    else:
        text = context.t("stations.ui.flag_done" if result.notified_chat else "stations.ui.flag_recorded")
    await query.answer()
    await query.edit_message_text(text)
    if not result.duplicate and reason in NOTE_REASONS:
        # The flag is already stored and on its way; an explanation is optional. A reply reaches the
        # bot in a group too (privacy mode), hence ForceReply rather than a conversation step. The
        # prompt shows no id: the flag is kept in the courier's data, by the prompt's message id.
        pending = _flag_notes(context)
        entry: dict[str, Any] = {
            "flag": result.flag_id,
            "chat": update.effective_chat.id,
            "msg": None,
            "at": context.core.clock.now().isoformat(),
        }
        pending.append(entry)
        del pending[:-FLAG_NOTES_KEPT]
        prompt = await reply(
            update, context, context.t("stations.ui.flag_note_ask"), reply_markup=ForceReply(selective=True)
        )
        if prompt is not None:
            entry["msg"] = prompt.message_id


def _flag_notes(context: XContext) -> list[dict[str, Any]]:
    notes = context.user_data.get(FLAG_NOTES)
    if not isinstance(notes, list):
        notes = context.user_data[FLAG_NOTES] = []
    return notes


_FLAG_REF = re.compile(r"#(\d{1,12})\s*$")  # prompts sent before 0013 ended with "#<flag id>"


def _flag_of_prompt(context: XContext, chat_id: int, prompt: Message) -> int | None:
    """The flag a "want to say more?" prompt asked about: by its message id, else the latest flag
    asked about in this chat (a prompt that went out through the outbox has no id noted), else the
    id an older prompt showed."""
    notes = []
    for note in _flag_notes(context):
        age = _since(context, note.get("at")) if isinstance(note, dict) else None
        if age is not None and age <= FLAG_NOTE_FRESH and note.get("chat") == chat_id:
            notes.append(note)
    for note in reversed(notes):
        if note.get("msg") == prompt.message_id:
            return int(note["flag"])
    for note in reversed(notes):
        if note.get("msg") is None:
            return int(note["flag"])
    found = _FLAG_REF.search(prompt.text or "")
    return int(found.group(1)) if found else None


async def on_flag_note(update: Update, context: XContext) -> None:
    """A reply to the "want to say more?" prompt: the note goes to the same moderators (the service
    checks the flag is the courier's own and has no note yet)."""
    message = update.effective_message
    target = message.reply_to_message
    flag_id = _flag_of_prompt(context, update.effective_chat.id, target) if target is not None else None
    added = flag_id is not None and await _service(context).add_flag_note(
        flag_id, update.effective_user.id, message.text or ""
    )
    if added:
        context.user_data[FLAG_NOTES] = [n for n in _flag_notes(context) if n.get("flag") != flag_id]
    await reply(
        update, context, context.t("stations.ui.flag_note_done" if added else "stations.ui.flag_note_stale")
    )


class _FlagNotePrompt(filters.MessageFilter):
    """A reply to the bot's "want to say more about your station report?" prompt."""

    def __init__(self, starts: set[str]) -> None:
        super().__init__(name="FlagNotePrompt")
        self.starts = starts

    def filter(self, message: Message) -> bool:
        target = message.reply_to_message
        text = (target.text or "") if target is not None else ""
        return bool(
            target is not None
            and target.from_user is not None
            and target.from_user.is_bot
            and any(text.startswith(s) for s in self.starts)
        )


# -- moderators: a flag's notice in the moderators' chat --------------------------------------------


async def flag_notice_pressed(update: Update, context: XContext) -> None:
    """st:fg:<action>:<flag id> under a flag notice: d details, h handled, x deactivate (asks), y
    confirm, b back. The flag and its station are re-read; each needs STATIONS_EDIT on its area."""
    query = update.callback_query
    parts = (query.data or "").split(":")
    action = parts[2] if len(parts) == 4 else ""
    flag_id = (parse_id(parts[3]) if len(parts) == 4 else None) or 0
    service = _service(context)
    shown = await service.flag_notice(flag_id) if action in ("d", "h", "x", "y", "b") else None
    if shown is None:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    station = shown.station
    if not await require(update, context, Perm.STATIONS_EDIT, station.area):
        return
    if action == "d":
        view = await _details_view(context, station.id, update)
        await query.answer()
        if view is not None:
            await reply(update, context, view[0], reply_markup=view[1])
        return
    if action in ("x", "b"):
        if shown.flag.handled_at is not None:
            await query.answer(context.t("stations.ui.flag_already"), show_alert=True)
            await _show_notice(query, shown.text, shown.markup)
            return
        lang = context.core.config.bot.default_language
        if action == "x":
            await query.answer(context.t("stations.ui.flag_confirm", name=station.name))
        else:
            await query.answer(context.t("stations.ui.flag_back"))
        markup = service.flag_keyboard(lang, shown.flag, confirm=action == "x")
        await _show_notice(query, shown.text, markup)
        return
    outcome = await service.handle_flag(
        flag_id, update.effective_user.id, "deactivated" if action == "y" else "handled"
    )
    if outcome is None:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    if not outcome.changed:
        text = context.t("stations.ui.flag_already")
    elif action == "y":
        text = context.t("stations.ui.flag_deactivated_now", name=station.name)
    else:
        text = context.t("stations.ui.flag_handled_now")
    await query.answer(text, show_alert=action == "y" or not outcome.changed)
    await _show_notice(query, outcome.notice.text, outcome.notice.markup)


async def _show_notice(query: Any, text: str, markup: dict[str, Any]) -> None:
    """Redraw a flag notice (its text as the database now has it, and its buttons)."""
    keyboard = InlineKeyboardMarkup.de_json(markup, None)
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest:  # not modified, or the message is gone: nothing to redraw
        pass


# -- moderators: activate, deactivate, edit, add ----------------------------------------------------


async def toggle_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    service = _service(context)
    station = await service.get(_station_id(query.data) or 0)
    if station is None:
        await query.answer(context.t("stations.ui.gone"), show_alert=True)
        return
    if not await require(update, context, Perm.STATIONS_EDIT, station.area):
        return
    if query.data.split(":")[1] == "off":
        await service.deactivate(station.id)
        text = context.t("stations.ui.deactivated", name=station.name)
    else:
        await service.activate(station.id)
        text = context.t("stations.ui.activated", name=station.name)
    await query.answer(text, show_alert=True)
    view = await _details_view(context, station.id, update)
    if view is not None:
        await query.edit_message_text(view[0], reply_markup=view[1])


def _touch(context: XContext) -> None:
    """Note the time of the moderator's last step (the flow expires EDIT_TIMEOUT after it)."""
    draft_state(context, DRAFT)["at"] = context.core.clock.now().isoformat()


def _expired(context: XContext) -> bool:
    at = draft_state(context, DRAFT).get("at")
    if not at:
        return False
    try:
        last = dt.datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return True
    return context.core.clock.now() - last > EDIT_TIMEOUT


async def _leave_flow(update: Update, context: XContext, note_key: str, **values: Any) -> int:
    """End the flow and drop its draft; a location or coordinates sent meanwhile is searched."""
    drop_draft(context, DRAFT)
    note = context.t(note_key, minutes=int(EDIT_TIMEOUT.total_seconds() // 60), **values)
    query = update.callback_query
    if query is not None:
        await query.answer(note, show_alert=True)
    elif _point_like(update.effective_message):
        await _answer_message_point(update, context, note)
    else:
        await reply(update, context, note, reply_markup=main_menu(context))
    return ConversationHandler.END


Step = Callable[[Update, XContext], Awaitable[int]]


def _fresh(step: Step) -> Step:
    """A step of the edit/add flow that first checks the flow has not expired (by the bot's clock:
    this also holds after a restart), then notes the time of this step."""

    async def wrapped(update: Update, context: XContext) -> int:
        if _expired(context):
            return await _leave_flow(update, context, "stations.ui.flow_expired")
        _touch(context)
        return await step(update, context)

    wrapped.__qualname__ = step.__qualname__
    wrapped.__name__ = step.__name__
    return wrapped


async def flow_timed_out(update: Update, context: XContext) -> None:
    """PTB's conversation_timeout: no step for EDIT_TIMEOUT. Drop the draft and say so."""
    drop_draft(context, DRAFT)
    chat = update.effective_chat
    if chat is not None and chat.type == "private":
        await reply(
            update,
            context,
            context.t("stations.ui.flow_expired", minutes=int(EDIT_TIMEOUT.total_seconds() // 60)),
            reply_markup=main_menu(context),
        )


async def edit_pressed(update: Update, context: XContext) -> int:
    query = update.callback_query
    parts = (query.data or "").split(":")
    station = await _service(context).get(_station_id(query.data) or 0)
    field = parts[3] if len(parts) == 4 else ""
    if station is None or field not in EDIT_FIELDS:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return ConversationHandler.END
    if not await require(update, context, Perm.STATIONS_EDIT, station.area):
        return ConversationHandler.END
    await query.answer()
    drop_draft(context, DRAFT)
    draft_state(context, DRAFT).update({"station": station.id, "field": field})
    _touch(context)
    if field in ("opening_hours", "facilities", "location"):
        prompt = context.t(f"stations.ui.ask_value_{'hours' if field == 'opening_hours' else field}")
    else:
        prompt = context.t("stations.ui.ask_value", field=context.t(f"stations.ui.field_{field}"))
    await reply(update, context, prompt)
    return EDIT_VALUE


def _input_error(context: XContext, exc: StationInputError) -> str:
    """A chat text for a refused value: only the offending input goes in, never the English reason."""
    if exc.field == "facilities":
        return context.t(
            "stations.ui.invalid_facilities", detail=context.t("stations.label_sep").join(exc.values)
        )
    if exc.field == "lat":
        return context.t("stations.ui.invalid_lat", detail=", ".join(exc.values))
    if exc.field == "opening_hours" and not exc.reason.startswith("too long"):
        code, part = (*exc.values, "", "")[:2]
        return _hours_error(context, code, part)
    if exc.reason.startswith("too long"):
        return context.t("stations.ui.too_long", limit=exc.values[0] if exc.values else "")
    key = f"stations.ui.invalid_{exc.field}"
    if context.core.catalog.has(key):
        return context.t(key)
    return context.t("stations.ui.invalid_other", detail=exc.field)


def _hours_error(context: XContext, code: str, part: str) -> str:
    """Why typed opening hours were refused, with what to type instead."""
    key = f"stations.ui.hours_error.{code}"
    if not context.core.catalog.has(key):
        key = "stations.ui.hours_error.unreadable"
    why = context.t(key, part=part or "-")  # str.format ignores a value a text does not use
    return context.t("stations.ui.invalid_opening_hours", why=why)


async def _point_from_message(update: Update, context: XContext) -> tuple[float, float] | None:
    message = update.effective_message
    if message.location is not None:
        return message.location.latitude, message.location.longitude
    try:
        parsed = parse_coordinates(message.text or "")
    except CoordinateError as exc:
        await reply(update, context, context.t(f"stations.ui.{exc.key.replace('.', '_')}", **exc.details))
        return None
    return parsed.point.lat, parsed.point.lon


async def edit_value(update: Update, context: XContext) -> int:
    state = draft_state(context, DRAFT)
    service = _service(context)
    station = await service.get(int(state.get("station", 0)))
    field = state.get("field", "")
    if station is None or field not in EDIT_FIELDS:
        drop_draft(context, DRAFT)
        await reply(update, context, context.t("stations.ui.gone"))
        return ConversationHandler.END
    if field != "location" and _point_like(update.effective_message):
        # A courier's habit (share a location, type coordinates) while a text field waits: that is
        # a search, not the new name.
        return await _leave_flow(update, context, "stations.ui.edit_left", name=station.name)
    if not await require(update, context, Perm.STATIONS_EDIT, station.area):
        drop_draft(context, DRAFT)
        return ConversationHandler.END
    if field == "location":
        point = await _point_from_message(update, context)
        if point is None:
            return EDIT_VALUE
        changes: dict[str, Any] = {"lat": point[0], "lon": point[1]}
    else:
        value = (update.effective_message.text or "").strip()
        if len(value) > TEXT_LIMITS[field]:
            await reply(update, context, context.t("stations.ui.too_long", limit=TEXT_LIMITS[field]))
            return EDIT_VALUE
        changes = {field: value}
    try:
        await service.edit(station.id, **changes)
    except StationInputError as exc:
        await reply(update, context, _input_error(context, exc))
        return EDIT_VALUE
    drop_draft(context, DRAFT)
    view = await _details_view(context, station.id, update)
    await reply(update, context, context.t("stations.ui.saved"))
    if view is not None:
        await reply(update, context, view[0], reply_markup=view[1])
    return ConversationHandler.END


async def add_start(update: Update, context: XContext) -> int:
    if not is_private(update):
        await reply(update, context, context.t("error.private_only"))
        return ConversationHandler.END
    if not await require(update, context, Perm.STATIONS_EDIT):
        return ConversationHandler.END
    drop_draft(context, DRAFT)
    draft_state(context, DRAFT).update({"add": {"facilities": []}})
    _touch(context)
    await reply(update, context, context.t("stations.ui.add_name"))
    return ADD_NAME


def _add(context: XContext) -> dict[str, Any]:
    return draft_state(context, DRAFT).setdefault("add", {"facilities": []})


async def add_name(update: Update, context: XContext) -> int:
    name = (update.effective_message.text or "").strip()
    if not name:
        await reply(update, context, context.t("stations.ui.invalid_name"))
        return ADD_NAME
    if len(name) > TEXT_LIMITS["name"]:
        await reply(update, context, context.t("stations.ui.too_long", limit=TEXT_LIMITS["name"]))
        return ADD_NAME
    _add(context)["name"] = name
    await reply(update, context, context.t("stations.ui.add_location"))
    return ADD_LOCATION


async def add_location(update: Update, context: XContext) -> int:
    point = await _point_from_message(update, context)
    if point is None:
        return ADD_LOCATION
    _add(context).update({"lat": point[0], "lon": point[1]})
    rows = [
        [
            InlineKeyboardButton(
                k.icon + context.t(f"stations.kind.{k.code}"), callback_data=cb("st", "ak", k.code)
            )
        ]
        for k in fac.KINDS
    ]
    await reply(update, context, context.t("stations.ui.add_kind"), reply_markup=InlineKeyboardMarkup(rows))
    return ADD_KIND


def _facility_keyboard(context: XContext, chosen: list[str]) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            ("✅" if f.code in chosen else f.icon) + context.t(f"stations.facility.{f.code}"),
            callback_data=cb("st", "af", f.code),
        )
        for f in fac.FACILITIES
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append([InlineKeyboardButton(context.t("stations.ui.done"), callback_data=cb("st", "afd"))])
    return InlineKeyboardMarkup(rows)


async def add_kind(update: Update, context: XContext) -> int:
    query = update.callback_query
    code = (query.data or "").split(":")[-1]
    if code not in fac.KIND_BY_CODE:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return ADD_KIND
    _add(context)["kind"] = code
    await query.answer()
    await query.edit_message_text(
        context.t("stations.ui.add_facilities"), reply_markup=_facility_keyboard(context, [])
    )
    return ADD_FACILITIES


async def add_facility(update: Update, context: XContext) -> int:
    query = update.callback_query
    code = (query.data or "").split(":")[-1]
    if code not in fac.FACILITY_BY_CODE:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return ADD_FACILITIES
    chosen = _add(context).setdefault("facilities", [])
    if code in chosen:
        chosen.remove(code)
    else:
        chosen.append(code)
    await query.answer()
    await query.edit_message_reply_markup(_facility_keyboard(context, chosen))
    return ADD_FACILITIES


def _skip_keyboard(context: XContext) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(context.t("stations.ui.skip"), callback_data=cb("st", "skip"))]]
    )


async def add_facilities_done(update: Update, context: XContext) -> int:
    await update.callback_query.answer()
    await reply(update, context, context.t("stations.ui.add_hours"), reply_markup=_skip_keyboard(context))
    return ADD_HOURS


async def add_hours(update: Update, context: XContext) -> int:
    if update.callback_query is not None:
        await update.callback_query.answer()
        _add(context)["opening_hours"] = ""
    else:
        hours = (update.effective_message.text or "").strip()
        try:
            parse_opening_hours(hours)
        except OpeningHoursError as exc:
            await reply(update, context, _hours_error(context, exc.code, exc.part))
            return ADD_HOURS
        _add(context)["opening_hours"] = hours
    await reply(update, context, context.t("stations.ui.add_address"), reply_markup=_skip_keyboard(context))
    return ADD_ADDRESS


async def add_address(update: Update, context: XContext) -> int:
    data = _add(context)
    if update.callback_query is not None:
        await update.callback_query.answer()
        address = ""
    else:
        address = (update.effective_message.text or "").strip()
        if len(address) > TEXT_LIMITS["address"]:
            await reply(update, context, context.t("stations.ui.too_long", limit=TEXT_LIMITS["address"]))
            return ADD_ADDRESS
    data["address"] = address
    # The station's area: where this moderator may edit. A moderator of one area gets it; of several,
    # chooses; an unscoped one (or an admin) may choose an area in use or none.
    scopes = await context.core.authz.areas_for(update.effective_user.id, Perm.STATIONS_EDIT)
    if scopes is None:
        known = set(await _service(context).areas()) | {a for a, _ in await community(context).areas() if a}
        choices, optional = sorted(known)[:MAX_AREA_CHOICES], True
    else:
        choices, optional = sorted(scopes)[:MAX_AREA_CHOICES], False
    if not choices or (len(choices) == 1 and not optional):
        return await _save_new_station(update, context, choices[0] if choices else "")
    data["areas"] = choices
    buttons = [InlineKeyboardButton(area, callback_data=cb("st", "aa", i)) for i, area in enumerate(choices)]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if optional:
        rows.append(
            [InlineKeyboardButton(context.t("stations.ui.area_none"), callback_data=cb("st", "aa", "-"))]
        )
    await reply(update, context, context.t("stations.ui.add_area"), reply_markup=InlineKeyboardMarkup(rows))
    return ADD_AREA


async def add_area(update: Update, context: XContext) -> int:
    query = update.callback_query
    choices = _add(context).get("areas") or []
    arg = (query.data or "").split(":")[-1]
    if arg == "-":
        area = ""
    elif arg.isdigit() and int(arg) < len(choices):
        area = str(choices[int(arg)])
    else:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return ADD_AREA
    await query.answer()
    return await _save_new_station(update, context, area)


async def _save_new_station(update: Update, context: XContext, area: str) -> int:
    data = _add(context)
    if not await require(update, context, Perm.STATIONS_EDIT, area):
        drop_draft(context, DRAFT)
        return ConversationHandler.END
    try:
        station = await _service(context).add(
            name=data["name"],
            lat=data["lat"],
            lon=data["lon"],
            kind=data.get("kind", fac.DEFAULT_KIND),
            facilities=data.get("facilities", []),
            opening_hours=data.get("opening_hours", ""),
            address=data.get("address", ""),
            area=area,
            source=f"bot:{update.effective_user.id}",
        )
    except (StationInputError, KeyError) as exc:
        drop_draft(context, DRAFT)
        if isinstance(exc, StationInputError):
            text = _input_error(context, exc)
        else:
            text = context.t("stations.ui.invalid_other", detail=str(exc))
        await reply(update, context, text, reply_markup=main_menu(context))
        return ConversationHandler.END
    drop_draft(context, DRAFT)
    await reply(
        update,
        context,
        context.t("stations.ui.added", name=station.name, id=station.id),
        reply_markup=main_menu(context),
    )
    view = await _details_view(context, station.id, update)
    if view is not None:
        await reply(update, context, view[0], reply_markup=view[1])
    return ConversationHandler.END


async def stale_flow_button(update: Update, context: XContext) -> None:
    await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)


class _StationsPrompt(filters.MessageFilter):
    """A reply to the bot's /stations prompt in a group (its text in any language)."""

    def __init__(self, prompts: set[str]) -> None:
        super().__init__(name="StationsPrompt")
        self.prompts = prompts

    def filter(self, message: Message) -> bool:
        target = message.reply_to_message
        return bool(
            target is not None
            and target.from_user is not None
            and target.from_user.is_bot
            and (target.text or "") in self.prompts
        )


def register(app: Application) -> None:
    core = app.bot_data["core"]
    deep_links(app)["stations"] = stations_link
    deep_links(app)["station"] = station_link
    # Only new messages: an edited message (a live location moving, a corrected text) is no new ask.
    fresh = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE & fresh
    text = filters.TEXT & ~filters.COMMAND
    coordinates = filters.Regex(
        r"^\s*[-+]?\d{1,3}(\.\d+)?\s*°?\s*[NSEWnsew]?\s*[,，;；/、\s]\s*[-+]?\d{1,3}(\.\d+)?"
    )
    conversation = ConversationHandler(
        entry_points=[
            CallbackQueryHandler(edit_pressed, pattern=r"^st:e:\d+:[a-z_]+$"),
            CommandHandler("addstation", add_start),
        ],
        states={
            EDIT_VALUE: [MessageHandler((text | filters.LOCATION) & private, _fresh(edit_value))],
            ADD_NAME: [MessageHandler(text & private, _fresh(add_name))],
            ADD_LOCATION: [MessageHandler((text | filters.LOCATION) & private, _fresh(add_location))],
            ADD_KIND: [CallbackQueryHandler(_fresh(add_kind), pattern=r"^st:ak:")],
            ADD_FACILITIES: [
                CallbackQueryHandler(_fresh(add_facility), pattern=r"^st:af:"),
                CallbackQueryHandler(_fresh(add_facilities_done), pattern=r"^st:afd$"),
            ],
            ADD_HOURS: [
                MessageHandler(text & private, _fresh(add_hours)),
                CallbackQueryHandler(_fresh(add_hours), pattern=r"^st:skip$"),
            ],
            ADD_ADDRESS: [
                MessageHandler(text & private, _fresh(add_address)),
                CallbackQueryHandler(_fresh(add_address), pattern=r"^st:skip$"),
            ],
            ADD_AREA: [CallbackQueryHandler(_fresh(add_area), pattern=r"^st:aa:")],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, flow_timed_out)],
        },
        fallbacks=[
            cancel_fallback(DRAFT),
            CallbackQueryHandler(stale_flow_button, pattern=r"^st:(ak|af|afd|skip|aa)"),
        ],
        name="stations",
        persistent=True,
        allow_reentry=True,
        # Needs the JobQueue (the app has one: the outbox uses it). Its jobs are not persisted: after
        # a restart `_fresh` ends an expired flow at its next step instead.
        conversation_timeout=EDIT_TIMEOUT,
    )
    app.add_handler(conversation)
    app.add_handler(CommandHandler("stations", stations_command))
    app.add_handler(CommandHandler("station", station_command))
    app.add_handler(CallbackQueryHandler(page_pressed, pattern=r"^st:n:"))
    app.add_handler(CallbackQueryHandler(venue_pressed, pattern=r"^st:v:"))
    app.add_handler(CallbackQueryHandler(details_pressed, pattern=r"^st:d:"))
    app.add_handler(CallbackQueryHandler(flag_pressed, pattern=r"^st:f:"))
    app.add_handler(CallbackQueryHandler(flag_reason_pressed, pattern=r"^st:fr:"))
    app.add_handler(CallbackQueryHandler(toggle_pressed, pattern=r"^st:(on|off):"))
    app.add_handler(CallbackQueryHandler(flag_notice_pressed, pattern=r"^st:fg:"))
    app.add_handler(CallbackQueryHandler(stale_flow_button, pattern=r"^st:(ak|af|afd|skip|aa)"))
    note_starts = {t[:12] for t in core.catalog.all_languages("stations.ui.flag_note_ask")}
    app.add_handler(MessageHandler(text & fresh & _FlagNotePrompt(note_starts), on_flag_note))
    # In groups: replies to the /stations prompt (they reach the bot under privacy mode).
    prompts = core.catalog.all_languages("stations.ui.group_ask")
    app.add_handler(
        MessageHandler(
            filters.ChatType.GROUPS
            & fresh
            & _StationsPrompt(prompts)
            & (filters.LOCATION | filters.VENUE | text),
            on_prompt_reply,
        )
    )
    # Locations and venues anywhere (the 📍 menu button sends one), and typed coordinates in private.
    app.add_handler(MessageHandler((filters.LOCATION | filters.VENUE) & fresh, on_location))
    app.add_handler(MessageHandler(text & private & coordinates, on_coordinates))
    # Last in line: any other text in private (no flow took it) is a station name or address to look
    # up; when nothing matches, say what the bot can do instead of staying silent.
    menu = filters.Text(sorted({label for key in _MENU_KEYS for label in core.catalog.all_languages(key)}))
    app.add_handler(MessageHandler(text & private & ~menu, on_free_text))
