"""Broadcasts end to end: audience, preview, schedule, rush hold, 429/403, crash resume, progress, report."""

import datetime as dt

import pytest

from bot.broadcast import BroadcastService, Draft
from storage import broadcasts as bc_repo
from storage import groups as groups_repo
from storage import outbox as outbox_repo
from storage import users as users_repo
from tests.dbs import make_database

MOD = 7001
OWNER = 7000


@pytest.fixture
def clock():
    from bot.core.clock import FakeClock

    # 2026-11-25 09:00 in Shanghai: outside the meal-time rush windows.
    return FakeClock(dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC))


async def make_groups(tg, bot, count, *, area=None, first=-1002000000000):
    owner = tg.user(OWNER, "群主")
    ids = []
    for i in range(count):
        group = tg.group(first - i, f"小哥群{i}", creator=owner)
        await group.add_bot(by=owner)
        ids.append(first - i)
    await bot.settle()
    if area:
        for chat_id in ids:
            await groups_repo.set_area(bot.db, chat_id, area, bot.clock.now())
    return ids


async def moderator(tg, bot, user_id=MOD, area=""):
    await bot.grant(user_id, "moderator", area)
    chat = tg.private(tg.user(user_id, "社工小张"))
    await chat.send("/start")
    await chat.expect_message()
    return chat


def delivered(tg, chat_id, text):
    return [c for c in tg.calls_to("sendMessage", chat_id) if c.ok and c.params.get("text") == text]


async def compose(chat, text, audience_label):
    await chat.send("/broadcast")
    await chat.expect_message(contains="通知内容")
    await chat.send(text)
    await chat.expect_message(contains="发给谁")
    await (await chat.press(audience_label)).wait()
    return await chat.expect_message(contains="预览")


async def test_send_to_groups_of_an_area_with_progress_and_report(bot, tg):
    jiangcun = await make_groups(tg, bot, 3, area="蒋村街道")
    others = await make_groups(tg, bot, 2, area="古荡街道", first=-1003000000000)
    chat = await moderator(tg, bot)
    await chat.send("/broadcast")
    await chat.expect_message(contains="通知内容")
    await chat.send("本周六小哥学堂：电动车安全")
    await chat.expect_message(contains="发给谁")
    await (await chat.press("按片区选择群")).wait()
    await chat.expect_edit(contains="选择片区")
    await (await chat.press("⬜ 蒋村街道")).wait()
    await (await chat.press("完成")).wait()
    preview = await chat.expect_message(contains="预览")
    assert "接收方：3 个" in preview.text and "蒋村街道" in preview.text
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    for chat_id in jiangcun:
        assert len(delivered(tg, chat_id, "本周六小哥学堂：电动车安全")) == 1
    for chat_id in others:
        assert delivered(tg, chat_id, "本周六小哥学堂：电动车安全") == []
    final = await chat.expect_edit(contains="已发送完毕")
    assert "送达 3" in final.text and "失败 0" in final.text
    await chat.send("/broadcasts")
    listing = await chat.expect_message(contains="最近的群发")
    assert "送达 3/3" in listing.text


async def test_subscribers_audience_respects_opt_out(bot, tg):
    couriers = [tg.user(7100 + i, f"小哥{i}") for i in range(3)]
    for user in couriers:
        await tg.private(user).send("/start")
        await tg.private(user).expect_message()
    await tg.private(couriers[1]).send("/unsubscribe")
    await tg.private(couriers[1]).expect_message(contains="已退订")
    chat = await moderator(tg, bot)
    preview = await compose(chat, "台风蓝色预警，注意安全", "订阅的小哥（3 人）")
    assert "接收方：3 个" in preview.text  # 2 couriers + the moderator
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    assert len(delivered(tg, 7100, "台风蓝色预警，注意安全")) == 1
    assert delivered(tg, 7101, "台风蓝色预警，注意安全") == []
    assert len(delivered(tg, 7102, "台风蓝色预警，注意安全")) == 1


