"""End to end: /start, /help by role, /lang, deep links, roles, groups, restart."""

import asyncio

from tests.conftest import ADMIN_ID


async def test_start_in_chinese(bot, tg):
    chat = tg.private(tg.user(1001, "小王", language_code="zh-hans"))
    await chat.send("/start")
    msg = await chat.expect_message(contains="你好，小王")
    assert msg.reply_keyboard
    labels = msg.labels
    assert "📍 附近驿站" in labels and "📝 反映问题" in labels and "👤 我的" in labels
    assert msg.button("📍 附近驿站").get("request_location") is True


async def test_start_in_english(bot, tg):
    chat = tg.private(tg.user(1002, "Wang", language_code="en"))
    await chat.send("/start")
    msg = await chat.expect_message(contains="Hi Wang")
    assert "📍 Stations nearby" in msg.labels


async def test_help_depends_on_role(bot, tg):
    courier = tg.private(tg.user(1003, "小李"))
    await courier.send("/help")
    text = (await courier.expect_message(contains="/start")).text
    assert "/grant" not in text and "/broadcast" not in text
    assert "小哥" in text  # role line: courier

    admin = tg.private(tg.user(ADMIN_ID, "管理员"))
    await admin.send("/help")
    text = (await admin.expect_message(contains="/start")).text
    assert "/grant" in text and "/broadcast" in text

    await bot.grant(1003, "moderator", "蒋村街道")
    await courier.send("/help")
    text = (await courier.expect_message(contains="/start")).text
    assert "/broadcast" in text and "/grant" not in text
    assert "蒋村街道" in text


async def test_lang_switch(bot, tg):
    chat = tg.private(tg.user(1004, "小赵"))
    await chat.send("/lang")
    await chat.expect_message(contains="Choose your language")
    await chat.press("English")
    await chat.expect_edit(contains="Language set to English")
    await chat.send("/start")
    await chat.expect_message(contains="Hi 小赵")
    await chat.send("/lang")
    await chat.expect_message()
    await chat.press("简体中文")
    await chat.expect_edit(contains="简体中文")


async def test_forged_lang_button_changes_nothing(bot, tg):
    chat = tg.private(tg.user(1005, "小钱"))
    await chat.send("/lang")
    await chat.expect_message()
    answer = await (await chat.press_data("core:lang:xx")).wait()
    assert answer.show_alert and "过期" in answer.text
    await chat.send("/start")
    await chat.expect_message(contains="你好")


async def test_unknown_deep_link_shows_menu(bot, tg):
    chat = tg.private(tg.user(1006, "小孙"))
    await chat.send("/start nonsense_42")
    msg = await chat.expect_message(contains="链接已失效")
    assert msg.reply_keyboard


async def test_grant_by_reply_and_refusal(bot, tg):
    admin_user = tg.user(ADMIN_ID, "管理员", started=True)
    courier_user = tg.user(1007, "小周", started=True)
    group = tg.group(-100777, "蒋村小哥群", creator=admin_user)
    await group.add_bot(by=admin_user)
    courier_chat = group.chat(courier_user)
    await tg.private(courier_user).send("/start")
    await tg.private(courier_user).expect_message()
    hello = await courier_chat.send("大家好")
    admin_chat = group.chat(admin_user)
    await admin_chat.reply_to(hello, "/grant moderator 蒋村街道")
    await admin_chat.expect_message(contains="小周")
    note = await tg.private(courier_user).expect_message(contains="蒋村街道")
    assert note is not None
    roles = await bot.core.authz.roles_of(1007)
    assert [(r.value, a) for r, a in roles] == [("moderator", "蒋村街道")]

    # A courier (now moderator) cannot grant: only admins can.
    await courier_chat.send("/grant 9999 captain")
    refusal = await courier_chat.expect_message(contains="没有权限")
    assert refusal is not None
    # Unknown role, unknown user
    await admin_chat.send("/grant 1007 king")
    await admin_chat.expect_message(contains="king")
    await admin_chat.send("/grant 55555 captain")
    await admin_chat.expect_message(contains="55555")
    await admin_chat.send("/revoke 1007 moderator 蒋村街道")
    await admin_chat.expect_message(contains="撤销")
    assert await bot.core.authz.roles_of(1007) == []
    # Roles may be named as the bot shows them, or by their common short names.
    await admin_chat.send("/grant 1007 队长 蒋村街道")
    granted = await admin_chat.expect_message(contains="志愿队长")
    # No group carries that area (here: no group has one at all): maybe a typo, and never "现有片区：-".
    assert "「蒋村街道」是第一个" in granted.text and "：-" not in granted.text
    await admin_chat.send("/grant 1007 社区管理员")
    await admin_chat.expect_message(contains="社区管理员")
    assert sorted(r.value for r, _ in await bot.core.authz.roles_of(1007)) == ["captain", "moderator"]


