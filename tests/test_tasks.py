"""Wish wall service: posting, atomic claims, waitlist, withdraw window, assignment, reminders,
confirmation, completion, cancellation and group cards."""

import asyncio
import datetime as dt

import pytest

from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.tasks import Outcome, TaskDraft, TaskInvalid, TaskService, reminder_key
from storage import outbox, users
from storage import points as ledger
from storage import tasks as store
from tests.dbs import make_database

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
CAPTAIN = 900


@pytest.fixture
async def core(tmp_path):
    db = await make_database(tmp_path / "t.sqlite3").open()
    await db.migrate()
    yield Core(config=parse_config({}, env={}), clock=FakeClock(NOW), db=db, catalog=Catalog.load())
    await db.close()


@pytest.fixture
def svc(core) -> TaskService:
    return core.service(TaskService)


def draft(**changes) -> TaskDraft:
    values = {
        "title": "助老送餐",
        "description": "给独居老人送午饭",
        "starts_at": NOW + dt.timedelta(days=2),
        "place_text": "蒋村街道文新社区",
        "area": "蒋村",
        "slots": 5,
        "points": 10,
        "private_details": "王奶奶 13800000000 文新路 8 号 3 单元",
    }
    values.update(changes)
    return TaskDraft(**values)


async def rows(core, prefix: str, state: str | None = None) -> list[outbox.OutboxRow]:
    found = await core.db.fetchall(
        "SELECT id FROM outbox WHERE dedup_key LIKE ? ORDER BY id", (prefix.replace("_", "\\_") + "%",)
    )
    got = [await outbox.get(core.db, r[0]) for r in found]
    return [r for r in got if r is not None and (state is None or r.state == state)]


async def add_user(core, user_id: int, lang: str = "zh") -> None:
    await users.touch(
        core.db,
        user_id=user_id,
        first_name=f"U{user_id}",
        last_name=None,
        username=None,
        language_code=lang,
        now=NOW,
        private_chat=True,
    )


# -- posting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"title": "  "}, "title_empty"),
        ({"starts_at": NOW - dt.timedelta(minutes=1)}, "start_past"),
        ({"starts_at": None}, "start_missing"),
        ({"slots": 0}, "slots_range"),
        ({"points": -1}, "points_range"),
        ({"claim_deadline": NOW + dt.timedelta(days=3)}, "deadline_after_start"),
        ({"claim_deadline": NOW - dt.timedelta(hours=1)}, "deadline_past"),
        ({"ends_at": NOW + dt.timedelta(days=1)}, "end_before_start"),
        ({"place_text": ""}, "place_missing"),
        ({"place_text": "", "lat": 30.27}, "location_invalid"),
    ],
)
def test_validation(svc, changes, code):
    with pytest.raises(TaskInvalid) as err:
        svc.validate(draft(**changes))
    assert err.value.code == code
    assert svc.core.catalog.has(f"tasks.invalid.{code}")


