"""End to end: what moderators and couriers ran into in a first week with reports (issue 14)."""

from __future__ import annotations

import pytest

from tests.test_e2e_reports import World, _filed


@pytest.fixture
def config_overrides():
    return {"reports": {"daily_limit": 5}}


# -- a note prompt lives only as long as its decision ----------------------------------------------


async def test_a_later_button_retires_the_note_prompt_in_the_group(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    await (await w.mod.press("已解决", message=card)).wait()
    prompt = await w.mod.expect_message(contains="请回复这条消息")
    await (await w.mod.press("处理中", message=card)).wait()  # changed their mind
    await w.mod.expect_edit(contains="状态：处理中", message_id=card.message_id)
    await w.mod.reply_to(prompt, "已联系市政修补")
    answer = await w.mod.expect_message(contains="已不用回答")
    assert ref in answer.text and "没有改动" in answer.text
    report = await w.service.get_by_ref(ref)
    assert report.status == "in_progress"
    assert [e.action for e in await w.service.events(report.id)] == ["submit", "progress"]
    # The latest decision's prompt is live: a new 已解决 asks again, and its reply resolves.
    await (await w.mod.press("已解决", message=card)).wait()
    again = await w.mod.expect_message(contains="请回复这条消息")
    await w.mod.reply_to(again, "修好了")
    await w.mod.expect_message(contains="已标记为「已解决」")
    assert (await w.service.get(report.id)).status == "resolved"


async def test_a_later_button_retires_the_note_prompt_in_private(bot, tg):
    w = await World(bot, tg).setup()
    ref, _ = await _filed(w, w.courier)
    mod = tg.private(w.mod_user)
    await mod.send(f"/reports {ref}")
    card = await mod.expect_message(contains="状态：")
    await (await mod.press("驳回", message=card)).wait()
    await mod.expect_message(contains="请回复这条消息")
    await (await mod.press("受理", message=card)).wait()
    await mod.expect_edit(contains="状态：已受理", message_id=card.message_id)
    await mod.send("经核实不属实")  # plain text right after: not the rejection note any more
    await mod.expect_message(contains="已不用回答")
    report = await w.service.get_by_ref(ref)
    assert report.status == "acknowledged"
    assert [e.action for e in await w.service.events(report.id)] == ["submit", "ack"]