async def test_group_added_removed_migrated_and_area(bot, tg):
    from storage import groups

    admin_user = tg.user(ADMIN_ID, "管理员")
    member = tg.user(1008, "小吴")
    group = tg.group(-5001, "古荡骑手群", type="group", creator=admin_user)
    await group.add_bot(by=admin_user)
    await group.chat(admin_user).expect_message(contains="小哥助手")
    record = await groups.get(bot.db, -5001)
    assert record is not None and record.active and record.title == "古荡骑手群"

    # A plain member cannot set the area; the Telegram group admin can.
    await group.chat(member).send("/area 古荡街道")
    await group.chat(member).expect_message(contains="没有权限")
    await group.chat(admin_user).send("/area@xiaoge_test_bot 古荡街道")
    await group.chat(admin_user).expect_message(contains="古荡街道")
    assert (await groups.get(bot.db, -5001)).area == "古荡街道"

    new = await group.migrate_to_supergroup(-1005001, by=admin_user)
    await bot.settle()
    migrated = await groups.get(bot.db, -1005001)
    assert migrated is not None and migrated.area == "古荡街道" and migrated.active

    await new.remove_bot(by=admin_user)
    await bot.settle()
    assert not (await groups.get(bot.db, -1005001)).active


async def test_demoted_group_admin_loses_power_at_once(bot, tg):
    owner = tg.user(1010, "群主")
    helper = tg.user(1011, "副群主")
    group = tg.group(-100888, "翠苑群", creator=owner)
    # Telegram sends chat_member updates only to bots that are admins.
    await group.add_bot(by=owner, admin=True)
    await group.set_admin(helper, True)
    await group.chat(helper).send("/area 翠苑街道")
    await group.chat(helper).expect_message(contains="翠苑街道")
    await group.set_admin(helper, False)
    await group.chat(helper).send("/area 西溪街道")
    await group.chat(helper).expect_message(contains="没有权限")


async def test_anonymous_admin_is_not_mistaken_for_a_user(bot, tg):
    owner = tg.user(1012, "群主")
    group = tg.group(-100999, "三墩群", creator=owner)
    await group.add_bot(by=owner)
    anon = group.anonymous_admin()
    await anon.send("/area 三墩镇")
    await anon.expect_message(contains="三墩镇")
    await anon.send("/broadcast")
    await anon.expect_message(contains="私聊")
    await anon.send("/grant 1012 moderator")
    await anon.expect_message(contains="匿名")


async def test_restart_keeps_conversation_state(bot, tg):
    await bot.grant(1013, "moderator")
    chat = tg.private(tg.user(1013, "老陈"))
    await chat.send("/broadcast")
    await chat.expect_message(contains="通知内容")
    await chat.send("明天下午三点小哥学堂开课")
    await chat.expect_message(contains="发给谁")
    await bot.restart()
    await chat.press("订阅的小哥（1 人）")
    preview = await chat.expect_message(contains="预览")
    assert "小哥学堂" in preview.text


async def test_me_and_cancel(bot, tg):
    chat = tg.private(tg.user(1014, "小林"))
    await chat.send("/cancel")
    await chat.expect_message(contains="没有进行中")
    await chat.send("👤 我的")
    msg = await chat.expect_message(contains="我的")
    assert "志愿分：0" in msg.text


async def test_unknown_command(bot, tg):
    chat = tg.private(tg.user(1015, "小郑"))
    await chat.send("/nosuchthing")
    await chat.expect_message(contains="没有这个命令")


async def test_commands_registered_per_scope_and_language(bot, tg):
    await tg.server.wait_for(lambda: len(tg.calls_to("setMyCommands")) >= 9, 5)
    calls = tg.calls_to("setMyCommands")
    scopes = {
        (c.params.get("scope", {}) or {}).get("type")
        if isinstance(c.params.get("scope"), dict)
        else str(c.params.get("scope"))
        for c in calls
    }
    assert len(calls) >= 9
    langs = {c.params.get("language_code") for c in calls}
    assert {"zh", "en"} <= langs
    assert scopes  # private, groups, admins