async def test_cancel_and_stale_buttons(bot, tg):
    await make_groups(tg, bot, 2)
    chat = await moderator(tg, bot)
    await compose(chat, "测试通知", "所有群（2 个）")
    await (await chat.press("取消")).wait()
    await chat.expect_message(contains="已取消")
    answer = await (await chat.press_data("bc:send")).wait()
    assert answer.show_alert and "过期" in answer.text
    await bot.settle()
    assert tg.calls_to("sendMessage", -1002000000000)[-1].params.get("text") != "测试通知"
    assert await bc_repo.recent(bot.db) == []


async def test_non_moderator_refused_everywhere(bot, tg):
    courier = tg.private(tg.user(7200, "小哥"))
    await courier.send("/broadcast")
    await courier.expect_message(contains="没有权限")
    await courier.send("/broadcasts")
    await courier.expect_message(contains="没有权限")
    answer = await (await courier.press_data("bc:stop:1")).wait()
    assert answer.show_alert and "没有权限" in answer.text
    # An area moderator cannot reach all groups.
    await make_groups(tg, bot, 1, area="蒋村街道")
    local = await moderator(tg, bot, user_id=7201, area="蒋村街道")
    await local.send("/broadcast")
    await local.expect_message(contains="通知内容")
    await local.send("只发蒋村")
    msg = await local.expect_message(contains="发给谁")
    assert [label for label, _ in msg.inline] == ["按片区选择群", "取消"]
    answer = await (await local.press_data("bc:aud:groups")).wait()
    assert "蒋村街道" in answer.text


async def test_rush_window_holds_non_urgent_and_urgent_goes_at_once(bot, tg, clock):
    [group] = await make_groups(tg, bot, 1)
    chat = await moderator(tg, bot)
    clock.set(dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC))  # 12:00 in Shanghai
    preview = await compose(chat, "午间通知", "所有群（1 个）")
    assert "13:30" in preview.text and "高峰" in preview.text
    await (await chat.press("✅ 发送")).wait()
    await chat.expect_edit(contains="定时于")
    await bot.settle()
    assert delivered(tg, group, "午间通知") == []
    await bot.advance(hours=1, minutes=31)
    assert len(delivered(tg, group, "午间通知")) == 1

    preview = await compose(chat, "台风红色预警", "所有群（1 个）")
    await (await chat.press("⬜ 紧急")).wait()
    preview = await chat.expect_edit(contains="紧急")
    assert "高峰结束后" not in preview.text
    clock.set(dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.UTC))
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    assert len(delivered(tg, group, "台风红色预警")) == 1


async def test_scheduled_send_at_a_time(bot, tg, clock):
    [group] = await make_groups(tg, bot, 1)
    chat = await moderator(tg, bot)
    await compose(chat, "明早议事会", "所有群（1 个）")
    await (await chat.press("⏰ 定时发送")).wait()
    await chat.expect_message(contains="什么时候发（北京时间）")
    await chat.send("明天")
    await chat.expect_message(contains="没看懂")
    await chat.send("2026-11-25 08:00")
    await chat.expect_message(contains="已经过去")
    await chat.send("明天下午3点")
    preview = await chat.expect_message(contains="预览")
    assert "2026-11-26 15:00" in preview.text
    await (await chat.press("⏰ 定时发送")).wait()
    await chat.expect_message(contains="什么时候发")
    await chat.send("2026-11-25 15:00")
    preview = await chat.expect_message(contains="预览")
    assert "2026-11-25 15:00" in preview.text
    await (await chat.press("✅ 发送")).wait()
    await bot.advance(hours=5, minutes=59)
    assert delivered(tg, group, "明早议事会") == []
    await bot.advance(minutes=2)
    assert len(delivered(tg, group, "明早议事会")) == 1


