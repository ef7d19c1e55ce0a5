"""End to end: the wish wall (posting, group cards, claims, waitlist, reminders across restarts,
assignment, completion) and points (/points, /rank, /redeem, /confirmcode), plus every
captain/moderator action refused for a plain courier."""

import datetime as dt

from bot.tasks import TaskDraft, TaskService
from storage import points as ledger
from storage import tasks as store

CAPTAIN = 2001
MOD = 2002
GROUP = -1002000000001


async def started(tg, user_id: int, name: str):
    """A courier who opened the private chat with the bot."""
    user = tg.user(user_id, name, started=True)
    chat = tg.private(user)
    await chat.send("/start")
    await chat.expect_message(contains="你好")
    return user, chat


async def publish(bot, **changes) -> int:
    values = {
        "title": "助老送餐",
        "starts_at": bot.clock.now() + dt.timedelta(days=2),
        "place_text": "文新社区",
        "slots": 2,
        "points": 10,
        "private_details": "王奶奶 13800000000",
    }
    values.update(changes)
    task = await bot.core.service(TaskService).publish(TaskDraft(**values), CAPTAIN)
    return task.id


async def test_post_in_chat_then_group_card_follows_claims(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    captain_user, captain = await started(tg, CAPTAIN, "李队长")
    group = tg.group(GROUP, "文新小哥群", creator=captain_user)
    await group.add_bot(by=captain_user)
    await group.chat(captain_user).expect_message(contains="小哥助手")
    other = tg.group(GROUP - 1, "古荡骑手群", creator=captain_user)
    await other.add_bot(by=captain_user)
    await other.chat(captain_user).expect_message(contains="小哥助手")

    await captain.send("/newtask")
    await captain.expect_message(contains="标题")
    for answer, next_question in (
        ("助老送餐", "要做什么"),
        ("给独居老人送午饭", "几点开始"),
        ("11-27 10:30", "结束时间"),
        ("11:30", "地点"),
        ("文新社区服务中心", "片区"),
        ("button:跳过", "几位"),
        ("button:2", "志愿分"),
        ("10", "截止"),
        ("-", "只给认领成功的人看"),
    ):
        if answer.startswith("button:"):  # the one-tap answers under a question
            await (await captain.press(answer.removeprefix("button:"))).wait()
        else:
            await captain.send(answer)
        await captain.expect_message(contains=next_question)
    await captain.send("王奶奶 13800000000 文新路 8 号")
    preview = await captain.expect_message(contains="预览")
    assert "王奶奶" in preview.text and "11月27日（周五）10:30–11:30" in preview.text
    assert "📣 发布，并发到 2 个群" in preview.labels
    await (await captain.press("📋 选择群")).wait()
    await captain.expect_edit(message_id=preview.message_id)
    await (await captain.press("✅ 古荡骑手群")).wait()
    checklist = await captain.expect_edit(message_id=preview.message_id)
    assert "⬜ 古荡骑手群" in checklist.labels and "✅ 文新小哥群" in checklist.labels
    await (await captain.press("选好了")).wait()
    await captain.expect_edit(message_id=preview.message_id)
    await (await captain.press("📣 发布，并发到 1 个群")).wait()
    await captain.expect_message(contains="发到了 1 个群")

    first_user, first = await started(tg, 3001, "小王")
    members = group.chat(first_user)
    card = await members.expect_message(contains="助老送餐")
    assert "还差 2 人" in card.text and "王奶奶" not in card.text and "13800000000" not in card.text

    answer = await (await members.press("🙋 认领", message=card)).wait()
    assert "认领成功" in answer.text
    details = await first.expect_message(contains="认领成功")
    assert "王奶奶" in details.text  # private details only in the claimer's private chat
    edited = await members.expect_edit(contains="还差 1 人", message_id=card.message_id)
    assert edited is not None

    second = group.chat(tg.user(3002, "小李", started=True))
    await (await second.press("🙋 认领", message=card)).wait()
    full = await members.expect_edit(contains="可以候补", message_id=card.message_id)
    assert [label for label, _ in full.inline] == ["🕐 候补"]

    third_user, third = await started(tg, 3003, "小赵")
    answer = await (await group.chat(third_user).press("🕐 候补", message=card)).wait()
    assert "候补" in answer.text

    # The first claimer withdraws from the private message: the waitlist moves up and is told.
    await (await first.press("取消认领", message=details)).wait()
    ask = await first.expect_message(contains="确定取消认领")
    withdraw = await (await first.press("是，取消认领", message=ask)).wait()
    assert "已取消认领" in withdraw.text
    await third.expect_message(contains="候补成功")
    task_id = (await store.user_claims(bot.db, 3003, ("claimed",)))[0].task_id
    assert {c.user_id for c in await store.claims(bot.db, task_id, ("claimed",))} == {3002, 3003}
    assert not [c for c in tg.calls_to("sendMessage", GROUP - 1) if "助老送餐" in c.params.get("text", "")]


async def test_wall_pages_and_claim_from_the_list(bot, tg):
    for i in range(7):
        await publish(bot, title=f"心愿{i}", starts_at=bot.clock.now() + dt.timedelta(hours=10 + i))
    _, chat = await started(tg, 3010, "小钱")
    await chat.press("🙌 心愿墙")
    wall = await chat.expect_message(contains="第 1/2 页")
    assert "心愿0" in wall.text and "心愿5" not in wall.text
    next_data = dict(wall.inline)["下一页 ▶"]
    await (await chat.press("下一页 ▶")).wait()
    page2 = await chat.expect_edit(contains="第 2/2 页")
    assert "心愿5" in page2.text
    # A double tap on a slow connection: Telegram says "message is not modified"; no error is shown.
    again = await (await chat.press_data(next_data, message_id=wall.message_id)).wait()
    assert not again.show_alert and "出了点问题" not in (again.text or "")
    await (await chat.press("🙋 认领 1")).wait()
    await chat.expect_message(contains="认领成功")
    await chat.send("/mytasks")
    mine = await chat.expect_message(contains="我认领的心愿")
    assert "心愿5" in mine.text and "王奶奶" in mine.text
    await (await chat.press("取消认领 1", message=mine)).wait()
    ask = await chat.expect_message(contains="确定取消认领")
    await (await chat.press("是，取消认领", message=ask)).wait()
    redrawn = await chat.expect_edit(message_id=mine.message_id)
    assert "还没有认领" in redrawn.text
    gone = await (await chat.press_data("tk:cl:99999")).wait()
    assert gone.show_alert and "找不到" in gone.text
    forged = await (await chat.press_data("tk:cl:" + "9" * 25)).wait()  # beyond SQLite's 64 bits
    assert forged.show_alert and "找不到" in forged.text


async def test_nearest_first_after_sharing_a_location(bot, tg):
    await publish(bot, title="远处", lat=30.35, lon=120.05, starts_at=bot.clock.now() + dt.timedelta(hours=3))
    await publish(
        bot, title="近处", lat=30.2741, lon=120.1551, starts_at=bot.clock.now() + dt.timedelta(days=3)
    )
    _, chat = await started(tg, 3011, "小孙")
    await chat.send("/wishes")
    wall = await chat.expect_message(contains="按开始时间排序")
    assert wall.text.index("远处") < wall.text.index("近处")
    await (await chat.press("📍 离我最近")).wait()
    await chat.expect_message(contains="发送你的位置")
    await chat.press("📍 发送我的位置", location=(30.2740, 120.1550))
    nearest = await chat.expect_message(contains="按离你的远近排序")
    assert nearest.text.index("近处") < nearest.text.index("远处")


async def test_reminders_survive_restarts_and_are_sent_once(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    task_id = await publish(bot)
    _, chat = await started(tg, 3020, "小周")
    await chat.send("/wishes")
    await chat.expect_message(contains="心愿墙")
    await (await chat.press("🙋 认领 1")).wait()
    await chat.expect_message(contains="认领成功")

    await bot.restart()
    await bot.advance(hours=24)  # 24 h before the start
    reminder = await chat.expect_message(contains="24 小时后开始")
    assert [label for label, _ in reminder.inline] == ["✅ 我会到", "🙅 去不了"]
    await bot.restart()
    await bot.advance(minutes=1)
    await chat.expect_no_message()

    await (await chat.press("✅ 我会到", message=reminder)).wait()
    await bot.advance(hours=22, minutes=59)  # 1 h before
    await chat.expect_message(contains="1 小时后开始")
    await bot.restart()
    await bot.advance(minutes=30)
    await chat.expect_no_message()
    sent = [c for c in tg.calls_to("sendMessage", 3020) if (c.params.get("text") or "").startswith("⏰")]
    assert len(sent) == 2
    claim = await store.get_claim(bot.db, task_id, 3020)
    assert claim is not None and claim.confirmed
    await captain.expect_no_message()


async def test_cant_go_frees_the_slot_and_tells_the_captain(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    task_id = await publish(bot, slots=1)
    svc = bot.core.service(TaskService)
    _, chat = await started(tg, 3030, "小吴")
    _, waiting = await started(tg, 3031, "小郑")
    await svc.claim(task_id, 3030)
    await svc.join_waitlist(task_id, 3031)
    await bot.advance(hours=24)
    await chat.expect_message(contains="24 小时后开始")
    answer = await (await chat.press("🙅 去不了")).wait()
    assert "名额" in answer.text
    note = await captain.expect_message(contains="去不了")
    assert "小吴" in note.text
    await waiting.expect_message(contains="候补成功")


async def test_assignment_accepted(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    task_id = await publish(bot)
    _, courier = await started(tg, 3040, "小冯")
    await captain.send(f"/assign {task_id} 3040")
    await captain.expect_message(contains="已邀请对方")
    invite = await courier.expect_message(contains="邀请你参加")
    await (await courier.press("✅ 接受", message=invite)).wait()
    await courier.expect_message(contains="认领成功")
    await captain.expect_message(contains="小冯 接受了")


async def test_captain_marks_done_then_points_rank_and_redeem(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    await bot.grant(MOD, "station_keeper")
    _, captain = await started(tg, CAPTAIN, "李队长")
    _, keeper = await started(tg, MOD, "驿站老陈")
    task_id = await publish(bot)
    _, courier = await started(tg, 3050, "小褚")
    await bot.core.service(TaskService).claim(task_id, 3050)
    await bot.advance(days=2, hours=1)
    courier.skip()

    await captain.send("/tasks")
    await captain.expect_message(contains="我发布的心愿")
    await (await captain.press(f"管理 #{task_id}")).wait()
    view = await captain.expect_message(contains="名单")
    assert "小褚" in view.text
    await (await captain.press("✅ 已完成：小褚", message=view)).wait()
    await captain.expect_edit(contains="已完成")
    await courier.expect_message(contains="获得 10 志愿分")

    await courier.send("/points")
    assert "10" in (await courier.expect_message(contains="你的志愿分")).text
    await courier.send("/rank")
    board = await courier.expect_message(contains="金牌哨兵")
    assert "🥇 小褚 — 10 分" in board.text

    await courier.send("/redeem 6")
    code = (await courier.expect_message(contains="兑换码")).text.split("：")[1][:6]
    await keeper.send(f"/confirmcode {code}")
    await keeper.expect_message(contains="兑换成功")
    await courier.expect_message(contains="已兑换 6 志愿分")
    await keeper.send(f"/confirmcode {code}")
    await keeper.expect_message(contains="已经用过")
    assert await ledger.balance(bot.db, 3050) == 4


async def test_every_captain_and_moderator_action_refused_for_a_courier(bot, tg):
    task_id = await publish(bot)
    await started(tg, 3061, "小蒋")
    await bot.core.service(TaskService).claim(task_id, 3061)
    await ledger.append(bot.db, user_id=3061, delta=5, reason="task_done", now=bot.clock.now())
    _, chat = await started(tg, 3060, "小沈")
    for command in (
        "/newtask",
        "/tasks",
        f"/assign {task_id} 3061",
        "/assign",
        "/adjust 3061 +5 thanks",
        "/adjust",
        "/confirmcode 123456",
    ):
        await chat.send(command)
        refusal = await chat.expect_message()
        assert "没有权限" in refusal.text, command
    await bot.advance(days=2, hours=1)
    for data in (
        f"tk:ad:{task_id}",
        f"tk:mk:{task_id}:3061:d",
        f"tk:mk:{task_id}:3061:n",
        f"tk:sc:{task_id}",
        f"tk:cx:{task_id}",
        f"tk:cxy:{task_id}",
        "tk:pub:1",
    ):
        answer = await (await chat.press_data(data)).wait()
        assert answer.show_alert and ("没有权限" in answer.text or "过期" in answer.text), data
    count = await bot.core.service(TaskService).get(task_id)
    assert count is not None and count.task.state == "open"
    claim = await store.get_claim(bot.db, task_id, 3061)
    assert claim is not None and claim.state == "claimed"
    assert await ledger.balance(bot.db, 3061) == 5
    await chat.expect_no_message()


async def test_personal_lists_and_codes_never_shown_in_a_group(bot, tg):
    """/mytasks, /points, /redeem and the captain's roster answer in a group with a button to the
    private chat, and never post an elder's address, a balance or a redeem code there."""
    await bot.grant(CAPTAIN, "captain")
    captain_user, captain = await started(tg, CAPTAIN, "李队长")
    courier_user, courier = await started(tg, 3070, "小韩")
    group = tg.group(GROUP, "文新小哥群", creator=captain_user)
    await group.add_bot(by=captain_user)
    await group.chat(captain_user).expect_message(contains="小哥助手")
    task_id = await publish(bot)
    await bot.core.service(TaskService).claim(task_id, 3070)
    await ledger.append(bot.db, user_id=3070, delta=20, reason="task_done", now=bot.clock.now())
    courier.skip()

    in_group = group.chat(courier_user)
    in_group.skip()
    for command, payload in (("/mytasks", "mytasks"), ("/points", "points"), ("/redeem 5", "redeem_5")):
        await in_group.send(command)
        answer = await in_group.expect_message(contains="私聊")
        assert answer.inline and answer.inline[0][1].endswith(f"?start={payload}"), (command, answer.text)
    captain_in_group = group.chat(captain_user)
    captain_in_group.skip()
    await captain_in_group.send("/tasks")
    answer = await captain_in_group.expect_message(contains="私聊")
    assert answer.inline[0][1].endswith("?start=tasks")
    # A roster button pressed in the group (forged or from an old message) is refused too.
    alert = await (await captain_in_group.press_data(f"tk:ad:{task_id}")).wait()
    assert alert.show_alert and "私聊" in alert.text
    leaked = [
        c.params.get("text", "")
        for c in tg.calls_to("sendMessage", GROUP)
        if any(s in c.params.get("text", "") for s in ("13800000000", "王奶奶", "兑换码", "20"))
    ]
    assert leaked == []
    assert await ledger.balance(bot.db, 3070) == 20  # no code was made in the group

    # The buttons open the private chat where the same things are shown.
    for payload, expected in (("mytasks", "王奶奶"), ("points", "20"), ("redeem", "20")):
        await courier.send(f"/start {payload}")
        assert expected in (await courier.expect_message()).text, payload
    await captain.send("/start tasks")
    await captain.expect_message(contains="我发布的心愿")


async def test_captain_of_one_area_cannot_manage_a_task_without_area(bot, tg):
    await bot.grant(CAPTAIN, "captain")  # posts for everyone
    await bot.grant(CAPTAIN + 10, "captain", "古荡街道")
    _, street_captain = await started(tg, CAPTAIN + 10, "古荡队长")
    task_id = await publish(bot)  # no area: the whole district's
    await bot.core.service(TaskService).claim(task_id, 3080)
    for data in (f"tk:ad:{task_id}", f"tk:cxy:{task_id}", f"tk:sc:{task_id}"):
        answer = await (await street_captain.press_data(data)).wait()
        assert answer.show_alert and "片区" in answer.text, data
    await street_captain.send(f"/assign {task_id} 3081")
    assert "片区" in (await street_captain.expect_message()).text
    count = await bot.core.service(TaskService).get(task_id)
    assert count is not None and count.task.state == "open"
    area_task = await publish(bot, area="古荡街道")
    await (await street_captain.press_data(f"tk:ad:{area_task}")).wait()
    view = await street_captain.expect_message(contains="名单")
    assert "王奶奶" in view.text


async def answers(chat, *steps: tuple[str, str]) -> None:
    """Each answer gets exactly one reply, containing the expected text (no step is skipped)."""
    for answer, expected in steps:
        if answer.startswith("button:"):
            await (await chat.press(answer.removeprefix("button:"))).wait()
        else:
            await chat.send(answer)
        got = await chat.expect_message()
        assert expected in got.text, (answer, got.text)
        await chat.expect_no_message(within=0.05)


async def test_newtask_checks_each_answer_at_its_own_step(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(
        captain,
        ("长" * 300, "标题太长了，最多 60 个字。"),
        ("助老送餐", "2/10"),
        ("-", "3/10"),
        ("2026-11-20 10:00", "已经过去"),  # a past start says so (not "没看懂")
        ("2026-11-25 09:00", "已经过去"),  # earlier today
        ("11-27 10:30", "4/10"),
        ("09:00", "结束时间要晚于开始时间"),  # not silently the next day
        ("11-28 09:00", "5/10"),  # a typed date is taken as is
        ("文新社区", "6/10"),
        ("button:跳过", "7/10"),
        ("+0", "1 到 500"),
        ("+100000", "1 到 500"),
        ("2", "8/10"),
        ("-5", "0 到 1000"),
        ("10", "9/10"),
        ("2026-11-24 10:00", "已经过去"),
        ("11-28 10:00", "早于开始时间"),
        ("-", "10/10"),
        ("王奶奶", "预览"),
    )
    preview = captain.state.bot_messages[-1].text
    assert "11月27日（周五）10:30–11月28日（周六）09:00" in preview


async def test_preview_reasks_only_the_failing_step(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(
        captain,
        ("助老送餐", "2/10"),
        ("-", "3/10"),
        ("10:30", "4/10"),  # today, half an hour from now
        ("-", "5/10"),
        ("文新社区", "6/10"),
        ("button:跳过", "7/10"),
        ("2", "8/10"),
        ("10", "9/10"),
        ("-", "10/10"),
    )
    await bot.advance(hours=1)  # the start passes while the captain types
    await captain.send("-")
    assert "已经过去" in (await captain.expect_message()).text
    assert "3/10" in (await captain.expect_message()).text
    await answers(captain, ("11-27 10:30", "预览"))  # straight back: steps 4-10 are kept


async def test_stop_claims_asks_first_and_is_not_top_left(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    task_id = await publish(bot)
    await captain.send("/tasks")
    await captain.expect_message(contains="我发布的心愿")
    await (await captain.press(f"管理 #{task_id}")).wait()
    view = await captain.expect_message(contains="名单")
    assert view.labels[0] != "🔒 停止认领"
    await (await captain.press("🔒 停止认领", message=view)).wait()
    ask = await captain.expect_message(contains="确定停止认领")
    assert (await store.get(bot.db, task_id)).state == "open"  # nothing happened yet
    kept = await (await captain.press("↩️ 不了，保持原样", message=ask)).wait()
    assert "保持原样" in kept.text and (await store.get(bot.db, task_id)).state == "open"
    await (await captain.press("🔒 停止认领", message=view)).wait()
    ask = await captain.expect_message(contains="确定停止认领")
    await (await captain.press("确定停止认领", message=ask)).wait()
    assert (await store.get(bot.db, task_id)).state == "closed"


async def test_wall_in_a_group_is_the_same_for_everyone(bot, tg):
    """In a group: soonest first (no one's location used or shown), and no location request (Telegram
    refuses request_location keyboards outside private chats)."""
    await publish(
        bot, title="近处", lat=30.275, lon=120.155, starts_at=bot.clock.now() + dt.timedelta(hours=5)
    )
    await publish(bot, title="早的", starts_at=bot.clock.now() + dt.timedelta(hours=2))
    user, chat = await started(tg, 3090, "小冯")
    await chat.share_location(30.2741, 120.1551)
    await chat.expect_message()
    group = tg.group(GROUP, "文新小哥群", creator=user)
    await group.add_bot(by=user)
    await bot.settle()
    in_group = group.chat(user)
    in_group.skip()
    await in_group.send("/wishes")
    wall = await in_group.expect_message(contains="心愿墙")
    assert wall.text.index("早的") < wall.text.index("近处") and "公里" not in wall.text
    assert not [label for label in wall.labels if "离我最近" in label]
    forged = await (await in_group.press_data("tk:near", message_id=wall.message_id)).wait()
    assert forged.show_alert and "私聊" in forged.text
    assert not [c for c in tg.calls_to("sendMessage", GROUP) if not c.ok]


async def test_wall_marks_my_claim_with_withdraw_and_pins_have_a_map_button(bot, tg):
    await publish(bot, title="送药", slots=1, place_text="", lat=30.2741, lon=120.1551)
    _, chat = await started(tg, 3020, "小吴")
    await chat.send("/wishes")
    wall = await chat.expect_message(contains="送药")
    assert "见地图定位" in wall.text and "🗺 地图 1" in wall.labels
    assert dict(wall.inline)["🗺 地图 1"].startswith("https://")
    await (await chat.press("🙋 认领 1", message=wall)).wait()
    claimed = await chat.expect_message(contains="认领成功")
    assert "可以候补" not in claimed.text and "你在名单上" in claimed.text

    # The wall again: the task is marked as mine, with withdraw instead of 认领 / 候补.
    await chat.send("/wishes")
    again = await chat.expect_message(contains="送药")
    assert "✅ 你已认领" in again.text and "可以候补" not in again.text and "候补中" not in again.text
    assert "取消认领 1" in again.labels
    assert not [label for label in again.labels if "认领 1" in label and label.startswith("🙋")]
    assert not [label for label in again.labels if "候补" in label]

    # /mytasks: the pin-only task has its map link next to it.
    await chat.send("/mytasks")
    mine = await chat.expect_message(contains="我认领的心愿")
    assert "见地图定位" in mine.text and "🗺 地图 1" in mine.labels

    # Withdrawing from the wall redraws it: 认领 is offered again.
    await (await chat.press("取消认领 1", message=again)).wait()
    ask = await chat.expect_message(contains="确定取消认领")
    await (await chat.press("是，取消认领", message=ask)).wait()
    redrawn = await chat.expect_edit(message_id=again.message_id)
    assert "🙋 认领 1" in redrawn.labels and "你已认领" not in redrawn.text


async def test_second_redeem_code_says_the_first_is_void(bot, tg):
    await ledger.append(
        bot.db, user_id=3060, delta=10, reason="task_done", area=None, now=bot.clock.now(), idem_key=None
    )
    _, courier = await started(tg, 3060, "小卫")
    await courier.send("/redeem 5")
    first = await courier.expect_message(contains="兑换码")
    assert "作废" not in first.text
    await courier.send("/redeem 5")
    second = await courier.expect_message(contains="兑换码")
    assert "之前的兑换码已作废" in second.text


async def test_relative_days_in_start_and_end_read_from_now(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(
        captain,
        ("助老送餐", "2/10"),
        ("-", "3/10"),
        ("昨天 10:00", "已经过去"),
        ("明天 10:00", "4/10"),
        ("明天 12:00", "5/10"),  # tomorrow as the courier means it, not the day after the start
        ("文新社区", "6/10"),
        ("button:跳过", "7/10"),
        ("2", "8/10"),
        ("10", "9/10"),
        ("-", "10/10"),
        ("王奶奶", "预览"),
    )
    preview = captain.state.bot_messages[-1].text
    assert "10:00–12:00" in preview and "11月27日" not in preview


async def test_an_area_no_group_has_is_questioned_once(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    captain_user, captain = await started(tg, CAPTAIN, "李队长")
    group = tg.group(GROUP, "文新小哥群", creator=captain_user)
    await group.add_bot(by=captain_user)
    await bot.settle()
    from storage import groups as groups_repo

    await groups_repo.set_area(bot.db, GROUP, "文新街道", bot.clock.now())
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(
        captain,
        ("助老送餐", "2/10"),
        ("-", "3/10"),
        ("明天 10:00", "4/10"),
        ("-", "5/10"),
        ("文新社区", "6/10"),
        ("文新", "还没有群属于「文新」"),  # a typo: questioned, the step kept
        ("文新街道", "7/10"),  # an area groups carry: taken at once
    )
    # A question left open by an abandoned draft does not let the same typo through next time.
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(captain, ("助老送餐", "2/10"), ("-", "3/10"), ("明天 10:00", "4/10"), ("-", "5/10"))
    await captain.send("文新社区")
    assert "文新街道" in (await captain.expect_message(contains="6/10")).text  # the areas in use
    await captain.send("文新")
    await captain.expect_message(contains="还没有群属于「文新」")
    await captain.send("/cancel")
    await captain.expect_message(contains="已取消")
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(
        captain,
        ("助老送餐", "2/10"),
        ("-", "3/10"),
        ("明天 10:00", "4/10"),
        ("-", "5/10"),
        ("文新社区", "6/10"),
        ("文新", "还没有群属于「文新」"),
    )


async def test_withdrawing_asks_first_and_sits_apart_from_the_map(bot, tg):
    """取消认领 is on a row of its own (not beside 🗺), and asks 是，取消认领 / 不，保留 before acting;
    a withdrawal that could not be done anyway (too late) is refused at once, without a question."""
    task_id = await publish(bot, title="送药", slots=1, place_text="", lat=30.2741, lon=120.1551)
    _, chat = await started(tg, 3100, "小孔")
    await chat.send("/wishes")
    wall = await chat.expect_message(contains="送药")
    await (await chat.press("🙋 认领 1", message=wall)).wait()
    claimed = await chat.expect_message(contains="认领成功")
    for message in (claimed, None):
        if message is None:
            await chat.send("/mytasks")
            message = await chat.expect_message(contains="我认领的心愿")
        rows = message.buttons
        withdraw_row = next(row for row in rows if any("取消认领" in label for label in row))
        assert len(withdraw_row) == 1, rows  # never next to the map link
        assert any("🗺" in label for row in rows for label in row)
    mine = message

    await (await chat.press("取消认领 1", message=mine)).wait()
    ask = await chat.expect_message(contains="确定取消认领「送药」")
    assert ask.labels == ["是，取消认领", "不，保留"]
    claim = await store.get_claim(bot.db, task_id, 3100)
    assert claim is not None and claim.state == "claimed"  # nothing happened yet
    kept = await (await chat.press("不，保留", message=ask)).wait()
    assert "留着" in kept.text
    await chat.expect_edit(message_id=ask.message_id)
    claim = await store.get_claim(bot.db, task_id, 3100)
    assert claim is not None and claim.state == "claimed"

    await (await chat.press("取消认领 1", message=mine)).wait()
    ask = await chat.expect_message(contains="确定取消认领")
    done = await (await chat.press("是，取消认领", message=ask)).wait()
    assert done.show_alert and "已取消认领" in done.text
    redrawn = await chat.expect_edit(message_id=mine.message_id)
    assert "还没有认领" in redrawn.text
    claim = await store.get_claim(bot.db, task_id, 3100)
    assert claim is not None and claim.state == "withdrawn"

    # Too late: refused at the first press, no question.
    late = await publish(bot, title="巡查", starts_at=bot.clock.now() + dt.timedelta(hours=1))
    await bot.core.service(TaskService).claim(late, 3100)
    await chat.expect_message(contains="到时能来吗")  # asked at once: it starts within the day
    await chat.send("/mytasks")
    mine = await chat.expect_message(contains="我认领的心愿")
    refused = await (await chat.press("取消认领 1", message=mine)).wait()
    assert refused.show_alert and "不能再取消认领" in refused.text
    await chat.expect_no_message()


async def test_redeem_says_what_points_buy_holds_the_points_and_keeps_the_amount_from_a_group(bot, tg):
    """/redeem 20 in a group: the button opens the private chat with the code for 20 at once. The
    code holds the 20 points: /points shows them as held, not free; /redeem and /points say what
    points buy, where."""
    await ledger.append(bot.db, user_id=3110, delta=25, reason="task_done", now=bot.clock.now())
    user, courier = await started(tg, 3110, "小曹")
    group = tg.group(GROUP, "文新小哥群", creator=user)
    await group.add_bot(by=user)
    await bot.settle()
    in_group = group.chat(user)
    in_group.skip()
    await in_group.send("/redeem 20")
    answer = await in_group.expect_message(contains="私聊")
    assert answer.inline[0][1].endswith("?start=redeem_20")
    await courier.send("/start redeem_20")
    issued = await courier.expect_message(contains="兑换码")
    assert "20 志愿分" in issued.text or "20 分" in issued.text
    code = issued.text.split("：")[1][:6]
    assert code.isdigit()

    await courier.send("/points")
    shown = await courier.expect_message(contains="你的志愿分")
    assert "你的志愿分：5" in shown.text and code in shown.text  # 20 of the 25 are held by the code
    assert "毛巾" in shown.text and "驿站" in shown.text
    await courier.send("/me")
    assert "志愿分：5" in (await courier.expect_message(contains="我的信息")).text
    await courier.send("/redeem")
    usage = await courier.expect_message(contains="/redeem")
    assert code in usage.text and "作废" in usage.text and "毛巾" in usage.text

    await bot.grant(MOD, "station_keeper")
    _, keeper = await started(tg, MOD, "驿站老陈")
    await keeper.send(f"/confirmcode {code}")
    done = await keeper.expect_message(contains="兑换成功")
    assert "20" in done.text
    assert await ledger.balance(bot.db, 3110) == 5


async def test_wording_of_the_posting_steps_and_the_roster(bot, tg):
    """The start step names the zone as people say it (北京时间, not Asia/Shanghai); an area typed
    when no group has one is not answered with "现有片区：-"; the wall says nobody waits without
    "0 人候补中"; roster buttons say what they record (✅ 已完成 / ❌ 未到); a captain who marks
    themselves done is told it earns nothing and why."""
    await bot.grant(CAPTAIN, "captain")
    _, captain = await started(tg, CAPTAIN, "李队长")
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(captain, ("助老送餐", "2/10"), ("-", "3/10"))
    start = captain.state.bot_messages[-1].text
    assert "北京时间" in start and "Asia/Shanghai" not in start
    await answers(captain, ("明天 10:00", "4/10"), ("-", "5/10"), ("文新社区", "6/10"))
    await captain.send("文新街道")
    warned = await captain.expect_message(contains="还没有哪个群设置了片区")
    assert "：-" not in warned.text and "现有片区" not in warned.text
    await captain.send("/cancel")
    await captain.expect_message()

    task_id = await publish(bot, slots=2, points=10)
    svc = bot.core.service(TaskService)
    await svc.claim(task_id, CAPTAIN)
    _, other = await started(tg, 3120, "小严")
    await svc.claim(task_id, 3120)
    await other.send("/wishes")
    wall = await other.expect_message(contains="心愿墙")
    assert "你已认领" in wall.text and "0 人" not in wall.text
    _, third = await started(tg, 3121, "小华")
    await third.send("/wishes")
    full = await third.expect_message(contains="心愿墙")
    assert "已招齐，还可以候补" in full.text and "0 人候补" not in full.text

    await bot.advance(days=2, hours=1)
    captain.skip()
    await captain.send("/tasks")
    await captain.expect_message(contains="我发布的心愿")
    await (await captain.press(f"管理 #{task_id}")).wait()
    view = await captain.expect_message(contains="名单")
    assert {"✅ 已完成：李队长", "❌ 未到：李队长", "✅ 已完成：小严", "❌ 未到：小严"} <= set(view.labels)
    own = await (await captain.press("✅ 已完成：李队长", message=view)).wait()
    assert own.show_alert and "不计志愿分" in own.text and "/adjust" in own.text
    assert await ledger.balance(bot.db, CAPTAIN) == 0
    await captain.expect_edit(message_id=view.message_id)
    await (await captain.press("✅ 已完成：小严", message=view)).wait()
    await other.expect_message(contains="获得 10 志愿分")
    assert await ledger.balance(bot.db, 3120) == 10
