"""End to end with `[tasks] confirm_offset_minutes = 0`: the bot starts, no reminder asks 我会到 /
去不了, and the captain's roster marks nobody as not having answered."""

import datetime as dt

import pytest

from bot.tasks import TaskDraft, TaskService

CAPTAIN = 2101


@pytest.fixture
def config_overrides():
    return {"tasks": {"confirm_offset_minutes": 0}}


async def test_no_question_and_no_unanswered_marks(bot, tg):
    await bot.grant(CAPTAIN, "captain")
    captain = tg.private(tg.user(CAPTAIN, "李队长", started=True))
    await captain.send("/start")
    await captain.expect_message(contains="你好")
    courier = tg.private(tg.user(3201, "小王", started=True))
    await courier.send("/start")
    await courier.expect_message(contains="你好")
    svc = bot.core.service(TaskService)
    draft = TaskDraft(
        title="助老送餐", starts_at=bot.clock.now() + dt.timedelta(days=2), place_text="文新社区", slots=2
    )
    task = await svc.publish(draft, CAPTAIN)
    await svc.claim(task.id, 3201)
    await bot.advance(hours=24)
    reminder = await courier.expect_message(contains="24 小时后开始")
    assert reminder.labels == [] and "到时能来吗" not in reminder.text

    await captain.send("/tasks")
    await captain.expect_message(contains="我发布的心愿")
    await (await captain.press(f"管理 #{task.id}")).wait()
    roster = await captain.expect_message(contains="名单")
    assert "小王" in roster.text and "还没回复" not in roster.text and "⏳" not in roster.text