async def test_publish_preview_and_card(core, svc):
    d = draft()
    preview = svc.preview(d, "zh")
    assert "助老送餐" in preview and "王奶奶" in preview
    task = await svc.publish(d, CAPTAIN, group_chat_ids=[-1001, -1002, -1001])
    assert task.state == "open" and task.created_by == CAPTAIN
    posts = await rows(core, f"task:{task.id}:card:")
    assert [r.chat_id for r in posts] == [-1001, -1002]
    text = posts[0].payload["params"]["text"]
    assert "助老送餐" in text and "还差 5 人" in text
    assert "王奶奶" not in text and "13800000000" not in text
    assert (
        posts[0].payload["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        == f"tk:cl:{task.id}"
    )
    # Round trip through the conversation's JSON.
    assert TaskDraft.from_json(d.to_json()) == d


async def test_private_details_only_for_slot_holders(svc):
    task = await svc.publish(draft(slots=1), CAPTAIN)
    await svc.claim(task.id, 1)
    await svc.join_waitlist(task.id, 2)
    assert await svc.private_details(task.id, 1) is not None
    assert await svc.private_details(task.id, 2) is None
    assert await svc.private_details(task.id, 3) is None
    assert await svc.private_details(task.id, CAPTAIN) is not None


# -- claiming --------------------------------------------------------------------------------------


async def test_fifty_concurrent_claims_on_five_slots(core, svc):
    task = await svc.publish(draft(slots=5), CAPTAIN)
    results = await asyncio.gather(*(svc.claim(task.id, 1000 + i) for i in range(50)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.CLAIMED) == 5
    assert outcomes.count(Outcome.FULL) == 45
    held = await store.claims(core.db, task.id, ("claimed",))
    assert len(held) == 5
    count = await svc.get(task.id)
    assert count is not None and count.task.state == "full" and count.left == 0
    # The full task offers the waitlist; 45 join at once, in a strict order.
    waits = await asyncio.gather(*(svc.join_waitlist(task.id, 1000 + i) for i in range(50)))
    assert sum(r.outcome is Outcome.WAITLISTED for r in waits) == 45
    assert sum(r.outcome is Outcome.ALREADY_CLAIMED for r in waits) == 5
    places = sorted(r.place for r in waits if r.outcome is Outcome.WAITLISTED)
    assert places == list(range(1, 46))


async def test_no_double_claim(svc):
    task = await svc.publish(draft(slots=3), CAPTAIN)
    results = await asyncio.gather(*(svc.claim(task.id, 7) for _ in range(10)))
    assert [r.outcome for r in results].count(Outcome.CLAIMED) == 1
    assert {r.outcome for r in results} == {Outcome.CLAIMED, Outcome.ALREADY_CLAIMED}
    count = await svc.get(task.id)
    assert count is not None and count.taken == 1


async def test_claim_refused_after_deadline_and_when_cancelled(core, svc):
    task = await svc.publish(draft(claim_deadline=NOW + dt.timedelta(days=1)), CAPTAIN)
    core.clock.advance(days=1)
    assert (await svc.claim(task.id, 1)).outcome is Outcome.CLAIMS_OVER
    other = await svc.publish(draft(), CAPTAIN)
    await svc.cancel(other.id, CAPTAIN)
    assert (await svc.claim(other.id, 1)).outcome is Outcome.NOT_OPEN
    assert (await svc.claim(12345, 1)).outcome is Outcome.NOT_FOUND


async def test_waitlist_promotion_tells_the_promoted(core, svc):
    await add_user(core, 3, "en")
    task = await svc.publish(draft(slots=2), CAPTAIN)
    assert (await svc.claim(task.id, 1)).outcome is Outcome.CLAIMED
    assert (await svc.claim(task.id, 2)).outcome is Outcome.CLAIMED
    assert (await svc.claim(task.id, 3)).outcome is Outcome.FULL
    assert (await svc.join_waitlist(task.id, 3)).place == 1
    assert (await svc.join_waitlist(task.id, 4)).place == 2
    assert (await svc.join_waitlist(task.id, 4)).outcome is Outcome.ALREADY_WAITLISTED

    result = await svc.withdraw(task.id, 1)
    assert result.outcome is Outcome.OK and result.promoted == (3,)
    claim = await store.get_claim(core.db, task.id, 3)
    assert claim is not None and claim.state == "claimed"
    told = await rows(core, f"task:{task.id}:v")
    assert [(r.chat_id, r.dedup_key.split(":")[3]) for r in told] == [(3, "promoted")]
    assert "A place freed up" in told[0].payload["params"]["text"]
    # The promoted courier now has reminders; the one who left has none pending.
    assert len(await rows(core, f"task:{task.id}:rem:3:", "pending")) == 2
    assert await rows(core, f"task:{task.id}:rem:1:", "pending") == []
    # User 4 is first on the waitlist now.
    mine = await svc.my_tasks(4)
    assert [(m.claim.state, m.place) for m in mine] == [("waitlisted", 1)]


async def test_withdraw_deadline(core, svc):
    task = await svc.publish(draft(starts_at=NOW + dt.timedelta(hours=5)), CAPTAIN)
    await svc.claim(task.id, 1)
    await svc.claim(task.id, 2)
    core.clock.advance(hours=2, minutes=59)  # 2 h 1 min before the start: still allowed (withdraw_hours=2)
    assert (await svc.withdraw(task.id, 1)).outcome is Outcome.OK
    core.clock.advance(minutes=2)  # 1 h 59 min before
    assert (await svc.withdraw(task.id, 2)).outcome is Outcome.TOO_LATE
    assert (await svc.withdraw(task.id, 99)).outcome is Outcome.NOT_CLAIMED


async def test_reclaim_after_withdraw_revives_reminders(core, svc):
    task = await svc.publish(draft(), CAPTAIN)
    await svc.claim(task.id, 1)
    await svc.withdraw(task.id, 1)
    assert len(await rows(core, f"task:{task.id}:rem:1:", "cancelled")) == 2
    assert (await svc.claim(task.id, 1)).outcome is Outcome.CLAIMED
    assert len(await rows(core, f"task:{task.id}:rem:1:", "pending")) == 2


async def test_assignment_accept_and_decline(core, svc):
    await add_user(core, CAPTAIN)
    task = await svc.publish(draft(slots=1), CAPTAIN)
    assert (await svc.assign(task.id, 1, CAPTAIN)).outcome is Outcome.OK
    assert (await svc.assign(task.id, 2, CAPTAIN)).outcome is Outcome.OK
    assert (await svc.assign(task.id, 1, CAPTAIN)).outcome is Outcome.ASSIGNED
    # A pending assignment holds no slot and is not a claim.
    assert (await svc.claim(task.id, 1)).outcome is Outcome.ASSIGNED
    invitation = (await rows(core, f"task:{task.id}:v1:assigned:1"))[0]
    buttons = invitation.payload["params"]["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [f"tk:as:{task.id}:y", f"tk:as:{task.id}:n"]

    assert (await svc.accept(task.id, 1)).outcome is Outcome.CLAIMED
    assert (await svc.accept(task.id, 2)).outcome is Outcome.FULL  # the only slot is gone
    assert (await svc.decline(task.id, 2)).outcome is Outcome.OK
    assert (await svc.accept(task.id, 2)).outcome is Outcome.NOT_CLAIMED
    to_captain = [
        r.dedup_key.split(":")[3] for r in await rows(core, f"task:{task.id}:v") if r.chat_id == CAPTAIN
    ]
    assert to_captain == ["accepted", "declined"]
    claim = await store.get_claim(core.db, task.id, 1)
    assert claim is not None and claim.state == "claimed" and claim.assigned_by == CAPTAIN


# -- reminders and confirmation --------------------------------------------------------------------


async def test_reminders_planned_once(core, svc):
    task = await svc.publish(draft(), CAPTAIN)
    for user in (1, 2):
        await svc.claim(task.id, user)
    assert await svc.plan_reminders(task.id) == 2
    assert await svc.plan_reminders(task.id) == 2
    reminders = await rows(core, f"task:{task.id}:rem:")
    assert sorted(r.dedup_key for r in reminders) == sorted(
        reminder_key(task.id, u, o) for u in (1, 2) for o in (1440, 60)
    )
    by_key = {r.dedup_key: r for r in reminders}
    day_before = by_key[reminder_key(task.id, 1, 1440)]
    assert day_before.due_at == task.starts_at - dt.timedelta(days=1)
    assert day_before.expires_at == task.starts_at
    assert "王奶奶" in day_before.payload["params"]["text"]  # claimers see the private details
    markup = day_before.payload["params"]["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in markup] == [f"tk:cf:{task.id}:y", f"tk:cf:{task.id}:n"]
    assert "reply_markup" not in by_key[reminder_key(task.id, 1, 60)].payload["params"]


async def test_reminders_already_past_are_not_planned_but_the_question_is_asked_at_once(core, svc):
    """Claimed 3 h before the start: no "in 24 hours" reminder, but 我会到 / 去不了 is asked now
    (telling the real lead time), so the captain's unconfirmed list can empty; the 1 h one follows."""
    task = await svc.publish(draft(starts_at=NOW + dt.timedelta(hours=3, minutes=20)), CAPTAIN)
    await svc.claim(task.id, 1)
    found = await rows(core, f"task:{task.id}:rem:")
    assert [r.dedup_key for r in found] == [reminder_key(task.id, 1, 1440), reminder_key(task.id, 1, 60)]
    ask, hour = found
    assert ask.due_at == NOW and "3 小时" in ask.payload["params"]["text"]
    buttons = ask.payload["params"]["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [f"tk:cf:{task.id}:y", f"tk:cf:{task.id}:n"]
    assert hour.due_at == task.starts_at - dt.timedelta(hours=1)
    await svc.confirm(task.id, 1, True)
    assert await svc.unconfirmed(task.id) == []


async def test_confirm_offset_zero_asks_nobody(core):
    """`confirm_offset_minutes = 0`: the reminders still go out, none carries 我会到 / 去不了 (not even
    the one asked at once after a late claim), and nobody is listed as not confirmed."""
    quiet = Core(
        config=core.config.with_overrides(tasks={"confirm_offset_minutes": 0}),
        clock=core.clock,
        db=core.db,
        catalog=core.catalog,
    ).service(TaskService)
    early = await quiet.publish(draft(), CAPTAIN)
    late = await quiet.publish(draft(starts_at=NOW + dt.timedelta(hours=3, minutes=20)), CAPTAIN)
    for task in (early, late):
        await quiet.claim(task.id, 1)
    planned = await rows(core, "task:")
    reminders = [r for r in planned if ":rem:" in r.dedup_key]
    assert sorted(r.dedup_key for r in reminders) == sorted(
        [reminder_key(early.id, 1, 1440), reminder_key(early.id, 1, 60), reminder_key(late.id, 1, 60)]
    )
    for reminder in reminders:
        assert "reply_markup" not in reminder.payload["params"]  # no pin either: no buttons at all
        assert "到时能来吗" not in reminder.payload["params"]["text"]
    assert await quiet.unconfirmed(early.id) == [] and await quiet.unconfirmed(late.id) == []


async def test_task_with_a_pin_carries_a_map_link(core, svc):
    task = await svc.publish(draft(lat=30.2741, lon=120.1551, place_text=""), CAPTAIN)
    count = await svc.get(task.id)
    assert count is not None
    (_claim_row, map_row) = svc.card_buttons(count, "zh")
    assert map_row[0][1].startswith("https://uri.amap.com/marker?position=120.15")
    await svc.claim(task.id, 1)
    reminder = (await rows(core, f"task:{task.id}:rem:1:1440"))[0]
    links = [
        b for row in reminder.payload["params"]["reply_markup"]["inline_keyboard"] for b in row if "url" in b
    ]
    assert len(links) == 1 and "uri.amap.com" in links[0]["url"]


async def test_reminder_prefix_does_not_touch_other_users(core, svc):
    task = await svc.publish(draft(), CAPTAIN)
    await svc.claim(task.id, 1)
    await svc.claim(task.id, 12)
    await svc.withdraw(task.id, 1)
    assert len(await rows(core, f"task:{task.id}:rem:12:", "pending")) == 2


async def test_confirm_and_cant_go(core, svc):
    await add_user(core, 2, "zh")
    task = await svc.publish(draft(slots=2), CAPTAIN)
    for user in (1, 2):
        await svc.claim(task.id, user)
    await svc.join_waitlist(task.id, 3)
    core.clock.set(task.starts_at - dt.timedelta(days=1))
    assert (await svc.confirm(task.id, 1, True)).outcome is Outcome.OK
    assert [e.claim.user_id for e in await svc.unconfirmed(task.id)] == [2]

    core.clock.advance(hours=23)  # past the withdraw window: 去不了 still frees the slot
    assert (await svc.withdraw(task.id, 2)).outcome is Outcome.TOO_LATE
    result = await svc.confirm(task.id, 2, False)
    assert result.outcome is Outcome.OK and result.promoted == (3,)
    to_captain = [r for r in await rows(core, f"task:{task.id}:v") if r.chat_id == CAPTAIN]
    assert len(to_captain) == 1 and "U2" in to_captain[0].payload["params"]["text"]
    assert await rows(core, f"task:{task.id}:rem:2:", "pending") == []
    assert [e.claim.user_id for e in await svc.unconfirmed(task.id)] == [3]
    assert (await svc.confirm(task.id, 2, True)).outcome is Outcome.NOT_CLAIMED


# -- completing and cancelling ---------------------------------------------------------------------


async def test_mark_done_credits_once_and_completes(core, svc):
    task = await svc.publish(draft(slots=3, points=10), CAPTAIN)
    for user in (1, 2, 3):
        await svc.claim(task.id, user)
    assert (await svc.mark(task.id, 1, True, CAPTAIN)).outcome is Outcome.NOT_STARTED
    core.clock.set(task.starts_at + dt.timedelta(hours=1))
    assert (await svc.mark(task.id, 1, True, CAPTAIN)).outcome is Outcome.OK
    assert (await svc.mark(task.id, 1, True, CAPTAIN)).outcome is Outcome.ALREADY_MARKED
    assert (await svc.mark(task.id, 2, False, CAPTAIN)).outcome is Outcome.OK
    assert (await svc.mark(task.id, 9, True, CAPTAIN)).outcome is Outcome.NOT_CLAIMED
    assert await ledger.balance(core.db, 1) == 10
    assert await ledger.balance(core.db, 2) == 0
    assert (await svc.get(task.id)).task.state == "full"  # type: ignore[union-attr]
    result = await svc.mark(task.id, 3, True, CAPTAIN)
    assert result.task is not None and result.task.state == "completed"
    entries = await ledger.history(core.db, 1)
    assert [(e.delta, e.reason, e.ref, e.area, e.actor_id) for e in entries] == [
        (10, "task_done", f"task:{task.id}", "蒋村", CAPTAIN)
    ]


async def test_a_captain_marking_themselves_done_earns_nothing(core, svc):
    """Self-dealing: points need someone else's decision. The captain's own claim is recorded as done
    (the task can finish) but credits nothing; a claimer marked by the captain is credited, with the
    captain on the ledger as the one who decided."""
    task = await svc.publish(draft(slots=2, points=10), CAPTAIN)
    await svc.claim(task.id, CAPTAIN)
    await svc.claim(task.id, 1)
    core.clock.set(task.starts_at + dt.timedelta(hours=1))
    own = await svc.mark(task.id, CAPTAIN, True, CAPTAIN)
    assert own.outcome is Outcome.SELF_DONE and own.claim is not None and own.claim.state == "done"
    assert await ledger.balance(core.db, CAPTAIN) == 0
    assert not [r for r in await rows(core, f"task:{task.id}:v") if r.chat_id == CAPTAIN]  # no "获得 10 分"
    assert "/adjust" in core.t("zh", "tasks.outcome.self_done", points=10)
    assert (await svc.mark(task.id, 1, True, CAPTAIN)).outcome is Outcome.OK
    assert [(e.delta, e.actor_id) for e in await ledger.history(core.db, 1)] == [(10, CAPTAIN)]
    assert (await svc.get(task.id)).task.state == "completed"  # type: ignore[union-attr]
    # Marking oneself a no-show is simply recorded; a task without points has nothing to refuse.
    core.clock.set(NOW)
    free = await svc.publish(draft(points=0), CAPTAIN)
    await svc.claim(free.id, CAPTAIN)
    core.clock.set(free.starts_at + dt.timedelta(hours=1))
    assert (await svc.mark(free.id, CAPTAIN, True, CAPTAIN)).outcome is Outcome.OK


async def test_cancel_tells_everyone_and_drops_reminders(core, svc):
    task = await svc.publish(draft(slots=1), CAPTAIN)
    await svc.claim(task.id, 1)
    await svc.join_waitlist(task.id, 2)
    await svc.assign(task.id, 3, CAPTAIN)
    assert (await svc.cancel(task.id, CAPTAIN)).outcome is Outcome.OK
    assert (await svc.cancel(task.id, CAPTAIN)).outcome is Outcome.NOT_OPEN
    told = {r.chat_id for r in await rows(core, f"task:{task.id}:v") if ":cancelled:" in r.dedup_key}
    assert told == {1, 2, 3}
    assert await rows(core, f"task:{task.id}:rem:", "pending") == []
    assert await svc.my_tasks(1) == []


# -- group cards -----------------------------------------------------------------------------------


async def test_group_card_edited_as_slots_fill(core, svc):
    task = await svc.publish(draft(slots=2), CAPTAIN, group_chat_ids=[-1001])
    post = (await rows(core, f"task:{task.id}:card:-1001:post"))[0]
    await svc.on_card_done(post, "failed", None)
    assert await store.cards(core.db, task.id) == []
    await svc.on_card_done(post, "sent", {"message_id": 555, "chat": {"id": -1001}})
    assert await store.cards(core.db, task.id) == [store.Card(task.id, -1001, 555)]
    assert await rows(core, f"task:{task.id}:card:-1001:555:v") == []  # nothing changed since posting
    # When claims close (here: the start), the card loses its buttons.
    closing = await rows(core, f"task:{task.id}:card:-1001:555:w", "pending")
    assert [r.due_at for r in closing] == [task.starts_at]
    assert "已停止认领（0/2 人）" in closing[0].payload["params"]["text"]
    assert "reply_markup" not in closing[0].payload["params"]

    await svc.claim(task.id, 1)
    edits = await rows(core, f"task:{task.id}:card:-1001:555:v", "pending")
    assert len(edits) == 1
    params = edits[0].payload["params"]
    assert edits[0].payload["method"] == "editMessageText" and params["message_id"] == 555
    assert "还差 1 人" in params["text"]

    await svc.claim(task.id, 2)  # now full: the older pending edit is superseded
    pending = await rows(core, f"task:{task.id}:card:-1001:555:v", "pending")
    assert len(pending) == 1
    assert "可以候补" in pending[0].payload["params"]["text"]
    assert (
        pending[0].payload["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        == f"tk:wl:{task.id}"
    )

    await svc.join_waitlist(task.id, 3)  # the card reads the same: no edit
    assert (await rows(core, f"task:{task.id}:card:-1001:555:v", "pending"))[0].id == pending[0].id

    closing = await rows(core, f"task:{task.id}:card:-1001:555:w", "pending")
    assert len(closing) == 1 and "（2/2 人）" in closing[0].payload["params"]["text"]

    await svc.cancel(task.id, CAPTAIN)
    last = (await rows(core, f"task:{task.id}:card:-1001:555:v", "pending"))[-1]
    assert "已取消" in last.payload["params"]["text"] and "reply_markup" not in last.payload["params"]
    assert await rows(core, f"task:{task.id}:card:-1001:555:w", "pending") == []  # would undo "cancelled"


async def test_card_posted_after_changes_is_refreshed(core, svc):
    task = await svc.publish(draft(slots=2), CAPTAIN, group_chat_ids=[-1001])
    await svc.claim(task.id, 1)
    await svc.record_card(task.id, -1001, 77)
    await svc.record_card(task.id, -1001, 77)
    edits = await rows(core, f"task:{task.id}:card:-1001:77:v")
    assert len(edits) == 1 and "还差 1 人" in edits[0].payload["params"]["text"]


# -- listing ---------------------------------------------------------------------------------------


async def test_wall_soonest_or_nearest(core, svc):
    far_soon = await svc.publish(
        draft(title="far soon", starts_at=NOW + dt.timedelta(hours=5), lat=30.30, lon=120.20), CAPTAIN
    )
    near_late = await svc.publish(
        draft(title="near late", starts_at=NOW + dt.timedelta(days=3), lat=30.2741, lon=120.1551), CAPTAIN
    )
    no_pin = await svc.publish(draft(title="no pin", starts_at=NOW + dt.timedelta(hours=1)), CAPTAIN)
    started = await svc.publish(draft(title="started", starts_at=NOW + dt.timedelta(minutes=1)), CAPTAIN)
    core.clock.advance(minutes=2)

    page = await svc.wall()
    assert [i.count.task.id for i in page.items] == [no_pin.id, far_soon.id, near_late.id]
    assert started.id not in [i.count.task.id for i in page.items] and not page.by_distance

    here = (30.2740, 120.1550)
    page = await svc.wall(location=here, located_at=core.clock.now() - dt.timedelta(minutes=30))
    assert page.by_distance
    assert [i.count.task.id for i in page.items] == [near_late.id, far_soon.id, no_pin.id]
    assert page.items[0].distance_m is not None and page.items[0].distance_m < 50

    stale = await svc.wall(location=here, located_at=core.clock.now() - dt.timedelta(minutes=61))
    assert not stale.by_distance


async def test_wall_pages(core, svc):
    for i in range(7):
        await svc.publish(draft(title=f"t{i}", starts_at=NOW + dt.timedelta(hours=10 + i)), CAPTAIN)
    first, second = await svc.wall(0), await svc.wall(1)
    assert (first.pages, first.total, len(first.items), len(second.items)) == (2, 7, 5, 2)
    assert [i.count.task.title for i in second.items] == ["t5", "t6"]
    assert (await svc.wall(9)).page == 1


async def test_my_tasks_and_managed(core, svc):
    a = await svc.publish(draft(title="a", starts_at=NOW + dt.timedelta(days=2)), CAPTAIN)
    b = await svc.publish(draft(title="b", starts_at=NOW + dt.timedelta(days=1)), CAPTAIN)
    await svc.claim(a.id, 1)
    await svc.claim(b.id, 1)
    await svc.withdraw(a.id, 1)
    assert [(m.count.task.title, m.claim.state) for m in await svc.my_tasks(1)] == [("b", "claimed")]
    assert [c.task.title for c in await svc.managed(CAPTAIN)] == ["b", "a"]  # soonest first
    roster = await svc.roster(b.id)
    assert [(e.claim.user_id, e.name) for e in roster] == [(1, "1")]


async def test_replanning_after_a_restart_adds_nothing(core, svc, tmp_path):
    task = await svc.publish(draft(), CAPTAIN)
    await svc.claim(task.id, 1)
    await core.db.close()
    db = await make_database(tmp_path / "t.sqlite3").open()
    await db.migrate()
    again = Core(config=core.config, clock=core.clock, db=db, catalog=core.catalog).service(TaskService)
    assert await again.plan_reminders(task.id) == 1
    assert len(await rows(again.core, f"task:{task.id}:rem:")) == 2
    await db.close()


def test_time_shows_the_year_only_outside_the_current_one(svc):
    assert svc.format_time(dt.datetime(2026, 12, 1, 6, 30, tzinfo=dt.UTC), "zh") == "12月1日（周二）14:30"
    assert svc.format_time(dt.datetime(2027, 1, 5, 6, 30, tzinfo=dt.UTC), "zh") == "2027年1月5日（周二）14:30"
    assert "2027" in svc.format_time(dt.datetime(2027, 1, 5, 6, 30, tzinfo=dt.UTC), "en")
    # The year is the local one: 31 Dec 2026 17:00 UTC is already 2027 in Shanghai.
    assert "2027年" in svc.format_time(dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC), "zh")


def test_problem_checks_one_step_with_the_same_rules(svc):
    half_typed = TaskDraft(title="长" * 300)
    assert svc.problem(half_typed, {"title_empty", "title_too_long"}).code == "title_too_long"
    assert svc.problem(TaskDraft(title="助老送餐"), {"title_empty", "title_too_long"}) is None
    assert svc.problem(TaskDraft(slots=100000), {"slots_range"}).values == {"max": 500}
    assert svc.problem(draft()) is None
