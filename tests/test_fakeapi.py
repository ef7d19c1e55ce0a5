"""The fake Bot API server and driver, exercised by a real PTB Bot/Application over HTTP."""

from __future__ import annotations

import contextlib
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
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.fakeapi import TelegramDriver


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