async def test_webhook_mode(tg, tmp_path, clock):
    """Webhook mode: PTB's webhook server receives the updates the (fake) Telegram POSTs to it."""
    import dataclasses
    import socket

    from bot.core.runtime import Runtime
    from tests.conftest import make_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = make_config(tg, tmp_path / "wh.sqlite3")
    config = dataclasses.replace(
        config,
        telegram=dataclasses.replace(
            config.telegram,
            mode="webhook",
            webhook_listen="127.0.0.1",
            webhook_port=port,
            webhook_url=f"http://127.0.0.1:{port}",  # the real config insists on https
            webhook_path="hook",
            webhook_secret_token="s3cret-token",
        ),
    )
    runtime = Runtime(config, clock=clock)
    await runtime.start()
    try:
        assert tg.calls_to("setWebhook")[-1].params["url"] == f"http://127.0.0.1:{port}/hook"
        chat = tg.private(tg.user(1101, "小韩"))
        await chat.send("/start")
        await chat.expect_message(contains="你好，小韩")
    finally:
        await runtime.stop()


async def test_webhook_refuses_forged_updates(tg, tmp_path, clock, caplog):
    """No secret configured: one is generated and kept; Telegram (the fake) sends it and is served,
    while a POST without it, or with a wrong one, claiming to come from an admin, changes nothing."""
    import dataclasses
    import socket

    import aiohttp

    from bot.core.runtime import Runtime
    from storage import bot_state, roles
    from tests.conftest import make_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = make_config(tg, tmp_path / "wh.sqlite3")
    config = dataclasses.replace(
        config,
        telegram=dataclasses.replace(
            config.telegram,
            mode="webhook",
            webhook_listen="127.0.0.1",
            webhook_port=port,
            webhook_url=f"http://127.0.0.1:{port}",
            webhook_path="hook",
            webhook_secret_token="",
        ),
    )
    forged = {
        "update_id": 999_999,
        "message": {
            "message_id": 1,
            "date": 1_800_000_000,
            "chat": {"id": ADMIN_ID, "type": "private", "first_name": "admin"},
            "from": {"id": ADMIN_ID, "is_bot": False, "first_name": "admin"},
            "text": "/grant 6666 moderator",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    runtime = Runtime(config, clock=clock)
    await runtime.start()
    try:
        secret = await bot_state.get(runtime.core.db, "webhook_secret")
        assert secret and len(secret) >= 32
        assert tg.calls_to("setWebhook")[-1].params["secret_token"] == secret
        assert secret not in caplog.text  # said in the log, never shown
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                response = await http.post(f"http://127.0.0.1:{port}/hook", json=forged, headers=headers)
                assert response.status == 403
        chat = tg.private(tg.user(1101, "小韩"))
        await chat.send("/start")  # the real Telegram still gets through
        await chat.expect_message(contains="你好，小韩")
        assert await roles.for_user(runtime.core.db, 6666) == []
        assert not tg.calls_to("sendMessage", ADMIN_ID)
    finally:
        await runtime.stop()
    again = Runtime(config, clock=clock)  # a restart keeps the same secret
    await again.start()
    try:
        assert tg.calls_to("setWebhook")[-1].params["secret_token"] == secret
    finally:
        await again.stop()


async def test_network_errors_do_not_stop_the_bot(bot, tg):
    tg.server.fail_next("getUpdates", 502, "Bad Gateway", times=2)
    tg.server.fail_next("getUpdates", 429, "Too Many Requests: retry after 1", retry_after=1)
    chat = tg.private(tg.user(1102, "小冯"))
    await chat.send("/start")
    await chat.expect_message(contains="你好", timeout=15)


async def test_error_in_a_handler_is_answered_in_the_users_language(bot, tg):
    chat = tg.private(tg.user(1103, "Feng", language_code="en"))
    tg.server.fail_next("sendMessage", 400, "Bad Request: something unexpected", chat_id=1103)
    await chat.send("/start")
    msg = await chat.expect_message(contains="something went wrong")
    assert "Bad Request" not in msg.text and "Traceback" not in msg.text
    await chat.send("/start")
    await chat.expect_message(contains="Hi Feng")


async def test_area_moderator_cannot_take_another_areas_group(bot, tg):
    from storage import groups

    owner = tg.user(1020, "群主")
    await bot.grant(1021, "moderator", "蒋村街道")
    street = tg.user(1021, "蒋村社工")
    group = tg.group(-1005002, "古荡骑手群", creator=owner)
    await group.add_bot(by=owner)
    await bot.settle()
    await groups.set_area(bot.db, -1005002, "古荡街道", bot.clock.now())
    chat = group.chat(street)
    chat.skip()
    await chat.send("/area 蒋村街道")
    assert "片区" in (await chat.expect_message()).text
    assert (await groups.get(bot.db, -1005002)).area == "古荡街道"
    untagged = tg.group(-1005003, "新群", creator=owner)
    await untagged.add_bot(by=owner)
    await bot.settle()
    own = untagged.chat(street)
    own.skip()
    await own.send("/area 蒋村街道")  # an untagged group may be taken into one's own area
    await own.expect_message(contains="蒋村街道")
    assert (await groups.get(bot.db, -1005003)).area == "蒋村街道"


async def test_one_cancel_leaves_two_open_flows(bot, tg):
    """/newmeeting, then /broadcast before finishing it, then /cancel: the menu works again at once
    (the forgotten meeting flow must not take 🙌 心愿墙 as its answer)."""
    await bot.grant(1030, "moderator")
    chat = tg.private(tg.user(1030, "社工小钱"))
    await chat.send("/newmeeting")
    await chat.expect_message()
    await chat.send("周会")
    await chat.expect_message()
    await chat.send("/broadcast")
    await chat.expect_message(contains="通知内容")
    await chat.send("/cancel")
    await chat.expect_message(contains="已取消")
    await chat.send("🙌 心愿墙")
    answer = await chat.expect_message()
    assert "心愿" in answer.text and "没看懂" not in answer.text, answer.text


async def test_me_in_a_group_points_to_the_private_chat(bot, tg):
    owner = tg.user(1040, "小周")
    group = tg.group(-1005040, "小哥群", creator=owner)
    await group.add_bot(by=owner)
    await bot.settle()
    chat = group.chat(owner)
    chat.skip()
    await chat.send("/me")
    answer = await chat.expect_message(contains="私聊")
    assert "志愿分" not in answer.text and answer.inline[0][1].endswith("?start=me")
    private = tg.private(owner)
    await private.send("/start me")
    assert "志愿分" in (await private.expect_message()).text


async def test_plain_text_in_private_searches_stations_or_says_what_to_do(bot, tg):
    chat = tg.private(tg.user(1041, "小孙"))
    await chat.send("/start")
    await chat.expect_message()
    await chat.send("还没提交吗 & <怎么办>")
    hint = await chat.expect_message(contains="没有找到")
    assert "还没提交吗 & <怎么办>" in hint.text and "📍" in hint.text


async def test_start_polls_first_and_registers_unchanged_menus_only_once(tg, tmp_path, clock):
    """Against a distant Telegram (100 ms a call) the first getUpdates comes right after getMe and
    deleteWebhook; the nine command menus follow, all at once, and a restart with the same menus sends
    none of them again."""
    from bot.core.runtime import Runtime
    from storage import bot_state
    from tests.conftest import make_config

    tg.server.set_latency(0.1)
    config = make_config(tg, tmp_path / "bot.sqlite3")
    for run in (1, 2):
        since = len(tg.calls)
        async with Runtime(config, clock=clock, polling=True) as runtime:
            await tg.server.wait_for(lambda s=since: any(c.method == "getUpdates" for c in tg.calls[s:]), 5)
            if run == 1:
                for _ in range(100):  # until the menus are registered and remembered
                    if await bot_state.get(runtime.core.db, "command_menus"):
                        break
                    await asyncio.sleep(0.05)
        calls = tg.calls[since:]
        first_poll = next(i for i, c in enumerate(calls) if c.method == "getUpdates")
        before = [c.method for c in calls[:first_poll] if c.method != "setMyCommands"]
        assert before == ["getMe", "deleteWebhook"]
        menus = [c for c in calls if c.method == "setMyCommands"]
        # Polling never waits for the menus.
        assert all(calls[first_poll].time < c.time + c.duration for c in menus)
        if run == 1:
            assert len(menus) == 9
            # Sent together, not one after the other: nine sequential calls take at least 0.9 s; side by
            # side they take about one round trip (a loaded machine may delay a start a little).
            span = max(c.time + c.duration for c in menus) - min(c.time for c in menus)
            assert span < 9 * 0.1 * 0.6, span
        else:
            assert menus == []
