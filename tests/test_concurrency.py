"""Updates handled concurrently (issue: rush hour on real Telegram), in arrival order per user and
per chat: many couriers walk multi-step flows at once with Telegram answering after a delay, one
courier's rapid taps have one effect, and a claim storm from many private chats never overbooks."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from telegram import Update
from telegram.ext import SimpleUpdateProcessor

from bot.core.updates import KeyedUpdateProcessor, update_keys
from bot.reports.service import ReportService
from bot.tasks import TaskDraft, TaskService
from storage import tasks as store

LATENCY = 0.05  # seconds per Bot API call: real Telegram is 50-300 ms away
LAT, LON = 30.2590, 120.1300
CAPTAIN = 2001


def _peak_overlap(calls: list[Any], method: str) -> int:
    """The most calls of `method` the fake server was answering at one moment."""
    edges = []
    for c in calls:
        if c.method.lower() == method.lower():
            edges += [(c.time, 1), (c.time + c.duration, -1)]
    peak = current = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        current += step
        peak = max(peak, current)
    return peak


# -- the processor itself ---------------------------------------------------------------------------


def _update(update_id: int, user_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "g"},
                "from": {"id": user_id, "is_bot": False, "first_name": "u"},
                "text": "hi",
            },
        },
        None,
    )


async def _run(processor, updates: list[tuple[Update, float]]) -> list[int]:
    """Hand updates over in order, as PTB's fetcher does (one task each); each 'handler' sleeps its
    delay. Returns the update ids in the order their handlers finished."""
    finished: list[int] = []

    async def handle(update: Update, delay: float) -> None:
        await asyncio.sleep(delay)
        finished.append(update.update_id)

    tasks = [asyncio.create_task(processor.process_update(u, handle(u, d))) for u, d in updates]
    await asyncio.gather(*tasks)
    return finished


async def test_one_users_updates_keep_their_order_others_overtake():
    # User 1's first update is slow; their second must still come after it. User 2 is not held.
    updates = [(_update(1, 1, 1), 0.05), (_update(2, 1, 1), 0.0), (_update(3, 2, 2), 0.0)]
    assert await _run(KeyedUpdateProcessor(8), updates) == [3, 1, 2]
    # PTB's plain concurrency would let the second overtake the first: the reason for the keys.
    assert (await _run(SimpleUpdateProcessor(8), updates))[:2] == [2, 3]


async def test_one_chats_updates_keep_their_order_across_users():
    # Two users in one group: the second user's message waits for the first's.
    updates = [(_update(1, 1, -100), 0.05), (_update(2, 2, -100), 0.0), (_update(3, 3, 3), 0.0)]
    assert await _run(KeyedUpdateProcessor(8), updates) == [3, 1, 2]


async def test_running_handlers_are_bounded():
    processor = KeyedUpdateProcessor(3)
    running = peak = 0

    async def handle() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    await asyncio.gather(*(processor.process_update(_update(i, i, i), handle()) for i in range(1, 20)))
    assert peak == 3


def test_update_keys():
    assert update_keys(_update(1, 7, -100)) == (("user", 7), ("chat", -100))
    assert update_keys(object()) == ()


# -- end to end, with Telegram's latency ----------------------------------------------------------------


async def _file_report(tg, user_id: int) -> None:
    """One courier files a hazard tip; the description and two photos are sent without waiting for
    the bot in between (all in flight at once), as a quick thumb does."""
    chat = tg.private(tg.user(user_id, f"小哥{user_id}", started=True))
    timeout = 60
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么", timeout=timeout)
    await (await chat.press("隐患随手拍")).wait(timeout)
    await chat.expect_edit(contains="请选择分类", timeout=timeout)
    await (await chat.press("道路破损")).wait(timeout)
    await chat.expect_message(contains="请简单描述", timeout=timeout)
    await chat.send(f"路口有坑 {user_id}")
    await chat.send_photo()
    await chat.send_photo()
    await chat.expect_message(contains="第 2 张", timeout=timeout)
    await (await chat.press("完成")).wait(timeout)
    await chat.expect_message(contains="在哪里", timeout=timeout)
    await chat.share_location(LAT + (user_id - 10_000) * 1e-3, LON)
    await chat.expect_message(contains="请确认", timeout=timeout)
    await (await chat.press("提交")).wait(timeout)
    await chat.expect_message(contains="已提交", timeout=timeout)


async def test_hundred_couriers_file_reports_at_once(bot, tg):
    tg.server.set_latency(LATENCY)
    users = range(10_001, 10_101)
    await asyncio.gather(*(_file_report(tg, u) for u in users))
    await bot.settle(timeout=60)
    service = bot.core.service(ReportService)
    rows = await bot.db.fetchall("SELECT id, reporter_id, description, lat FROM reports ORDER BY reporter_id")
    assert [r["reporter_id"] for r in rows] == list(users)  # one report each, nobody lost or doubled
    for row in rows:
        uid = row["reporter_id"]
        assert row["description"] == f"路口有坑 {uid}"  # each draft kept its own answers
        assert abs(row["lat"] - (LAT + (uid - 10_000) * 1e-3)) < 1e-9
        assert len(await service.photos(row["id"])) == 2  # the photos after the text, not before
    # Nobody's draft or conversation is left open.
    assert await bot.db.fetchval("SELECT COUNT(*) FROM ptb_conversations WHERE name = 'reports'") == 0
    # Handlers really ran side by side: several answers to button presses were in flight at once.
    assert _peak_overlap(tg.calls, "answerCallbackQuery") > 1


async def _post_task(tg, user_id: int, index: int) -> None:
    """One captain walks /newtask to the preview and publishes (no group)."""
    chat = tg.private(tg.user(user_id, f"队长{index}", started=True))
    timeout = 60
    await chat.send("/newtask")
    await chat.expect_message(contains="标题", timeout=timeout)
    steps = (
        (f"送餐任务{index}", "要做什么"),
        ("给独居老人送午饭", "几点开始"),
        ("11-27 10:30", "结束时间"),
        ("11:30", "地点"),
        ("文新社区服务中心", "片区"),
        ("button:跳过", "几位"),
        ("button:2", "志愿分"),
        ("10", "截止"),
        ("-", "只给认领成功的人看"),
        (f"王奶奶{index}", "预览"),
    )
    for answer, next_question in steps:
        if answer.startswith("button:"):
            await (await chat.press(answer.removeprefix("button:"))).wait(timeout)
        else:
            await chat.send(answer)
        await chat.expect_message(contains=next_question, timeout=timeout)
    preview = chat.state.bot_messages[-1]
    publish = next(
        label for row in preview.markup["inline_keyboard"] for label in [row[0]["text"]] if "发布" in label
    )
    await (await chat.press(publish)).wait(timeout)
    await chat.expect_message(contains="已发布", timeout=timeout)


async def test_fifty_captains_post_tasks_at_once(bot, tg):
    tg.server.set_latency(LATENCY)
    captains = list(range(20_001, 20_051))
    for user_id in captains:
        await bot.grant(user_id, "captain")
    await asyncio.gather(*(_post_task(tg, u, i) for i, u in enumerate(captains)))
    await bot.settle(timeout=60)
    rows = await bot.db.fetchall("SELECT created_by, title, private_details FROM tasks ORDER BY created_by")
    assert [r["created_by"] for r in rows] == captains
    for i, row in enumerate(rows):
        assert row["title"] == f"送餐任务{i}" and row["private_details"] == f"王奶奶{i}"
    assert await bot.db.fetchval("SELECT COUNT(*) FROM ptb_conversations WHERE name = 'newtask'") == 0


async def _publish(bot, slots: int) -> int:
    draft = TaskDraft(
        title="助老送餐",
        starts_at=bot.clock.now() + dt.timedelta(days=2),
        place_text="文新社区",
        slots=slots,
        points=10,
    )
    return (await bot.core.service(TaskService).publish(draft, CAPTAIN)).id


async def _wall(tg, user_id: int):
    chat = tg.private(tg.user(user_id, f"小哥{user_id}", started=True))
    await chat.send("/wishes")
    wall = await chat.expect_message(contains="助老送餐", timeout=30)
    return chat, wall


async def test_claim_storm_from_private_chats_never_overbooks(bot, tg):
    tg.server.set_latency(LATENCY)
    task_id = await _publish(bot, slots=5)
    couriers = await asyncio.gather(*(_wall(tg, 30_001 + i) for i in range(40)))
    presses = [chat.press("🙋 认领", message=wall) for chat, wall in couriers]
    answers = await asyncio.gather(*(p.wait(30) for p in await asyncio.gather(*presses)))
    claimed = await store.claims(bot.db, task_id, ("claimed",))
    assert len(claimed) == 5  # never more than the slots
    assert sum("认领成功" in (a.text or "") for a in answers) == 5
    assert _peak_overlap(tg.calls, "answerCallbackQuery") > 1  # the handlers really overlapped


async def test_twenty_taps_of_one_courier_have_one_effect(bot, tg):
    tg.server.set_latency(LATENCY)
    task_id = await _publish(bot, slots=3)
    chat, wall = await _wall(tg, 40_001)
    presses = [await chat.press("🙋 认领", message=wall) for _ in range(20)]
    answers = await asyncio.gather(*(p.wait(30) for p in presses))
    assert all(a.answered for a in answers)  # every tap gets its answer (no spinner left)
    claims = await store.claims(bot.db, task_id, ("claimed", "waitlisted"))
    assert [c.user_id for c in claims] == [40_001]
    await bot.settle(timeout=30)
    # One confirmation with the details, not twenty.
    assert len([m for m in chat.messages if "认领成功" in (m.text or "")]) == 1


async def test_twenty_taps_on_submit_file_one_report(bot, tg):
    tg.server.set_latency(LATENCY)
    chat = tg.private(tg.user(50_001, "小哥", started=True))
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("桥下积水")
    await chat.expect_message(contains="照片")
    await (await chat.press("跳过")).wait()
    await chat.expect_message(contains="在哪里")
    await chat.share_location(LAT, LON)
    summary = await chat.expect_message(contains="请确认")
    presses = [await chat.press("提交", message=summary) for _ in range(20)]
    await asyncio.gather(*(p.wait(30) for p in presses))
    await bot.settle(timeout=30)
    assert await bot.db.fetchval("SELECT COUNT(*) FROM reports WHERE reporter_id = 50001") == 1