async def test_429_waits_and_retries_403_marks_inactive(bot, tg, clock):
    ids = await make_groups(tg, bot, 3)
    tg.server.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3, chat_id=ids[0])
    tg.server.fail_next(
        "sendMessage", 403, "Forbidden: bot was kicked from the supergroup chat", chat_id=ids[1]
    )
    service = bot.core.service(BroadcastService)
    broadcast, _plan = await service.submit(Draft(text="通知A", audience="groups"), author_id=MOD, lang="zh")
    await bot.settle()
    assert delivered(tg, ids[0], "通知A") == []
    assert len(delivered(tg, ids[2], "通知A")) == 1
    assert not (await groups_repo.get(bot.db, ids[1])).active
    await bot.advance(seconds=4)
    assert len(delivered(tg, ids[0], "通知A")) == 1
    figures = await service.figures(broadcast.id)
    assert (figures.sent, figures.skipped, figures.failed, figures.pending) == (2, 1, 0, 0)
    assert any("forbidden" in reason for reason in figures.reasons)
    # The kicked group is not an audience any more.
    plan = await service.plan(Draft(text="通知B", audience="groups"))
    assert ids[1] not in plan.recipients


async def test_blocked_user_marked_and_skipped(bot, tg):
    user = tg.user(7300, "小哥")
    await tg.private(user).send("/start")
    await tg.private(user).expect_message()
    await user.block_bot()
    service = bot.core.service(BroadcastService)
    broadcast, _ = await service.submit(
        Draft(text="私聊通知", audience="subscribers"), author_id=MOD, lang="zh"
    )
    await bot.settle()
    assert (await users_repo.get(bot.db, 7300)).blocked
    assert (await service.figures(broadcast.id)).skipped == 1


@pytest.mark.parametrize("config_overrides", [{"broadcast": {"max_per_second": 5.0}}])
async def test_restart_mid_broadcast_resumes_without_duplicates(bot, tg):
    ids = await make_groups(tg, bot, 30)
    tg.server.set_latency(0.02)
    service = bot.core.service(BroadcastService)
    broadcast, _ = await service.submit(Draft(text="断点续传", audience="groups"), author_id=MOD, lang="zh")
    # Stop while the broadcast is under way (the outbox lets in-flight sends finish).
    for _ in range(1000):
        counts = await outbox_repo.batch_counts(bot.db, broadcast.batch)
        if counts.get("sent", 0) >= 5:
            break
        await __import__("asyncio").sleep(0.01)
    await bot.stop()
    sent_before = sum(len(delivered(tg, c, "断点续传")) for c in ids)
    assert 0 < sent_before < 30
    tg.server.set_latency(0)
    await bot.start()
    await bot.settle()
    for chat_id in ids:
        row = await outbox_repo.get_by_key(bot.db, f"{broadcast.batch}:{chat_id}")
        assert len(delivered(tg, chat_id, "断点续传")) == 1, (chat_id, row)
    for _ in range(100):  # the progress watcher finishes the notice on its next tick
        if (await bc_repo.get(bot.db, broadcast.id)).state == "done":
            break
        await __import__("asyncio").sleep(0.05)
    assert (await bc_repo.get(bot.db, broadcast.id)).state == "done"


async def test_row_in_flight_at_a_crash_is_never_sent_twice(bot, tg):
    ids = await make_groups(tg, bot, 2)
    await bot.stop()
    # Simulate kill -9 during a send: a row left in 'sending'.

    db = await make_database(bot.db_path).open()
    await outbox_repo.enqueue(
        db,
        [
            outbox_repo.NewMessage(
                "notice",
                f"crash:{c}",
                c,
                {"method": "sendMessage", "params": {"text": "崩溃测试"}},
                bot.clock.now(),
            )
            for c in ids
        ],
        bot.clock.now(),
    )
    await db.execute("UPDATE outbox SET state = 'sending' WHERE dedup_key = ?", (f"crash:{ids[0]}",))
    await db.close()
    await bot.start()
    await bot.settle()
    assert delivered(tg, ids[0], "崩溃测试") == []
    assert len(delivered(tg, ids[1], "崩溃测试")) == 1
    row = await outbox_repo.get_by_key(bot.db, f"crash:{ids[0]}")
    # Telegram may have it: not "failed" (which invites a resend) but "delivery unknown".
    assert row.state == "unknown" and row.last_error == "interrupted (delivery unknown)"


