"""ReportService: filing, lifecycle, notifications, anonymity, duplicates, escalation, points, export."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog, placeholders
from bot.kit.geo import haversine_m
from bot.reports import categories as rc
from bot.reports.service import (
    CARD_KIND,
    DIGEST_KIND,
    ESCALATION_BATCH,
    Escalation,
    ReportDraft,
    ReportRefused,
    ReportService,
)
from storage import groups, outbox, points, users
from storage import reports as repo
from storage.db import Database, to_db
from tests import dbs
from tests.dbs import make_database

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
    database = await make_database(tmp_path / "t.sqlite3").open()
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
    assert [b["text"] for b in buttons] == ["受理", "处理中", "已解决", "驳回", "标记重复", "·"]
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


async def test_a_moderator_earns_nothing_for_judging_their_own_tip(svc, db):
    """Self-dealing: the reporter's points need someone else's decision. A moderator who acknowledges
    their own hazard earns nothing and the card says why; another moderator's decision credits it,
    and the ledger records that moderator as the one who decided."""
    own = await svc.submit(MOD_A, hazard())
    done = await svc.transition(own.id, "ack", MOD_A)
    assert done.changed and done.points == 0
    assert await points.balance(db, MOD_A) == 0
    card = (await svc.card(done.report, lang="zh"))["text"]
    assert "志愿分暂不发放" in card and "另一位版主" in card
    assert "another moderator" in (await svc.card(done.report, lang="en"))["text"]
    later = await svc.transition(own.id, "progress", MOD_B)
    assert later.points == 5 and await points.balance(db, MOD_A) == 5
    entry = (await points.history(db, MOD_A))[0]
    assert (entry.reason, entry.actor_id) == ("report_valid", MOD_B)
    assert "志愿分暂不发放" not in (await svc.card(later.report, lang="zh"))["text"]
    # Resolving it themselves afterwards takes nothing back and says nothing: it was credited.
    final = await svc.transition(own.id, "resolve", MOD_A, note="修好了")
    assert final.points == 0 and await points.balance(db, MOD_A) == 5
    assert "志愿分暂不发放" not in (await svc.card(final.report, lang="zh"))["text"]


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


async def test_card_edits_after_change(svc, db, clock):
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
    assert labels == ["·", "处理中", "已解决", "驳回", "标记重复", "↩️ 撤销"]
    closed = await svc.transition(report.id, "reject", MOD_A, note="非本辖区")
    card = await svc.card(closed.report)
    labels = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["·"] * 5 + ["↩️ 撤销"] and "非本辖区" in card["text"]  # undo keeps its place
    clock.advance(dt.timedelta(minutes=11))  # past the undo window: nothing left to do
    card = await svc.card(closed.report)
    assert card["reply_markup"] == {"inline_keyboard": []}
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
    assert await svc.escalate_due() == Escalation(0, 0)
    clock.advance(hours=1)  # 2026-11-26 10:00 local
    assert await svc.escalate_due() == Escalation(digests=1, reports=1)
    # One digest for the moderators' chat (not a card per report), naming the report with a button.
    row = await outbox.get_by_key(db, f"rp:digest:{MOD_CHAT}:2026-11-26")
    assert row.chat_id == MOD_CHAT and row.kind == DIGEST_KIND
    text = row.payload["params"]["text"]
    assert "1 条反映已超过 24 小时未受理" in text and "H-0001" in text and "道路破损" in text
    assert "/reports" in text
    assert row.payload["params"]["reply_markup"]["inline_keyboard"] == [
        [{"text": "H-0001", "callback_data": f"rp:ls:o:{report.id}"}]
    ]
    assert await outbox.get_by_key(db, f"rp:{report.id}:esc:2026-11-26") is None
    assert (await repo.get(db, report.id)).last_escalated_at == clock.now()
    assert (await repo.get(db, acked.id)).last_escalated_at is None
    assert await svc.escalate_due() == Escalation(0, 0)
    clock.advance(hours=6)
    assert await svc.escalate_due() == Escalation(0, 0)
    clock.advance(hours=18)  # next day
    assert (await svc.escalate_due()).digests == 1
    assert await outbox.get_by_key(db, f"rp:digest:{MOD_CHAT}:2026-11-27")
    await svc.transition(report.id, "progress", MOD_B)
    clock.advance(days=1)
    assert await svc.escalate_due() == Escalation(0, 0)
    # A reopened report waits ack_timeout_hours again before it is raised.
    await svc.transition(report.id, "resolve", MOD_B, note="ok")
    await svc.reopen(report.id, COURIER)
    clock.advance(hours=12)
    assert await svc.escalate_due() == Escalation(0, 0)
    clock.advance(hours=12)
    assert (await svc.escalate_due()).digests == 1


async def test_escalation_without_moderator_chat(svc, core, db, clock):
    core.config = core.config.with_overrides(bot={"moderator_chat_id": 0, "area_moderator_chats": {}})
    report = await svc.submit(COURIER, hazard())
    clock.advance(hours=25)
    assert await svc.escalate_due() == Escalation(0, 0)
    assert (await repo.get(db, report.id)).last_escalated_at is None


async def test_escalation_digest_waits_for_the_digest_hour(svc, core, clock):
    await svc.submit(COURIER, hazard())
    clock.advance(hours=44)  # 2026-11-27 06:00 local: overdue, but before digest_hour (9)
    assert await svc.escalate_due() == Escalation(0, 0)
    clock.advance(hours=3)
    assert (await svc.escalate_due()).digests == 1
    core.config = core.config.with_overrides(reports={"digest_hour": 0})
    clock.advance(hours=15)  # 00:00 local
    assert (await svc.escalate_due()).digests == 1


async def _file_raw(db, count, *, area=None, category="road_damage", reporter=COURIER, at):
    """Reports inserted straight through the repository (past the per-courier daily limit)."""
    ids = []
    async with db.transaction() as tx:
        for _ in range(count):
            report = await repo.insert(
                tx, kind="hazard", category=category, description="x", voice_file_id=None, lat=LAT, lon=LON,
                place_text=None, compound=None, property_company=None, anonymous=False, reporter_id=reporter,
                area=area, origin_chat_id=None, now=at,
            )  # fmt: skip
            ids.append(report.id)
    return ids


async def test_escalation_of_many_reports_is_one_digest_per_chat_in_short_transactions(
    svc, db, clock, monkeypatch
):
    """450 overdue reports over two moderators' chats: each chat told once, in one message that counts
    them all; every overdue report stamped, at most ESCALATION_BATCH per transaction; nothing twice."""
    start = clock.now()
    plain = await _file_raw(db, 300, at=start - dt.timedelta(days=8))  # the default chat
    plain += await _file_raw(db, 20, category="flooding", area="古荡", at=start - dt.timedelta(days=2))
    jiangcun = await _file_raw(db, 130, area="蒋村", at=start - dt.timedelta(days=4))  # AREA_CHAT
    fresh = await _file_raw(db, 5, at=start)  # not overdue yet
    acked = await _file_raw(db, 3, at=start - dt.timedelta(days=9))
    async with db.transaction() as tx:
        for report_id in acked:
            await repo.set_status(tx, report_id, expected="new", new="acknowledged", now=start)
    batches: list[int] = []
    mark = repo.mark_escalated

    async def counted(tx, ids, now):
        batches.append(len(ids))
        return await mark(tx, ids, now)

    monkeypatch.setattr(repo, "mark_escalated", counted)
    assert await svc.escalate_due() == Escalation(digests=2, reports=450)
    assert max(batches) <= ESCALATION_BATCH and sum(batches) == 450
    digests = await db.fetchall("SELECT * FROM outbox WHERE kind = ?", (DIGEST_KIND,))
    assert sorted(r["chat_id"] for r in digests) == sorted([MOD_CHAT, AREA_CHAT])
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedup_key LIKE 'rp:%:esc:%'") == 0
    main = (await outbox.get_by_key(db, f"rp:digest:{MOD_CHAT}:2026-11-25")).payload["params"]
    assert "320 条反映" in main["text"]
    assert "道路破损：300 条" in main["text"] and "积水内涝：20 条" in main["text"]
    assert "3 天以内：20 条" in main["text"] and "7 天及以上：300 条" in main["text"]
    assert len(main["reply_markup"]["inline_keyboard"][0]) == 5  # the oldest five
    assert main["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"rp:ls:o:{plain[0]}"
    area = (await outbox.get_by_key(db, f"rp:digest:{AREA_CHAT}:2026-11-25")).payload["params"]
    assert "130 条反映" in area["text"] and "3–7 天：130 条" in area["text"]
    stamped = await db.fetchall("SELECT id FROM reports WHERE last_escalated_at IS NOT NULL")
    assert sorted(r[0] for r in stamped) == sorted(plain + jiangcun)
    assert not set(fresh + acked) & {r[0] for r in stamped}
    # Twice the same day (another run, a restart): nothing more.
    clock.advance(hours=3)
    batches.clear()
    assert await svc.escalate_due() == Escalation(0, 0) and not batches
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = ?", (DIGEST_KIND,)) == 2
    # The next day: each chat once again, covering what is still unacknowledged.
    clock.advance(days=1)
    assert await svc.escalate_due() == Escalation(digests=2, reports=455)


async def test_escalation_interrupted_before_its_digest_is_completed_once(svc, core, db, clock):
    """A run that dies after stamping (before the digest is queued) leaves no digest; the next run
    stamps again and queues it, once."""
    await _file_raw(db, 250, at=clock.now() - dt.timedelta(days=2))
    enqueue = core.outbox.enqueue
    calls = 0

    async def failing(messages, executor=None, **kw):
        nonlocal calls
        calls += 1
        raise RuntimeError("stopped")

    core.outbox.enqueue = failing
    with pytest.raises(RuntimeError):
        await svc.escalate_due()
    assert calls == 1
    assert await db.fetchval("SELECT COUNT(*) FROM reports WHERE last_escalated_at IS NOT NULL") == 250
    assert await outbox.get_by_key(db, f"rp:digest:{MOD_CHAT}:2026-11-25") is None
    core.outbox.enqueue = enqueue
    clock.advance(minutes=10)
    assert await svc.escalate_due() == Escalation(digests=1, reports=250)
    assert await svc.escalate_due() == Escalation(0, 0)
    assert (
        "250 条反映"
        in (await outbox.get_by_key(db, f"rp:digest:{MOD_CHAT}:2026-11-25")).payload["params"]["text"]
    )


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
    assert "刚刚" in svc.list_line(items[-1], "zh")  # filed this minute: never "0 分钟前"
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


# What /reports showed before the counts and hotspots were kept on write: the oracles.
_OLD_HOTSPOTS = """
    SELECT TRIM(COALESCE(compound, '')) AS c, TRIM(COALESCE(property_company, '')) AS p, COUNT(*) AS total,
           SUM(CASE WHEN status IN ('new', 'acknowledged', 'in_progress') THEN 1 ELSE 0 END) AS open_count,
           MAX(created_at) AS last_at
    FROM reports WHERE kind = 'grievance' AND category = 'access' AND status <> 'duplicate'
      AND (TRIM(COALESCE(compound, '')) <> '' OR TRIM(COALESCE(property_company, '')) <> '') {area}
    GROUP BY c, p
