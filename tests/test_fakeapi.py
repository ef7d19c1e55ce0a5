"""The fake Bot API server and driver, exercised by a real PTB Bot/Application over HTTP."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, ChatMigrated, Conflict, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from fakeapi import FakeTelegram, TelegramDriver

# PTB itself warns inside RetryAfter.__init__ about the future timedelta type.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
async def tg() -> AsyncIterator[TelegramDriver]:
    async with TelegramDriver() as driver:
        yield driver


def build_app(tg: TelegramDriver) -> Application:
    return ApplicationBuilder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url).build()


@contextlib.asynccontextmanager
async def running(app: Application) -> AsyncIterator[Application]:
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=Update.ALL_TYPES)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@pytest.fixture
async def bot(tg: TelegramDriver) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as b:
        yield b


async def test_get_me(bot: Bot, tg: TelegramDriver) -> None:
    me = await bot.get_me()
    assert me.id == tg.bot_id
    assert me.is_bot and me.first_name == "小哥助手" and me.username == "xiaoge_test_bot"
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert me.supports_inline_queries is False


async def test_unknown_method_and_bad_token(tg: TelegramDriver) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{tg.base_url}{tg.token}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with session.get(f"{tg.base_url}{tg.token}/GETME") as resp:
            body = await resp.json()
            assert resp.status == 200 and body["ok"] and body["result"]["is_bot"]
        async with session.get(f"{tg.base_url}not-a-token/getMe") as resp:
            assert resp.status == 404


async def test_echo_round_trip_via_polling(tg: TelegramDriver) -> None:
    app = build_app(tg)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(f"hello {update.effective_user.first_name} {context.args}")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_html(f"<b>echo</b> {update.effective_message.text}")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    alice = tg.user(1001, "Alice")
    chat = tg.private(alice)
    async with running(app):
        await chat.send("/start x y")
        msg = await chat.expect_message("hello")
        assert msg.text == "hello Alice ['x', 'y']"
        await chat.send("ping")
        echo_msg = await chat.expect_message()
        assert echo_msg.text == "echo ping"
        assert echo_msg.html == "<b>echo</b> ping"
        assert echo_msg.entities == [{"type": "bold", "offset": 0, "length": 4}]
        await tg.idle()
        assert tg.pending_updates() == 0
        await chat.expect_no_message(within=0.05)
    with pytest.raises(AssertionError, match="echo ping"):
        await chat.expect_message("nope", timeout=0.05)


async def test_errors_text(bot: Bot, tg: TelegramDriver) -> None:
    bob = tg.user(1002, "Bob", started=True)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "x")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(bob.id, " ")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(bob.id, "x" * 4097)
    assert (await bot.send_message(bob.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")).text == "x" * 4096
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(bob.id, "<b>open", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)unsupported start tag"):
        await bot.send_message(bob.id, "a <x> b", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
        await bot.send_message(bob.id, "x", reply_markup=markup)
    stranger = tg.user(1003, "Stranger")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(stranger.id, "hi")
    await bob.block_bot()
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(bob.id, "hi")
    await bob.unblock_bot()
    await bot.send_message(bob.id, "again")
    errors = [(c.method, c.error_code) for c in tg.calls if c.ok is False]
    assert errors[0] == ("sendMessage", 400) and ("sendMessage", 403) in errors


async def test_edit_and_not_modified(bot: Bot, tg: TelegramDriver) -> None:
    bob = tg.user(1002, "Bob", started=True)
    chat = tg.private(bob)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="t:a")]])
    sent = await bot.send_message(bob.id, "one", reply_markup=markup)
    assert sent.reply_markup == markup
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("one", chat_id=bob.id, message_id=sent.message_id, reply_markup=markup)
    edited = await bot.edit_message_text(
        "two", chat_id=bob.id, message_id=sent.message_id, reply_markup=markup
    )
    assert edited.text == "two" and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=bob.id, message_id=999)
    msg = await chat.expect_edit("two")
    assert msg.message_id == sent.message_id and msg.inline == [("A", "t:a")]
    await bot.edit_message_reply_markup(chat_id=bob.id, message_id=sent.message_id, reply_markup=None)
    assert chat.last.inline == []
    assert (await chat.expect_message()).text == "two"


async def test_press_inline_reply_and_forged(tg: TelegramDriver) -> None:
    app = build_app(tg)
    seen: list[str] = []

    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(
            "menu",
            reply_markup=InlineKeyboardMarkup(
                [
                    [InlineKeyboardButton("确认 OK", callback_data="m:ok")],
                    [InlineKeyboardButton("Site", url="https://example.org")],
                ]
            ),
        )

    async def keyboard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(
            "where?",
            reply_markup=ReplyKeyboardMarkup(
                [[KeyboardButton("📍 send location", request_location=True), KeyboardButton("cancel")]]
            ),
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        seen.append(query.data)
        await query.answer("done" if query.data == "m:ok" else "invalid", show_alert=query.data != "m:ok")
        if query.data == "m:ok":
            await query.edit_message_text("confirmed")

    async def on_location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        loc = update.effective_message.location
        await update.effective_message.reply_text(f"at {loc.latitude:.2f},{loc.longitude:.2f}")

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(f"text {update.effective_message.text}")

    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CommandHandler("kb", keyboard))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.LOCATION, on_location))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    carol = tg.user(1004, "Carol")
    chat = tg.private(carol)
    async with running(app):
        await chat.send("/menu")
        menu_msg = await chat.expect_message("menu")
        assert menu_msg.buttons == [["确认 OK"], ["Site"]]
        assert menu_msg.button("Site")["url"] == "https://example.org"
        assert await chat.press("Site") == "https://example.org"
        answer = await chat.press("OK")  # unique substring
        await answer
        assert answer.text == "done" and answer.show_alert is False
        assert (await chat.expect_edit("confirmed")).message_id == menu_msg.message_id

        await chat.send("/kb")
        kb = await chat.expect_message("where?")
        assert kb.reply_keyboard and kb.buttons == [["📍 send location", "cancel"]]
        with pytest.raises(AssertionError, match="available buttons"):
            await chat.press("nonexistent")
        with pytest.raises(AssertionError, match="requests a location"):
            await chat.press("location")
        await chat.press("location", location=(31.23, 121.47))
        assert (await chat.expect_message()).text == "at 31.23,121.47"
        await chat.press("cancel")
        assert (await chat.expect_message()).text == "text cancel"

        forged = await chat.press_data("m:evil", message_id=menu_msg.message_id)
        params = await chat.wait_answer(timeout=2)
        assert params["text"] == "invalid" and params["show_alert"] is True
        assert forged.answered
    assert seen == ["m:ok", "m:evil"]


async def test_group_errors_kicked_migrated_pin_rights(bot: Bot, tg: TelegramDriver) -> None:
    owner = tg.user(2001, "Owner")
    group = tg.group(-1001234, "Couriers", creator=owner)
    with pytest.raises(Forbidden, match="bot is not a member of the supergroup chat"):
        await bot.send_message(group.id, "x")
    await group.add_bot(by=owner)
    sent = await bot.send_message(group.id, "hello group")
    with pytest.raises(BadRequest, match="Not enough rights to pin a message"):
        await bot.pin_chat_message(group.id, sent.message_id)
    await group.promote_bot(by=owner, can_pin=True)
    assert await bot.pin_chat_message(group.id, sent.message_id)
    admins = await bot.get_chat_administrators(group.id)
    assert {a.user.id for a in admins} == {owner.id, tg.bot_id}
    me = await bot.get_chat_member(group.id, tg.bot_id)
    assert me.status == "administrator" and me.can_pin_messages
    await group.remove_bot(by=owner)
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_message(group.id, "x")

    basic = tg.group(-555, "Old group", type="group", creator=owner)
    await basic.add_bot(by=owner)
    chat = await bot.get_chat(basic.id)
    assert chat.type == "group" and chat.title == "Old group"
    new = await basic.migrate_to_supergroup(-100555)
    with pytest.raises(ChatMigrated) as exc:
        await bot.send_message(basic.id, "x")
    assert exc.value.new_chat_id == -100555
    assert (await bot.send_message(new.id, "in the supergroup")).chat.type == "supergroup"
    updates = await bot.get_updates(allowed_updates=Update.ALL_TYPES)
    migrations = [
        (u.effective_chat.id, u.message.migrate_to_chat_id, u.message.migrate_from_chat_id)
        for u in updates
        if u.message and (u.message.migrate_to_chat_id or u.message.migrate_from_chat_id)
    ]
    assert migrations == [(-555, -100555, None), (-100555, None, -555)]
    kinds = [FakeTelegram.update_kind(u.to_dict()) for u in updates]
    assert kinds.count("my_chat_member") == 4  # add, promote, remove, add
    # confirmed by offset: nothing left
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
    assert tg.pending_updates() == 0


async def test_flood_limits_429(bot: Bot, tg: TelegramDriver) -> None:
    owner = tg.user(2001, "Owner", started=True)
    group = tg.group(-1009, "Busy")
    await group.add_bot(by=owner)
    tg.server.set_flood_limits(global_per_second=30, group_per_minute=3)
    for i in range(3):
        await bot.send_message(group.id, f"m{i}")
    with pytest.raises(RetryAfter):
        await bot.send_message(group.id, "too many")
    retry = int(tg.calls_to("sendMessage")[-1].description.rsplit(" ", 1)[1])
    assert 55 <= retry <= 60
    await bot.edit_message_text("edits are free", chat_id=group.id, message_id=1 + 1)
    assert (await bot.send_message(owner.id, "private still fine")).text
    tg.server.set_flood_limits(global_per_second=2, group_per_minute=20)
    await bot.send_message(owner.id, "a")
    await bot.send_message(owner.id, "b")
    with pytest.raises(RetryAfter, match="Retry in 1 seconds"):
        await bot.send_message(owner.id, "c")
    assert tg.server.stats["429"] == 2
    call = tg.calls_to("sendMessage")[-1]
    assert call.error_code == 429 and call.description == "Too Many Requests: retry after 1"


async def test_flood_limits_off_by_default(bot: Bot, tg: TelegramDriver) -> None:
    owner = tg.user(2001, "Owner", started=True)
    for i in range(40):
        await bot.send_message(owner.id, f"m{i}")
    assert tg.server.stats["429"] == 0 and len(tg.sent_messages(owner.id)) == 40


async def test_fail_next_latency_and_callback_too_old(bot: Bot, tg: TelegramDriver) -> None:
    user = tg.user(2002, "U", started=True)
    tg.server.fail_next(
        "sendmessage", 429, "Too Many Requests: retry after 3", retry_after=3, chat_id=user.id
    )
    with pytest.raises(RetryAfter):
        await bot.send_message(user.id, "x")
    assert (await bot.send_message(user.id, "x")).text == "x"
    tg.server.fail_next("getChat", 400, "Bad Request: chat not found", times=2)
    for _ in range(2):
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.get_chat(user.id)
    assert (await bot.get_chat(user.id)).first_name == "U"
    assert tg.server.stats["429"] == 1
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("12345")
    tg.server.set_latency(0.05)
    await bot.get_me()
    assert tg.calls[-1].duration >= 0.05


async def test_uploads_and_downloads(bot: Bot, tg: TelegramDriver) -> None:
    user = tg.user(2003, "U", started=True)
    chat = tg.private(user)
    doc = await bot.send_document(
        user.id, document=b"a,b\n1,2\n", filename="report.csv", caption="<i>weekly</i>", parse_mode="HTML"
    )
    assert doc.document.file_name == "report.csv" and doc.document.mime_type == "text/csv"
    assert doc.caption == "weekly"
    photo = await bot.send_photo(user.id, photo=b"\xff\xd8fakejpeg", caption="pic")
    assert len(photo.photo) == 3 and photo.photo[-1].width == 800
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(user.id, photo=b"x", caption="c" * 1025)
    m1 = await chat.expect_message("weekly")
    assert m1.kind == "document" and m1.document == b"a,b\n1,2\n" and m1.file_name == "report.csv"
    assert m1.html == "<i>weekly</i>"
    m2 = await chat.expect_message()
    assert m2.kind == "photo" and m2.document == b"\xff\xd8fakejpeg"
    upload = tg.calls_to("sendDocument")[0].params["document"]
    assert upload.filename == "report.csv" and upload.data == b"a,b\n1,2\n"
    # re-send by file_id, then download through base_file_url
    again = await bot.send_document(user.id, document=doc.document.file_id)
    assert again.document.file_id == doc.document.file_id
    file = await bot.get_file(doc.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"a,b\n1,2\n"
    # a user's photo can be fetched too
    file_id = await chat.send_photo(caption="proof")
    data = await (await bot.get_file(file_id)).download_as_bytearray()
    assert bytes(data).startswith(b"\xff\xd8")


async def test_locations_venue_actions_commands(bot: Bot, tg: TelegramDriver) -> None:
    user = tg.user(2004, "U", started=True)
    chat = tg.private(user)
    await bot.send_location(user.id, 31.2304, 121.4737)
    await bot.send_venue(user.id, 31.2, 121.4, "站点 A", "上海市")
    assert await bot.send_chat_action(user.id, "typing")
    loc = await chat.expect_message()
    assert loc.kind == "location" and loc.location == (31.2304, 121.4737)
    venue = await chat.expect_message()
    assert venue.kind == "venue" and venue.venue["title"] == "站点 A"
    assert tg.server.chats[user.id].actions == ["typing"]
    from telegram import BotCommand, BotCommandScopeAllGroupChats, MenuButtonCommands

    await bot.set_my_commands([BotCommand("start", "开始")], language_code="zh")
    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start"]
    assert await bot.get_my_commands() == ()
    await bot.set_my_commands([BotCommand("report", "r")], scope=BotCommandScopeAllGroupChats())
    assert len(await bot.get_my_commands(scope=BotCommandScopeAllGroupChats())) == 1
    await bot.delete_my_commands(language_code="zh")
    assert await bot.get_my_commands(language_code="zh") == ()
    assert await bot.set_chat_menu_button(user.id, MenuButtonCommands())
    assert await bot.delete_message(user.id, loc.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(user.id, loc.message_id)
    assert await bot.close() and await bot.log_out()


async def test_calls_recorded_in_order(bot: Bot, tg: TelegramDriver) -> None:
    import time as _time

    user = tg.user(2005, "U", started=True)
    before = _time.time()
    await bot.send_message(user.id, "one")
    await bot.send_message(
        user.id,
        "two",
        reply_markup=InlineKeyboardMarkup.from_button(InlineKeyboardButton("b", callback_data="x:1")),
    )
    with pytest.raises(BadRequest):
        await bot.send_message(user.id, "")
    calls = [c for c in tg.calls if c.method != "getMe"]
    assert [c.method for c in calls] == ["sendMessage"] * 3
    assert [c.ok for c in calls] == [True, True, False]
    assert calls[0].time <= calls[1].time <= calls[2].time
    assert before <= calls[0].wall <= _time.time()
    assert calls[1].params["chat_id"] == user.id and calls[1].params["text"] == "two"
    assert calls[1].params["reply_markup"] == {"inline_keyboard": [[{"text": "b", "callback_data": "x:1"}]]}
    assert calls[1].result["text"] == "two" and calls[2].error_code == 400
    assert [m["text"] for m in tg.sent_messages(user.id)] == ["one", "two"]
    assert len(tg.calls_to("SENDMESSAGE", chat_id=user.id)) == 3


async def test_group_flow_privacy_anonymous_admin_chat_member(tg: TelegramDriver) -> None:
    app = build_app(tg)
    events: list[tuple[str, object]] = []

    async def on_my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        events.append(("my", change.new_chat_member.status))
        if (
            change.new_chat_member.status in ("member", "administrator")
            and change.old_chat_member.status == "left"
        ):
            await context.bot.send_message(change.chat.id, "thanks for adding me")

    async def on_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        events.append(
            (
                "member",
                (update.chat_member.new_chat_member.user.id, update.chat_member.new_chat_member.status),
            )
        )

    async def on_any(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        sender = message.sender_chat.id if message.sender_chat else None
        events.append(("msg", (message.text, update.effective_user.id, sender)))
        if message.text and message.text.startswith("/who"):
            await message.reply_text(f"you are {update.effective_user.username}")

    app.add_handler(ChatMemberHandler(on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(ChatMemberHandler(on_member, ChatMemberHandler.CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.ALL, on_any))
    owner = tg.user(3001, "Owner", username="owner")
    alice = tg.user(3002, "Alice", username="alice")
    group = tg.group(-1003001, "Couriers SH", creator=owner)
    async with running(app):
        await group.add_bot(by=owner)
        gchat = group.chat(alice)
        welcome = await gchat.expect_message("thanks")
        assert welcome.chat_id == group.id
        await gchat.send("hello everyone")  # privacy mode: the bot does not see this
        await gchat.send("/who@other_bot")  # addressed to another bot
        await gchat.send("/who@xiaoge_test_bot")
        reply = await gchat.expect_message("you are")
        assert reply.text == "you are alice" and reply.reply_to_message_id is not None
        await gchat.reply_to(reply, "thanks bot")  # replies to the bot are delivered
        await group.anonymous_admin().send("/who")
        anon = await gchat.expect_message("you are")
        assert anon.text == "you are GroupAnonymousBot"
        await group.set_admin(alice, True)  # bot is not admin: no chat_member update
        await group.promote_bot(by=owner)
        await group.set_admin(alice, False)
        await gchat.send("now the admin bot sees everything")
        await tg.idle()
    texts = [e[1][0] for e in events if e[0] == "msg"]
    assert "hello everyone" not in texts and "/who@other_bot" not in texts
    assert "/who@xiaoge_test_bot" in texts and "thanks bot" in texts
    assert "now the admin bot sees everything" in texts
    assert ("msg", ("/who", 1087968824, group.id)) in events
    assert [e for e in events if e[0] in ("my", "member")] == [
        ("my", "member"),
        ("my", "administrator"),
        ("member", (alice.id, "member")),
    ]
    transcript = [t.kind for t in gchat.transcript]
    assert transcript.count("user") >= 5 and "bot" in transcript


async def test_long_polling_wakes_and_expect_diagnostics(tg: TelegramDriver, bot: Bot) -> None:
    import asyncio
    import time as _time

    dave = tg.user(3003, "Dave")
    chat = tg.private(dave)
    await bot.get_updates(timeout=0)
    started = _time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await chat.send("wake up")
    updates = await poll
    assert _time.monotonic() - started < 1.0
    assert [u.message.text for u in updates] == ["wake up"]
    assert tg.pending_updates() == 0
    # the bot's failed attempt shows up in the expect error
    with pytest.raises(BadRequest):
        await bot.send_message(dave.id, "<b>broken", parse_mode="HTML")
    with pytest.raises(AssertionError, match=r"(?s)nothing.*can't parse entities"):
        await chat.expect_message("anything", timeout=0.1)


async def test_webhook_delivery_and_conflict(tg: TelegramDriver, bot: Bot) -> None:
    import asyncio

    from aiohttp import web

    received: list[tuple[dict, str | None]] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        got.set()
        return web.Response()

    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        erin = tg.user(3004, "Erin")
        await tg.private(erin).send("via webhook")
        await asyncio.wait_for(got.wait(), 3)
        update, secret = received[0]
        assert update["message"]["text"] == "via webhook" and secret == "s3cret"
        await tg.idle()
        assert (await bot.get_webhook_info()).pending_update_count == 0
        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


def test_html_parser_entities_and_errors() -> None:
    from fakeapi.html import ParseError, check_markdown_v2, parse_html

    text, entities = parse_html(
        '👍 <b>粗 <i>x</i></b> &lt;tag&gt; &amp; <a href="https://e.org/?a=1&amp;b=2">link</a>'
    )
    assert text == "👍 粗 x <tag> & link"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 3},  # the emoji is 2 UTF-16 units
        {"type": "italic", "offset": 5, "length": 1},
        {"type": "text_link", "offset": 15, "length": 4, "url": "https://e.org/?a=1&b=2"},
    ]
    text, entities = parse_html(
        '<pre><code class="language-python">x = 1</code></pre><tg-spoiler>s</tg-spoiler>'
    )
    assert text == "x = 1s"
    assert entities == [
        {"type": "pre", "offset": 0, "length": 5, "language": "python"},
        {"type": "spoiler", "offset": 5, "length": 1},
    ]
    assert parse_html("<blockquote expandable>q</blockquote>")[1][0]["type"] == "expandable_blockquote"
    for bad, message in [
        ("<b>x", 'end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'expected "</b>", found "</i>"'),
        ("<br>", 'Unsupported start tag "br"'),
        ("x </b>", "Unexpected end tag"),
        ("a < b", "Unclosed start tag"),
        ('<span class="x">y</span>', 'must have class "tg-spoiler"'),
    ]:
        with pytest.raises(ParseError, match=re.escape(message)):
            parse_html(bad)
    assert check_markdown_v2(r"*bold* \. ok \!") == "bold . ok !"
    with pytest.raises(ParseError, match=r"Character '\.' is reserved"):
        check_markdown_v2("1. item")


async def test_media_group_moderation_links_live_location(bot: Bot, tg: TelegramDriver) -> None:
    from telegram import InputMediaDocument, InputMediaPhoto

    owner = tg.user(4001, "Owner", started=True)
    spammer = tg.user(4002, "Spam")
    group = tg.group(-1004001, "G", creator=owner)
    await group.add_bot(by=owner)
    group.chat(spammer)
    album = await bot.send_media_group(
        group.id, [InputMediaPhoto(b"p1"), InputMediaPhoto(b"p2", caption="two")]
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    assert album[1].caption == "two"
    docs = await bot.send_media_group(
        owner.id, [InputMediaDocument(b"d1", filename="a.txt"), InputMediaDocument(b"d2", filename="b.txt")]
    )
    assert [d.document.file_name for d in docs] == ["a.txt", "b.txt"]
    assert tg.private(owner).messages[-1].document == b"d2"
    with pytest.raises(BadRequest, match="Not enough rights to restrict"):
        await bot.ban_chat_member(group.id, spammer.id)
    await group.promote_bot(by=owner)
    assert await bot.ban_chat_member(group.id, spammer.id)
    assert (await bot.get_chat_member(group.id, spammer.id)).status == "kicked"
    with pytest.raises(BadRequest, match="Can't remove chat owner"):
        await bot.ban_chat_member(group.id, owner.id)
    link = await bot.create_chat_invite_link(group.id, name="couriers")
    assert link.invite_link.startswith("https://t.me/+") and link.name == "couriers"
    live = await bot.send_location(owner.id, 31.0, 121.0, live_period=600)
    moved = await bot.edit_message_live_location(owner.id, live.message_id, latitude=31.1, longitude=121.1)
    assert moved.location.latitude == pytest.approx(31.1)
    await bot.stop_message_live_location(owner.id, live.message_id)
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_live_location(owner.id, live.message_id, latitude=31.2, longitude=121.2)


async def test_driver_expect_semantics_and_blocking(bot: Bot, tg: TelegramDriver) -> None:
    user = tg.user(4003, "Fay", started=True)
    chat = tg.private(user)
    for text in ("one", "two", "three"):
        await bot.send_message(user.id, text)
    assert (await chat.expect_message("two")).text == "two"  # skips and consumes "one"
    assert (await chat.expect_message()).text == "three"
    await chat.expect_no_message(within=0.05)
    await bot.send_message(user.id, "surprise")
    with pytest.raises(AssertionError, match="surprise"):
        await chat.expect_no_message(within=0.05)
    chat.skip()
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes 1", callback_data="y:1"),
                InlineKeyboardButton("Yes 2", callback_data="y:2"),
            ]
        ]
    )
    await bot.send_message(user.id, "pick", reply_markup=markup)
    with pytest.raises(AssertionError, match="ambiguous"):
        await chat.press("Yes")
    answer = await chat.press("Yes 2")
    assert answer.data == "y:2" and not answer.answered
    with pytest.raises(AssertionError, match="did not answer"):
        await answer.wait(0.05)
    assert await bot.answer_callback_query(answer.query_id, text="ok")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(answer.query_id)
    assert (await chat.wait_answer(0.1))["text"] == "ok"
    # photo caption edits
    photo = await bot.send_photo(user.id, b"img", caption="before")
    with pytest.raises(BadRequest, match="There is no text in the message to edit"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=photo.message_id)
    await bot.edit_message_caption(chat_id=user.id, message_id=photo.message_id, caption="after")
    assert (await chat.expect_edit(message_id=photo.message_id)).text == "after"
    # blocking emits my_chat_member and makes sends fail; writing again unblocks
    await user.block_bot()
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(user.id, "x")
    await chat.send("/start")
    assert (await bot.send_message(user.id, "welcome back")).text
    updates = await bot.get_updates(allowed_updates=Update.ALL_TYPES)
    statuses = [u.my_chat_member.new_chat_member.status for u in updates if u.my_chat_member]
    assert statuses == ["kicked", "member"]
    assert updates[-1].message.text == "/start"
    assert updates[-1].message.entities[0].type == "bot_command"