async def test_pin_where_allowed_and_photo_notice(bot, tg):
    owner = tg.user(OWNER, "群主")
    pinnable = tg.group(-1004000000001, "可置顶群", creator=owner)
    await pinnable.add_bot(by=owner, admin=True, can_pin=True)
    plain = tg.group(-1004000000002, "普通群", creator=owner)
    await plain.add_bot(by=owner)
    await bot.settle()
    service = bot.core.service(BroadcastService)
    await service.submit(Draft(text="置顶通知", audience="groups", pin=True), author_id=MOD, lang="zh")
    await bot.settle()
    assert len(tg.calls_to("pinChatMessage", -1004000000001)) == 1
    assert tg.calls_to("pinChatMessage", -1004000000002) == []
    chat = await moderator(tg, bot)
    await chat.send("/broadcast")
    await chat.expect_message(contains="通知内容")
    await chat.send_sticker()
    await chat.expect_message(contains="不支持贴纸")
    await chat.send("字" * 4097)
    await chat.expect_message(contains="最多 4096")
    await chat.send_photo(caption="小哥驿站新开张")
    await chat.expect_message(contains="发给谁")
    await (await chat.press("所有群（2 个）")).wait()
    await chat.expect_message(contains="预览")
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    photos = [c for c in tg.calls_to("sendPhoto") if c.ok]
    assert len(photos) == 2 and photos[0].params.get("caption") == "小哥驿站新开张"