"""


async def _old_hotspots(db, area):
    clause, params = "", []
    if isinstance(area, str):
        clause, params = "AND area = ?", [area]
    elif area is not None:
        clause = f"AND area IN ({','.join('?' * len(area))})" if area else "AND 0 = 1"
        params = sorted(area)
    found = await db.fetchall(_OLD_HOTSPOTS.format(area=clause), params)
    return sorted((r["c"], r["p"], r["total"], r["open_count"], r["last_at"]) for r in found)


async def _churn(db, clock, seed=7, count=160):
    """Reports of every kind, area and place, moved through random lifecycles (duplicates, reopens)."""
    import random

    from bot.reports.service import TRANSITIONS

    rnd = random.Random(seed)
    ids = []
    for _ in range(count):
        clock.advance(minutes=rnd.randint(1, 90))
        kind = rnd.choice(["grievance", "grievance", "hazard"])
        category = (
            rnd.choice(["access", "wages"])
            if kind == "grievance"
            else rnd.choice(["road_damage", "flooding"])
        )
        async with db.transaction() as tx:
            report = await repo.insert(
                tx, kind=kind, category=category, description="x", voice_file_id=None, lat=None, lon=None,
                place_text="p", compound=rnd.choice([None, "西溪花园", " 翠苑一区 ", ""]),
                property_company=rnd.choice([None, "绿城物业", " "]), anonymous=False, reporter_id=COURIER,
                area=rnd.choice([None, "蒋村", "翠苑", "古荡", ""]), origin_chat_id=None, now=clock.now(),
            )  # fmt: skip
        ids.append(report.id)
        for _ in range(rnd.randint(0, 3)):
            target = await repo.get(db, rnd.choice(ids))
            actions = [a for a, (start, _) in TRANSITIONS.items() if target.status in start]
            if not actions:
                continue
            action = rnd.choice(actions)
            other = rnd.choice([i for i in ids if i != target.id] or [None])
            if action == "duplicate" and other is None:
                continue
            async with db.transaction() as tx:
                await repo.set_status(
                    tx, target.id, expected=target.status, new=TRANSITIONS[action][1], now=clock.now(),
                    duplicate_of=other if action == "duplicate" else None,
                )  # fmt: skip
    return ids


AREAS = (None, "蒋村", ["蒋村", "翠苑"], ["古荡"], [], "", ["", "蒋村"])


async def test_counts_and_hotspots_kept_on_write_match_the_reports(db, clock):
    """After inserts and every kind of status change (duplicates included), the counts the list shows
    and the hotspots equal what counting the reports themselves gives."""
    await _churn(db, clock)
    assert await db.fetchval("SELECT COUNT(*) FROM reports WHERE status = 'duplicate'") > 3
    for area in AREAS:
        hotspots = await repo.access_hotspots(db, category="access", area=area, limit=100)
        assert sorted(
            (h.compound, h.property_company, h.total, h.open, to_db(h.last_at)) for h in hotspots
        ) == (await _old_hotspots(db, area)), area
        totals = [(h.total, h.open, h.last_at) for h in hotspots]
        assert totals == sorted(totals, reverse=True)
        for statuses in (repo.OPEN_STATUSES, ("resolved",), ("duplicate",), ("new",), repo.STATUSES):
            for kind, category in ((None, None), ("hazard", None), ("grievance", "access"), (None, "wages")):
                where, params = repo._filters(kind, category, area, statuses)
                expected = await db.fetchval(f"SELECT COUNT(*) FROM reports{where}", params)
                got = await repo.count(db, kind=kind, category=category, area=area, statuses=statuses)
                assert got == expected, (area, statuses, kind, category)
                for offset in (0, 10):
                    old = await db.fetchall(
                        f"SELECT id FROM reports{where} ORDER BY created_at, id LIMIT 10 OFFSET ?",
                        [*params, offset],
                    )
                    page = await repo.listing(
                        db,
                        kind=kind,
                        category=category,
                        area=area,
                        statuses=statuses,
                        limit=10,
                        offset=offset,
                    )
                    assert [r.id for r in page] == [r[0] for r in old], (area, statuses, kind, offset)


async def _plans(db, call):
    """The query plans of the statements `call(executor)` runs."""
    seen = []

    class Spy:
        dialect = db.dialect

        async def fetchall(self, sql, params=()):
            seen.append((sql, params))
            return await db.fetchall(sql, params)

        async def fetchval(self, sql, params=()):
            seen.append((sql, params))
            return await db.fetchval(sql, params)

    await call(Spy())
    return [
        " | ".join(r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, params))
        for sql, params in seen
    ]


@pytest.mark.sqlite_only
async def test_reports_list_reads_ordered_ranges_and_kept_counts(db, clock):
    """/reports page 1 for an area moderator and an unscoped one: each status (and area) is an index
    range in created order; the total and the hotspots never read the reports table."""
    await _churn(db, clock, count=40)
    for area, index in ((["蒋村"], "reports_status_area"), (None, "reports_status")):
        (page,) = await _plans(db, lambda ex, area=area: repo.listing(ex, area=area, limit=10))
        assert page.count(f"SEARCH reports USING INDEX {index} ") == 3, page
        assert "SCAN reports" not in page
        (total,) = await _plans(db, lambda ex, area=area: repo.count(ex, area=area))
        (spots,) = await _plans(
            db, lambda ex, area=area: repo.access_hotspots(ex, category="access", area=area)
        )
        for plan in (total, spots):
            assert " reports " not in f"{plan} " and "reports USING" not in plan, plan
        # The hotspots of one area, or of all, are the first rows of a ranked index: nothing sorted.
        assert "_rank (category=? AND" in spots and "TEMP B-TREE" not in spots, spots


@pytest.mark.sqlite_only
async def test_migration_carries_counts_and_hotspots_over(tmp_path, monkeypatch):
    """Reports stored before 0022 are counted and grouped by the migration (backfill)."""
    import storage.db as storage_db

    every = storage_db.available_migrations()
    monkeypatch.setattr(storage_db, "available_migrations", lambda: [m for m in every if m[0] < 22])
    database = await Database(tmp_path / "old.sqlite3").open()
    await database.migrate()
    stamp = "2026-11-25T02:00:00.000000Z"
    rows = [
        ("grievance", 1, "access", " 西溪花园 ", "绿城物业", "蒋村", "new", "2026-11-20T02:00:00.000000Z"),
        ("grievance", 2, "access", "西溪花园", "绿城物业", "蒋村", "resolved", "2026-11-21T02:00:00.000000Z"),
        (
            "grievance",
            3,
            "access",
            "西溪花园",
            "绿城物业",
            "蒋村",
            "duplicate",
            "2026-11-22T02:00:00.000000Z",
        ),
        ("grievance", 4, "access", None, "银泰物业", None, "acknowledged", "2026-11-23T02:00:00.000000Z"),
        ("grievance", 5, "wages", None, None, None, "new", "2026-11-23T02:00:00.000000Z"),
        ("hazard", 1, "road_damage", None, None, "蒋村", "new", "2026-11-24T02:00:00.000000Z"),
    ]
    await database.executemany(
        "INSERT INTO reports(kind, seq, category, compound, property_company, area, status, reporter_id,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        [(*row, stamp) for row in rows],
    )
    monkeypatch.setattr(storage_db, "available_migrations", lambda: every)
    assert "0022_reports_scale" in await database.migrate()
    assert await repo.count(database) == 4
    assert await repo.count(database, area="蒋村") == 2
    assert await repo.count(database, statuses=("duplicate",), kind="grievance") == 1
    spots = await repo.access_hotspots(database, category="access")
    assert [(h.compound, h.property_company, h.total, h.open, to_db(h.last_at)) for h in spots] == [
        ("西溪花园", "绿城物业", 2, 1, "2026-11-21T02:00:00.000000Z"),
        ("", "银泰物业", 1, 1, "2026-11-23T02:00:00.000000Z"),
    ]
    await database.close()


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


async def test_export_reads_pages_with_the_reporter_joined_not_a_lookup_per_row(
    svc, core, db, clock, monkeypatch, tmp_path
):
    """Every report once, in created order, page by page (one query per page, the reporter's name, the
    photo count and the original's reference joined in); anonymity and formula escaping kept."""
    import bot.reports.service as service_module
    from bot.reports.service import export_reports
    from storage import users as users_repo

    first = await svc.submit(COURIER, hazard(description="@SUM(A1)", photos=["a", "b"]))
    await svc.submit(EN_COURIER, grievance(anonymous=True, description="-1+1"))
    clock.advance(minutes=1)
    dup = await svc.submit(OTHER, hazard(description="+cmd", lat=LAT + 0.001))
    await svc.transition(dup.id, "duplicate", MOD_A, duplicate_ref=first.ref)
    async with db.transaction() as tx:  # a reporter the bot no longer knows
        await repo.insert(
            tx, kind="hazard", category="flooding", description="水", voice_file_id="v", lat=None, lon=None,
            place_text="西湖", compound=None, property_company=None, anonymous=False, reporter_id=999,
            area=None, origin_chat_id=None, now=clock.now(),
        )  # fmt: skip
    clock.advance(minutes=1)
    await svc.submit(COURIER, grievance(compound="=1+2"))
    pages = []
    real_page = repo.export_page

    async def counted(*args, **kw):
        pages.append(kw["after"])
        return await real_page(*args, **kw)

    async def no_lookup(*args, **kw):
        raise AssertionError("one user lookup per row")

    monkeypatch.setattr(repo, "export_page", counted)
    monkeypatch.setattr(users_repo, "get", no_lookup)
    monkeypatch.setattr(service_module, "EXPORT_PAGE", 2)
    buffer = io.StringIO(newline="")
    assert await svc.export_csv(dt.date(2026, 11, 1), buffer) == 5
    assert len(pages) == 3 and pages[0] is None  # 2 + 2 + 1
    table = list(csv.DictReader(io.StringIO(buffer.getvalue().lstrip("\ufeff"))))
    by_ref = {r["编号"]: r for r in table}
    assert [r["编号"] for r in table] == ["H-0001", "G-0001", "H-0002", "H-0003", "G-0002"]
    assert by_ref["H-0001"]["反映人"] == "小王 (@wangxg)" and by_ref["H-0001"]["照片数"] == "2"
    assert by_ref["H-0001"]["描述"] == "'@SUM(A1)"
    assert by_ref["G-0001"]["反映人"] == "匿名" and by_ref["G-0001"]["描述"] == "'-1+1"
    assert "li_rider" not in buffer.getvalue() and str(EN_COURIER) not in buffer.getvalue()
    assert by_ref["H-0002"]["描述"] == "'+cmd" and by_ref["H-0002"]["重复于"] == "H-0001"
    assert by_ref["H-0003"]["反映人"] == "—" and by_ref["H-0003"]["语音"] == "有"
    assert by_ref["G-0002"]["小区/楼宇"] == "'=1+2"
    # To a file: written as it is read, under the asked name once complete.
    path = tmp_path / "out" / "reports.csv"
    assert await export_reports(core, dt.date(2026, 11, 1), str(path)) == 5
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and not path.with_name("reports.csv.part").exists()
    assert path.read_bytes().decode("utf-8-sig") == buffer.getvalue().lstrip("\ufeff")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reports": {"service_bounds": [1, 2, 3]}}, "reports.service_bounds"),
        ({"reports": {"service_bounds": [31, 118, 27, 123]}}, "south < north"),
        ({"reports": {"daily_limit": 0}}, "reports.daily_limit: must be positive"),
        ({"reports": {"hazard_points": -1}}, "reports.hazard_points"),
        ({"reports": {"digest_hour": 24}}, "reports.digest_hour: must be an hour"),
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

    root = Path(__file__).resolve().parents[1]
    db_path = tmp_path / "db.sqlite3"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[storage]\npath = "{db_path}"\n', encoding="utf-8")

    async def seed():
        db = await make_database(db_path).open()
        await db.migrate()
        core = Core(config=parse_config({}, env={}), clock=FakeClock(), db=db, catalog=Catalog.load())
        await users.touch(
            db, user_id=COURIER, first_name="小王", last_name=None, username="wangxg", language_code="zh",
            now=core.clock.now(), private_chat=True,
        )  # fmt: skip
        await core.service(ReportService).submit(COURIER, grievance(anonymous=True))
        await db.close()

    asyncio.run(seed())
    if dbs.on_postgresql():  # the command reads the database the seed wrote
        cfg.write_text(f'[storage]\nurl = "{dbs.url_for(db_path)}"\n', encoding="utf-8")
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


def test_age_is_never_zero_minutes(svc, clock):
    """A report filed seconds ago is "刚刚" (just now), never "0 分钟前"."""
    now = clock.now()
    assert svc.age(now, "zh") == "刚刚"
    assert svc.age(now - dt.timedelta(seconds=59), "zh") == "刚刚"
    assert svc.age(now - dt.timedelta(seconds=60), "zh") == "1 分钟前"
    assert svc.age(now, "en") == "just now"
    assert svc.age(now - dt.timedelta(hours=3), "zh") == "3 小时前"


async def test_hotspots_merge_case_width_and_spaces_but_not_other_names(svc):
    """One compound typed in different case, widths or spacing is one hotspot; another name (the
    Chinese one) stays its own place."""
    for name in (
        "Xixi Garden",
        "xixi  garden",
        "ＸＩＸＩ　ＧＡＲＤＥＮ",
        " Xixi Garden ",
        "西溪花园",
        "西溪花园　",
    ):
        await svc.submit(OTHER, grievance(compound=name, property_company="绿城物业（杭州）"))
    spots = await svc.access_hotspots()
    assert [(s.compound, s.property_company, s.total) for s in spots] == [
        ("Xixi Garden", "绿城物业(杭州)", 4),
        ("西溪花园", "绿城物业(杭州)", 2),
    ]
    # The report keeps the grouped spelling.
    assert {r.compound for r in await svc.my_reports(OTHER)} == {"Xixi Garden", "西溪花园"}
