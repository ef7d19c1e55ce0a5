"""ReportService: filing, lifecycle, notifications, anonymity, duplicates, escalation, points, export."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io

import pytest

from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog, placeholders
from bot.kit.geo import haversine_m
from bot.reports import categories as rc
from bot.reports.service import CARD_KIND, ReportDraft, ReportRefused, ReportService
from storage import groups, outbox, points, users
from storage import reports as repo
from storage.db import Database

MOD_CHAT = -1001
AREA_CHAT = -1002
COURIER = 731101  # Chinese
EN_COURIER = 731102  # English
OTHER = 731103
MOD_A = 21
MOD_B = 22
# West Lake area, Hangzhou (WGS-84)
LAT, LON = 30.2590, 120.1300


@pytest.fixture
async def db(tmp_path):
    database = await Database(tmp_path / "t.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def clock():
    return FakeClock(dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC))  # 10:00 in Hangzhou


@pytest.fixture
async def core(db, clock):
    config = parse_config(
        {"bot": {"moderator_chat_id": MOD_CHAT, "area_moderator_chats": {"蒋村": AREA_CHAT}}}, env={}
    )
    core = Core(config=config, clock=clock, db=db, catalog=Catalog.load())
    people = [
        (COURIER, "小王", "wangxg", "zh-hans"),
        (EN_COURIER, "Li", "li_rider", "en"),
        (OTHER, "老张", "zhang", "zh"),
        (MOD_A, "社工", "mod_a", "zh"),
        (MOD_B, "Mod", "mod_b", "en"),
    ]
    for user_id, name, username, code in people:
        await users.touch(
            db,
            user_id=user_id,
            first_name=name,
            last_name=None,
            username=username,
            language_code=code,
            now=clock.now(),
            private_chat=True,
        )
    return core


@pytest.fixture
def svc(core):
    return core.service(ReportService)


def hazard(**kw) -> ReportDraft:
    values = {
        "kind": "hazard",
        "category": "road_damage",
        "description": "文三路大坑",
        "lat": LAT,
        "lon": LON,
    }
    values.update(kw)
    return ReportDraft(**values)


def grievance(**kw) -> ReportDraft:
    values = {
        "kind": "grievance",
        "category": "access",
        "description": "保安不让电动车进小区",
        "compound": "西溪花园",
        "property_company": "绿城物业",
    }
    values.update(kw)
    return ReportDraft(**values)


async def rows(db, prefix: str = "rp:") -> list[outbox.OutboxRow]:
    found = await db.fetchall("SELECT id FROM outbox WHERE dedup_key LIKE ? ORDER BY id", (prefix + "%",))
    return [await outbox.get(db, r[0]) for r in found]


async def notices_to(db, user_id: int) -> list[outbox.OutboxRow]:
    return [r for r in await rows(db) if r.chat_id == user_id and r.kind == "report_notice"]


# -- vocabulary and texts -------------------------------------------------------------------------


def test_vocabulary_and_catalog_complete():
    catalog = Catalog.load()
    assert [c.code for c in rc.categories("grievance")] == [
        "access",
        "parking",
        "wages",
        "platform",
        "accident_insurance",
        "fine",
        "harassment",
        "other",
    ]
    assert len(rc.categories("hazard")) == 9
    zh, en = catalog.texts["zh"], catalog.texts["en"]
    report_keys = {k for k in zh if k.startswith("reports.")}
    assert report_keys == {k for k in en if k.startswith("reports.")}
    for key in report_keys:
        assert placeholders(zh[key]) == placeholders(en[key]), key
    for kind in rc.KINDS:
        assert catalog.has(f"reports.kind.{kind}")
        for item in rc.categories(kind):
            assert catalog.has(item.key), item.key
    assert rc.category_label(catalog, "en", "hazard", "manhole") == "🕳️ Open or blocked manhole"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("H-0042", ("hazard", 42)),
        ("h42", ("hazard", 42)),
        ("G－0017", ("grievance", 17)),
        (" #H 7 ", ("hazard", 7)),
        ("H-0", None),
        ("X-1", None),
        ("", None),
    ],
)
def test_parse_ref(text, expected):
    assert rc.parse_ref(text) == expected


def test_haversine():
    # One degree of latitude is about 111.2 km.
    assert abs(haversine_m(30.0, 120.0, 31.0, 120.0) - 111_195) < 100
    assert haversine_m(LAT, LON, LAT, LON) == 0


# -- filing ---------------------------------------------------------------------------------------


async def test_refs_per_kind(svc):
    h1 = await svc.submit(COURIER, hazard())
    g1 = await svc.submit(COURIER, grievance())
    h2 = await svc.submit(COURIER, hazard(category="flooding"))
    assert (h1.ref, g1.ref, h2.ref) == ("H-0001", "G-0001", "H-0002")
    assert (await svc.get_by_ref("h2")).id == h2.id


async def test_submit_stores_photos_event_and_card(svc, db):
    report = await svc.submit(COURIER, hazard(photos=["p1", "p2"], place_text="文三路口"))
    assert await svc.photos(report.id) == ["p1", "p2"]
    events = await svc.events(report.id)
    assert [(e.action, e.from_status, e.to_status, e.actor_id) for e in events] == [
        ("submit", None, "new", COURIER)
    ]
    sent = await rows(db)
    assert [r.payload["method"] for r in sent] == ["sendPhoto", "sendPhoto", "sendLocation", "sendMessage"]
    assert sent[1].payload["params"]["caption"] == "H-0001 (2/2)"
    assert all(r.chat_id == MOD_CHAT for r in sent)
    card = sent[-1]
    assert card.kind == CARD_KIND and card.dedup_key == f"rp:{report.id}:card"
    text = card.payload["params"]["text"]
    assert "H-0001" in text and "文三路大坑" in text and "小王 (@wangxg)" in text
    buttons = [b for row in card.payload["params"]["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["受理", "处理中", "已解决", "驳回", "标记重复"]
    assert buttons[0]["callback_data"] == f"rp:st:{report.id}:ack"
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)


async def test_submit_is_one_transaction(svc, db, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(repo, "add_photos", broken)
    with pytest.raises(RuntimeError):
        await svc.submit(COURIER, hazard(photos=["p1"]))
    assert await db.fetchval("SELECT COUNT(*) FROM reports") == 0
    assert await db.fetchval("SELECT COUNT(*) FROM outbox") == 0
    monkeypatch.undo()
    assert (await svc.submit(COURIER, hazard(photos=["p1"]))).ref == "H-0001"


async def test_routing_by_area(svc, db):
    await groups.upsert(
        db, chat_id=-500, title="蒋村小哥群", type="supergroup", active=True, bot_status="member", can_pin=False,
        now=svc.core.clock.now(),
    )  # fmt: skip
    await groups.set_area(db, -500, "蒋村", svc.core.clock.now())
    report = await svc.submit(COURIER, grievance(origin_chat_id=-500))
    assert report.area == "蒋村"
    assert (await outbox.get_by_key(db, f"rp:{report.id}:card")).chat_id == AREA_CHAT
    assert svc.moderator_chat("elsewhere") == MOD_CHAT


async def test_daily_limit_and_refusals(svc, core, clock):
    limited = core.config.with_overrides(reports={"daily_limit": 2})
    core.config = limited
    await svc.submit(COURIER, hazard())
    await svc.submit(COURIER, hazard(category="flooding"))
    assert await svc.remaining_today(COURIER) == 0
    with pytest.raises(ReportRefused) as err:
        await svc.submit(COURIER, hazard(category="manhole"))
    assert err.value.refusal.code == "daily_limit"
    assert "2" in err.value.refusal.text(core, "zh")
    assert await svc.remaining_today(OTHER) == 2
    # The day ends at local midnight (16:00 UTC).
    clock.set(dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC))
    assert await svc.remaining_today(COURIER) == 2

    long = "很" * (core.config.reports.description_limit + 1)
    refusal = svc.check_description(long)
    assert refusal.code == "too_long" and refusal.values["length"] == len(long)
    with pytest.raises(ReportRefused, match="too_long"):
        await svc.submit(COURIER, hazard(description=long))
    # Beijing is outside the Zhejiang default bounds.
    assert svc.check_location(39.9, 116.4).code == "outside_area"
    assert svc.check_location(LAT, LON) is None
    with pytest.raises(ReportRefused, match="outside_area"):
        await svc.submit(COURIER, hazard(lat=39.9, lon=116.4))
    with pytest.raises(ReportRefused, match="needs_location"):
        await svc.submit(COURIER, hazard(lat=None, lon=None))
    with pytest.raises(ReportRefused, match="empty_description"):
        await svc.submit(COURIER, grievance(description=""))
    with pytest.raises(ReportRefused, match="too_many_photos"):
        await svc.submit(COURIER, hazard(photos=["a", "b", "c", "d"]))
    with pytest.raises(ReportRefused, match="bad_category"):
        await svc.submit(COURIER, hazard(category="wages"))
    assert svc.can_add_photo(hazard(photos=["a", "b", "c"])).code == "too_many_photos"
    # Quick path: photo + location, no text, is a valid hazard; a voice note replaces text.
    assert svc.problems(hazard(description="", photos=["p"])) == []
    assert svc.problems(grievance(description="", voice_file_id="v")) == []
    assert svc.problems(hazard(lat=None, lon=None, place_text="文三路口")) == []


def test_draft_round_trip():
    draft = hazard(photos=["p1"], anonymous=True)
    data = draft.to_dict()
    assert ReportDraft.from_dict({**data, "unknown": 1}) == draft
    assert ReportDraft.from_dict(None) == ReportDraft()


# -- lifecycle ------------------------------------------------------------------------------------


async def test_transitions_events_and_notices_in_reporter_language(svc, db, clock):
    report = await svc.submit(EN_COURIER, hazard())
    await svc.add_supporter(report.id, COURIER)
    clock.advance(minutes=5)
    ack = await svc.transition(report.id, "ack", MOD_A)
    assert ack.changed and ack.report.status == "acknowledged" and ack.report.acknowledged_at == clock.now()
    to_reporter = await notices_to(db, EN_COURIER)
    assert len(to_reporter) == 1
    assert to_reporter[0].dedup_key == f"rp:{report.id}:ev:{ack.event_id}:{EN_COURIER}"
    assert to_reporter[0].priority == 0
    text = to_reporter[0].payload["params"]["text"]
    assert "H-0001" in text and "acknowledged" in text and "5 volunteer points" in text
    to_supporter = await notices_to(db, COURIER)
    assert "已受理" in to_supporter[0].payload["params"]["text"]
    assert "你关注的问题" in to_supporter[0].payload["params"]["text"]

    assert (await svc.transition(report.id, "resolve", MOD_A)).refusal.code == "note_required"
    done = await svc.transition(report.id, "resolve", MOD_A, note="已修补")
    assert done.changed and done.report.resolved_at == clock.now()
    last = (await notices_to(db, EN_COURIER))[-1].payload["params"]
    assert "resolved" in last["text"] and "已修补" in last["text"] and "Is it really solved?" in last["text"]
    fb = [b["callback_data"] for b in last["reply_markup"]["inline_keyboard"][0]]
    assert fb == [f"rp:fb:{report.id}:y", f"rp:fb:{report.id}:n"]
    # Supporters get the news without the feedback buttons.
    assert "reply_markup" not in (await notices_to(db, COURIER))[-1].payload["params"]

    events = await svc.events(report.id)
    assert [(e.action, e.from_status, e.to_status) for e in events] == [
        ("submit", None, "new"),
        ("support", "new", "new"),
        ("ack", "new", "acknowledged"),
        ("resolve", "acknowledged", "resolved"),
    ]
    assert events[-1].note == "已修补" and events[-1].actor_id == MOD_A

    again = await svc.transition(report.id, "resolve", MOD_B, note="x")
    assert not again.changed and again.refusal.code == "already"
    assert "Resolved" in again.refusal.text(svc.core, "en")
    assert (await svc.transition(report.id, "ack", MOD_B)).refusal.code == "not_allowed"
    assert (await svc.transition(report.id, "bogus", MOD_B)).refusal.code == "stale"
    assert (await svc.transition(999, "ack", MOD_B)).refusal.code == "not_found"


async def test_concurrent_presses_one_wins(svc, db):
    report = await svc.submit(COURIER, hazard())
    first, second = await asyncio.gather(
        svc.transition(report.id, "ack", MOD_A), svc.transition(report.id, "ack", MOD_B)
    )
    assert sorted([first.changed, second.changed]) == [False, True]
    loser = second if first.changed else first
    assert loser.report.status == "acknowledged" and loser.refusal.code == "already"
    assert len([e for e in await svc.events(report.id) if e.action == "ack"]) == 1
    assert len(await notices_to(db, COURIER)) == 1
    # Different buttons at once: still exactly one change.
    other = await svc.submit(COURIER, hazard(category="flooding"))
    results = await asyncio.gather(
        svc.transition(other.id, "resolve", MOD_A, note="ok"),
        svc.transition(other.id, "reject", MOD_B, note="no"),
        svc.transition(other.id, "progress", MOD_B),
    )
    assert sum(r.changed for r in results) == 1
    final = await svc.get(other.id)
    assert all(r.report.status == final.status for r in results)


async def test_points_credited_once(svc, db, clock):
    report = await svc.submit(COURIER, hazard())
    await svc.transition(report.id, "ack", MOD_A)
    await svc.transition(report.id, "resolve", MOD_A, note="修好了")
    await svc.feedback(report.id, COURIER, solved=False)
    await svc.transition(report.id, "resolve", MOD_A, note="再次修好")
    assert await points.balance(db, COURIER) == 5
    entry = (await points.history(db, COURIER))[0]
    assert entry.reason == "report_valid" and entry.ref == "report:H-0001"
    # Grievances and rejected hazards earn nothing.
    g = await svc.submit(OTHER, grievance())
    await svc.transition(g.id, "resolve", MOD_A, note="已协调")
    h = await svc.submit(OTHER, hazard(category="flooding"))
    await svc.transition(h.id, "reject", MOD_A, note="不属实")
    assert await points.balance(db, OTHER) == 0


async def test_duplicate_marks_and_follows_original(svc, db):
    original = await svc.submit(COURIER, hazard())
    copy = await svc.submit(OTHER, hazard(category="flooding"))
    assert (await svc.transition(copy.id, "duplicate", MOD_A)).refusal.code == "duplicate_needs_ref"
    assert (await svc.transition(copy.id, "duplicate", MOD_A, duplicate_ref="H-0099")).refusal.code == (
        "duplicate_unknown"
    )
    assert (
        await svc.transition(copy.id, "duplicate", MOD_A, duplicate_ref="h2")
    ).refusal.code == "duplicate_self"
    result = await svc.transition(copy.id, "duplicate", MOD_A, duplicate_ref="H-1")
    assert (
        result.changed and result.report.status == "duplicate" and result.report.duplicate_of == original.id
    )
    assert (await svc.events(copy.id))[-1].note == "H-0001"
    assert await repo.supporters(db, original.id) == [OTHER]
    notice = (await notices_to(db, OTHER))[-1].payload["params"]["text"]
    assert "H-0002" in notice and "H-0001" in notice
    # Pointing at a duplicate follows it to the original.
    third = await svc.submit(OTHER, hazard(category="manhole"))
    await svc.transition(third.id, "duplicate", MOD_A, duplicate_ref="H-0002")
    assert (await svc.get(third.id)).duplicate_of == original.id


async def test_duplicate_moves_its_supporters_to_the_original(svc, db):
    """Every "+1" of the duplicate is told it follows the original: it must really be subscribed."""
    original = await svc.submit(COURIER, hazard())
    copy = await svc.submit(OTHER, hazard(category="flooding"))
    assert (await svc.add_supporter(copy.id, EN_COURIER)).changed
    assert (await svc.add_supporter(copy.id, COURIER)).changed  # the original's own reporter
    result = await svc.transition(copy.id, "duplicate", MOD_A, duplicate_ref=original.ref)
    assert result.changed
    assert sorted(await repo.supporters(db, original.id)) == sorted([OTHER, EN_COURIER])
    assert (await svc.get(original.id)).supporters == 2
    told = (await notices_to(db, EN_COURIER))[-1].payload["params"]["text"]
    assert f"updates on {original.ref} too" in told
    # They now hear of the original's progress.
    await svc.transition(original.id, "ack", MOD_A)
    latest = (await notices_to(db, EN_COURIER))[-1].payload["params"]["text"]
    assert original.ref in latest and "acknowledged" in latest


async def test_feedback_and_reopen_window(svc, db, clock):
    report = await svc.submit(COURIER, grievance())
    assert (await svc.feedback(report.id, COURIER, solved=True)).refusal.code == "not_allowed"
    await svc.transition(report.id, "resolve", MOD_A, note="已与物业沟通")
    assert (await svc.feedback(report.id, OTHER, solved=False)).refusal.code == "not_reporter"
    yes = await svc.feedback(report.id, COURIER, solved=True)
    assert yes.changed and yes.report.status == "resolved"
    assert (await svc.feedback(report.id, COURIER, solved=True)).refusal.code == "already_confirmed"

    clock.advance(days=3)
    reopened = await svc.feedback(report.id, COURIER, solved=False)
    assert reopened.changed and reopened.report.status == "new" and reopened.report.resolved_at is None
    assert reopened.report.reopened_at == clock.now()
    assert [e.action for e in await svc.events(report.id)][-1] == "reopen"
    # The moderators get a fresh card saying so; the reporter is not told of their own action.
    card = await outbox.get_by_key(db, f"rp:{report.id}:reopen:{reopened.event_id}")
    assert card.chat_id == MOD_CHAT and "重新打开" in card.payload["params"]["text"]
    assert not [n for n in await notices_to(db, COURIER) if f":{reopened.event_id}:" in n.dedup_key]
    assert (await svc.reopen(report.id, COURIER)).refusal.code == "already"

    await svc.transition(report.id, "resolve", MOD_A, note="再次沟通")
    clock.advance(days=14, minutes=1)
    late = await svc.feedback(report.id, COURIER, solved=False)
    assert not late.changed and late.refusal.code == "reopen_expired"
    assert (await svc.get(report.id)).status == "resolved"


async def test_card_edits_after_change(svc, db):
    report = await svc.submit(COURIER, hazard())
    await svc.card_sent(f"rp:{report.id}:card", MOD_CHAT, 500)
    await svc.card_sent(f"rp:{report.id}:esc:2026-11-26", MOD_CHAT, 600)
    assert not await svc.card_sent(f"rp:{report.id}:card:photo", MOD_CHAT, 501)
    result = await svc.transition(report.id, "ack", MOD_A, edited_card=(MOD_CHAT, 500))
    edits = [r for r in await rows(db) if r.kind == "report_card_edit"]
    assert len(edits) == 1
    params = edits[0].payload["params"]
    assert edits[0].payload["method"] == "editMessageText" and params["message_id"] == 600
    assert "已受理" in params["text"] and "社工" in params["text"]
    labels = [b["text"] for row in params["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["处理中", "已解决", "驳回", "标记重复"]
    closed = await svc.transition(report.id, "reject", MOD_A, note="非本辖区")
    card = await svc.card(closed.report)
    assert card["reply_markup"] == {"inline_keyboard": []} and "非本辖区" in card["text"]
    assert result.changed


# -- anonymity ------------------------------------------------------------------------------------


async def test_anonymous_never_reveals_reporter(svc, db):
    report = await svc.submit(COURIER, grievance(anonymous=True))
    assert report.anonymous
    card = await outbox.get_by_key(db, f"rp:{report.id}:card")
    text = card.payload["params"]["text"]
    assert "匿名" in text
    for secret in ("小王", "wangxg", str(COURIER)):
        assert secret not in text
    en_card = (await svc.card(report, lang="en"))["text"]
    assert "Anonymous" in en_card and "wangxg" not in en_card
    mine = await svc.my_reports(COURIER)
    assert [r.ref for r in mine] == ["G-0001"]
    items, total = await svc.open_reports()
    line = svc.list_line(items[0], "zh")
    assert total == 1 and "小王" not in line and "wangxg" not in line
    buffer = io.StringIO()
    assert await svc.export_csv(dt.date(2026, 11, 1), buffer) == 1
    exported = buffer.getvalue()
    assert "匿名" in exported and "小王" not in exported and "wangxg" not in exported
    assert str(COURIER) not in exported
    # Still told of every change.
    await svc.transition(report.id, "ack", MOD_A)
    assert len(await notices_to(db, COURIER)) == 1
    # Hazards are never anonymous (public safety information).
    assert not (await svc.submit(COURIER, hazard(anonymous=True))).anonymous


# -- duplicates -----------------------------------------------------------------------------------


async def test_duplicate_detection(svc, db, clock):
    first = await svc.submit(COURIER, hazard())
    # ~30 m north: same category -> candidate; other category -> none; ~80 m -> none.
    near = hazard(lat=LAT + 0.00027)
    assert (await svc.find_duplicate(near)).id == first.id
    assert await svc.find_duplicate(hazard(lat=LAT + 0.00027, category="flooding")) is None
    assert await svc.find_duplicate(hazard(lat=LAT + 0.00072)) is None
    assert await svc.find_duplicate(grievance()) is None
    assert await svc.find_duplicate(hazard(lat=None, lon=None, place_text="x")) is None

    support = await svc.add_supporter(first.id, OTHER)
    assert support.changed and support.report.supporters == 1
    assert (await svc.add_supporter(first.id, OTHER)).refusal.code == "already_supporter"
    assert (await svc.add_supporter(first.id, COURIER)).refusal.code == "own_report"
    assert "另有 1 人" in (await svc.card(support.report))["text"]

    clock.advance(hours=73)
    assert await svc.find_duplicate(near) is None  # outside the window
    clock.advance(hours=-72)
    await svc.transition(first.id, "resolve", MOD_A, note="ok")
    assert await svc.find_duplicate(near) is None  # no longer open
    assert (await svc.add_supporter(first.id, EN_COURIER)).refusal.code == "not_open"


async def test_duplicate_detection_leaves_out_own_reports(svc):
    """The nearest open hazard is the courier's own: another courier's one nearby is still offered."""
    others = await svc.submit(OTHER, hazard(lat=LAT + 0.0002))  # ~22 m away
    own = await svc.submit(COURIER, hazard())  # right here
    draft = hazard()
    assert (await svc.find_duplicate(draft)).id == own.id
    assert (await svc.find_duplicate(draft, exclude_reporter=COURIER)).id == others.id
    assert (await svc.find_duplicate(hazard(lat=LAT - 0.0002), exclude_reporter=OTHER)).id == own.id
    await svc.transition(others.id, "reject", MOD_A, note="x")
    assert await svc.find_duplicate(draft, exclude_reporter=COURIER) is None


# -- escalation -----------------------------------------------------------------------------------


async def test_escalation_once_a_day_until_acted(svc, db, clock):
    report = await svc.submit(COURIER, hazard())
    acked = await svc.submit(COURIER, hazard(category="flooding"))
    await svc.transition(acked.id, "ack", MOD_A)
    clock.advance(hours=23)
    assert await svc.escalate_due() == 0
    clock.advance(hours=1)  # 2026-11-26 10:00 local
    assert await svc.escalate_due() == 1
    row = await outbox.get_by_key(db, f"rp:{report.id}:esc:2026-11-26")
    assert row.chat_id == MOD_CHAT and row.kind == CARD_KIND
    assert "24 小时" in row.payload["params"]["text"]
    assert row.payload["params"]["reply_markup"]["inline_keyboard"]
    assert await svc.escalate_due() == 0
    clock.advance(hours=6)
    assert await svc.escalate_due() == 0
    clock.advance(hours=18)  # next day
    assert await svc.escalate_due() == 1
    assert await outbox.get_by_key(db, f"rp:{report.id}:esc:2026-11-27")
    await svc.transition(report.id, "progress", MOD_B)
    clock.advance(days=1)
    assert await svc.escalate_due() == 0
    # A reopened report waits ack_timeout_hours again before it is raised.
    await svc.transition(report.id, "resolve", MOD_B, note="ok")
    await svc.reopen(report.id, COURIER)
    clock.advance(hours=12)
    assert await svc.escalate_due() == 0
    clock.advance(hours=12)
    assert await svc.escalate_due() == 1


async def test_escalation_without_moderator_chat(svc, core, clock):
    core.config = core.config.with_overrides(bot={"moderator_chat_id": 0, "area_moderator_chats": {}})
    await svc.submit(COURIER, hazard())
    clock.advance(hours=25)
    assert await svc.escalate_due() == 0


# -- lists, hotspots, export ----------------------------------------------------------------------


async def test_lists_and_hotspots(svc, clock):
    g1 = await svc.submit(COURIER, grievance())
    clock.advance(hours=1)
    await svc.submit(OTHER, grievance(compound=" 西溪花园 ", description="快递柜不让放"))
    clock.advance(hours=1)
    await svc.submit(OTHER, grievance(compound="城西银泰", property_company="银泰物业"))
    h = await svc.submit(COURIER, hazard(area="蒋村"))
    await svc.submit(COURIER, grievance(category="wages", compound="ignored"))
    await svc.transition(g1.id, "resolve", MOD_A, note="ok")

    items, total = await svc.open_reports()
    assert total == 4 and items[0].ref == "G-0002"  # oldest open first
    assert [r.ref for r in (await svc.open_reports(kind="hazard"))[0]] == ["H-0001"]
    assert (await svc.open_reports(area="蒋村"))[0] == [h]
    assert (await svc.open_reports(area=["蒋村", "翠苑"]))[0] == [h]
    assert (await svc.open_reports(area=[]))[1] == 0
    assert (await svc.open_reports(status="resolved"))[1] == 1
    assert (await svc.open_reports(category="wages"))[1] == 1
    assert [r.ref for r in await svc.my_reports(COURIER)] == ["G-0004", "H-0001", "G-0001"]
    assert "分钟前" in svc.list_line(items[-1], "zh")
    assert "1 h ago" in svc.list_line(items[0], "en")

    spots = await svc.access_hotspots()
    assert [(s.compound, s.property_company, s.total, s.open) for s in spots] == [
        ("西溪花园", "绿城物业", 2, 1),
        ("城西银泰", "银泰物业", 1, 1),
    ]


async def test_hotspots_of_several_areas(svc):
    """A moderator scoped to some areas: the hotspot query takes a set of areas."""
    await svc.submit(COURIER, grievance(area="蒋村"))
    await svc.submit(OTHER, grievance(area="翠苑", compound="翠苑一区", property_company="翠苑物业"))
    await svc.submit(OTHER, grievance(area="古荡", compound="古荡新村", property_company="古荡物业"))
    await svc.submit(OTHER, grievance(compound="无片区小区"))

    def places(spots):
        return sorted(s.compound for s in spots)

    assert places(await svc.access_hotspots(area={"蒋村", "翠苑"})) == ["翠苑一区", "西溪花园"]
    assert places(await svc.access_hotspots(area=["古荡"])) == ["古荡新村"]
    assert places(await svc.access_hotspots(area="古荡")) == ["古荡新村"]
    assert await svc.access_hotspots(area=set()) == []
    assert len(await svc.access_hotspots()) == 4


async def test_export_csv(svc, db, clock):
    clock.set(dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC))
    await svc.submit(OTHER, hazard(description="old"))
    clock.set(dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC))
    report = await svc.submit(COURIER, hazard(description="=HYPERLINK(1)", photos=["p"], place_text="文三路"))
    await svc.transition(report.id, "ack", MOD_A)
    buffer = io.StringIO(newline="")
    assert await svc.export_csv(dt.date(2026, 11, 25), buffer) == 1
    data = buffer.getvalue()
    assert data.startswith("\ufeff编号,")
    table = list(csv.reader(io.StringIO(data.lstrip("\ufeff"))))
    header, row = table
    record = dict(zip(header, row, strict=True))
    assert record["编号"] == "H-0002" and record["状态"] == "已受理" and record["分类"] == "道路破损"
    assert record["描述"] == "'=HYPERLINK(1)"  # no formula injection
    assert record["提交时间"] == "2026-11-25 10:00" and record["照片数"] == "1"
    assert record["反映人"] == "小王 (@wangxg)"
    en = io.StringIO()
    await svc.export_csv(dt.date(2026, 11, 1), en, lang="en")
    assert en.getvalue().startswith("\ufeffReference,") and en.getvalue().count("H-000") == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reports": {"service_bounds": [1, 2, 3]}}, "reports.service_bounds"),
        ({"reports": {"service_bounds": [31, 118, 27, 123]}}, "south < north"),
        ({"reports": {"daily_limit": 0}}, "reports.daily_limit: must be positive"),
        ({"reports": {"hazard_points": -1}}, "reports.hazard_points"),
    ],
)
def test_reports_config_is_checked(data, message):
    from bot.core.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_config(data, env={})
    assert parse_config({"reports": {"service_bounds": []}}, env={}).reports.service_bounds == ()


async def test_outbox_hook_records_cards(svc, db):
    report = await svc.submit(COURIER, hazard())
    hooks = {}

    class FakeOutbox:
        def on_done(self, kind, hook):
            hooks[kind] = hook

    svc.install(FakeOutbox())
    row = await outbox.get_by_key(db, f"rp:{report.id}:card")
    await hooks[CARD_KIND](row, "failed", None)
    await hooks[CARD_KIND](row, "sent", {"message_id": 77})
    assert await repo.cards(db, report.id) == [(MOD_CHAT, 77)]


def test_cli_export(tmp_path):
    """`xiaoge-bot reports export --since DATE` writes the CSV (BOM, anonymity) through bot.reports."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    db_path = tmp_path / "db.sqlite3"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[storage]\npath = "{db_path}"\n', encoding="utf-8")

    async def seed():
        db = await Database(db_path).open()
        await db.migrate()
        core = Core(config=parse_config({}, env={}), clock=FakeClock(), db=db, catalog=Catalog.load())
        await users.touch(
            db, user_id=COURIER, first_name="小王", last_name=None, username="wangxg", language_code="zh",
            now=core.clock.now(), private_chat=True,
        )  # fmt: skip
        await core.service(ReportService).submit(COURIER, grievance(anonymous=True))
        await db.close()

    asyncio.run(seed())
    env = {k: v for k, v in os.environ.items() if k != "XIAOGE_BOT_TOKEN"}
    env["PYTHONPATH"] = str(root)
    out = tmp_path / "out" / "reports.csv"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "reports", "export", "--since", "2026-11-01", "-o", str(out),
         "--config", str(cfg)],
        capture_output=True, text=True, cwd=root, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "exported 1 report(s)" in result.stderr
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert "G-0001" in text and "匿名" in text and "wangxg" not in text


async def test_reporter_view_history_notes_and_nothing_about_others(svc, clock):
    report = await svc.submit(COURIER, grievance(anonymous=True))
    await svc.add_supporter(report.id, OTHER)
    clock.advance(minutes=5)
    await svc.transition(report.id, "ack", MOD_A)
    await svc.transition(report.id, "resolve", MOD_A, note="已与物业沟通")
    text = await svc.reporter_view(report.id, COURIER, "zh")
    assert text is not None
    assert "G-0001" in text and "提交" in text and "已受理" in text and "已解决" in text
    assert "已与物业沟通" in text and "匿名" in text and "另有 1 人" in text
    assert "老张" not in text and "zhang" not in text and "社工" not in text
    # Only the reporter sees it; a supporter or anyone else gets nothing.
    assert await svc.reporter_view(report.id, OTHER, "zh") is None
    assert await svc.reporter_view(report.id + 99, COURIER, "zh") is None