async def test_benchmark_runs_small():
    """bench/bench_broadcast.py keeps working (a small run; the full one is in the issue note)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_broadcast.py"
    spec = importlib.util.spec_from_file_location("bench_broadcast", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = await module.run_ours(40)
    assert result["duplicates"] == 0 and result["losses"] == 0 and result["429"] == 0


@pytest.mark.parametrize("config_overrides", [{"broadcast": {"max_per_second": 2.0}}])
async def test_area_moderator_neither_sees_nor_stops_others_notices(bot, tg):
    await make_groups(tg, bot, 6)
    admin_chat = await moderator(tg, bot)  # unscoped
    await compose(admin_chat, "台风预警：今晚停止配送", "所有群（6 个）")
    await (await admin_chat.press("✅ 发送")).wait()
    [(notice, _)] = await bot.core.service(BroadcastService).recent()
    street = await moderator(tg, bot, user_id=MOD + 1, area="蒋村街道")
    await street.send("/broadcasts")
    listing = await street.expect_message()
    assert "台风预警" not in listing.text and not listing.inline
    forged = await (await street.press_data(f"bc:stop:{notice.id}")).wait()
    assert forged.show_alert and "片区" in forged.text
    assert (await bc_repo.get(bot.db, notice.id)).state in ("queued", "sending", "done")
    await admin_chat.send("/broadcasts")
    own = await admin_chat.expect_message(contains="最近的群发")
    assert "台风预警" in own.text


async def test_rush_window_across_midnight(bot, tg):
    from bot.core.config import Config
    from bot.core.container import Core
    from bot.core.i18n import Catalog

    config = Config().with_overrides(broadcast={"rush_windows": ["22:00-02:00"]})
    svc = BroadcastService(Core(config=config, clock=bot.clock, db=bot.db, catalog=Catalog.load()))
    shanghai = dt.timezone(dt.timedelta(hours=8))
    at = dt.datetime(2026, 11, 25, 23, 0, tzinfo=shanghai)
    assert svc.rush_end(at) == dt.datetime(2026, 11, 26, 2, 0, tzinfo=shanghai)
    assert svc.rush_end(at.replace(day=26, hour=1)) == dt.datetime(2026, 11, 26, 2, 0, tzinfo=shanghai)
    assert svc.rush_end(at.replace(hour=21, minute=59)) is None
    assert svc.rush_end(at.replace(hour=2, minute=0)) is None


@pytest.mark.parametrize("config_overrides", [{"broadcast": {"progress_every_seconds": 60.0}}])
async def test_progress_edits_are_paced_and_never_go_backwards(bot, tg):
    await make_groups(tg, bot, 12)
    chat = await moderator(tg, bot)
    preview = await compose(chat, "小哥学堂开课", "所有群（12 个）")
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    await chat.expect_edit(contains="已发送完毕")
    edits = [
        c.params["text"]
        for c in tg.calls_to("editMessageText", chat.chat_id)
        if c.params.get("message_id") == preview.message_id
    ]
    # The first edit (the preview becomes the progress line) and the final report: nothing between,
    # since the pace is one edit a minute. (When all 12 went out before the first edit was written,
    # that first edit already is the final report.)
    assert 1 <= len(edits) <= 2, edits
    assert "已发送完毕" in edits[-1]
    assert all("已发送完毕" not in e for e in edits[:-1])


async def test_all_groups_leaves_out_the_moderators_chat(bot, tg):
    from tests.conftest import MODERATOR_CHAT_ID

    await make_groups(tg, bot, 2)
    owner = tg.user(OWNER, "群主")
    mods = tg.group(MODERATOR_CHAT_ID, "版主群", creator=owner)
    await mods.add_bot(by=owner)
    await bot.settle()
    chat = await moderator(tg, bot)
    await compose(chat, "台风蓝色预警", "所有群（2 个）")  # the moderators' chat is not counted
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    assert delivered(tg, MODERATOR_CHAT_ID, "台风蓝色预警") == []
    assert len(delivered(tg, -1002000000000, "台风蓝色预警")) == 1


async def test_angle_brackets_and_a_full_length_notice_preview_and_go_out_as_typed(bot, tg):
    ids = await make_groups(tg, bot, 1)
    chat = await moderator(tg, bot)
    text = "停电通知：<8点>到<10点> & 检修, 温度<0℃"
    preview = await compose(chat, text, "所有群（1 个）")
    assert text in preview.text  # shown as typed, not parsed as HTML
    await (await chat.press("⬜ 紧急")).wait()
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    assert len(delivered(tg, ids[0], text)) == 1
    # 4,096 characters: allowed for the notice; the preview shows its start and says so.
    long_text = "长" * 4096
    preview = await compose(chat, long_text, "所有群（1 个）")
    assert len(preview.text) <= 4096 and "全文，共 4096 字" in preview.text
    await (await chat.press("⬜ 紧急")).wait()
    await (await chat.press("✅ 发送")).wait()
    await bot.settle()
    assert len(delivered(tg, ids[0], long_text)) == 1
    assert not [c for c in tg.calls if c.error_code == 400]


async def test_preview_says_when_it_goes_urgent_or_held(bot, tg, clock):
    """Urgent means "not held by the rush", not "now": a scheduled urgent notice shows its time and
    never "立即发送"; a notice the rush holds does not say "立即发送" either, only until when."""
    await make_groups(tg, bot, 1)
    chat = await moderator(tg, bot)
    clock.set(dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC))  # 12:00 in Shanghai: the lunch rush
    held = await compose(chat, "午间通知", "所有群（1 个）")
    assert "立即发送" not in held.text and "13:30" in held.text
    await (await chat.press("⏰ 定时发送")).wait()
    await chat.expect_message(contains="什么时候发（北京时间）")
    await chat.send("2026-11-26 12:00")
    scheduled = await chat.expect_message(contains="预览")
    await (await chat.press("⬜ 紧急", message=scheduled)).wait()
    urgent = await chat.expect_edit(contains="紧急", message_id=scheduled.message_id)
    assert "发送时间：2026-11-26 12:00" in urgent.text
    assert "立即" not in urgent.text and "不避开送餐高峰" in urgent.text
