"""The desk in a real browser: headless Chromium (Debian's package) driven by Playwright for Python
against the real bot process (the Runtime polling the fake Bot API) and its web server.

Opens the Mini App as Telegram does (initData in the URL hash), sees the report on the board and its
marker on the map, resolves it, and checks the reporter's chat got the notice; forged and expired
initData get 401, a courier 403. Screenshots of each view go to tests/artifacts/ (ignored by git).

CI (CI=true) fails when the browser or Playwright is missing instead of skipping: .ci/run installs them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.reports.service import ReportService
from bot.stations.service import StationService
from bot.tasks import TaskDraft, TaskService
from tests.desk_support import desk_overrides, file_report, init_data, url

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MODERATOR = 5101
REPORTER = 5102
COURIER = 5103
DARK = '{"bg_color":"#17212b","text_color":"#f5f5f5","hint_color":"#708499","button_color":"#5288c1","button_text_color":"#ffffff","secondary_bg_color":"#232e3c"}'
THEME = '{"bg_color":"#ffffff","text_color":"#222222","hint_color":"#8a8a8a","button_color":"#2481cc","button_text_color":"#ffffff","secondary_bg_color":"#f1f1f4"}'


def _browser_or_skip() -> None:
    missing = []
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        missing.append("chromium (apt-get install -y chromium fonts-noto-cjk)")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def config_overrides():
    return desk_overrides(reports={"undo_grace_seconds": 30})


@pytest.fixture
async def browser():
    _browser_or_skip()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_desk(browser, bot, signed: str, *, theme: str = THEME):
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # Script errors and bad answers from our server count; the unreachable tiles (net::) do not.
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if msg.type == "error" and "net::" not in msg.text else None,
    )
    target = f"{url(bot)}/#tgWebAppData={quote(signed)}&tgWebAppVersion=8.0&tgWebAppPlatform=android"
    target += f"&tgWebAppThemeParams={quote(theme)}"
    await page.goto(target)
    page.problems = problems  # type: ignore[attr-defined]
    return page


async def shot(page, name: str, *, full: bool = False) -> Path:
    path = ARTIFACTS / f"desk-{name}.png"
    await page.screenshot(path=str(path), full_page=full)
    print(f"screenshot: {path}")
    return path


async def test_moderator_sees_the_report_on_board_and_map_resolves_it_and_the_reporter_is_told(
    bot, tg, browser
):
    await bot.grant(MODERATOR, "moderator")
    moderator_chat = tg.private(tg.user(MODERATOR, "社工小李", language_code="zh"))
    await moderator_chat.send("/start")
    reporter = tg.private(tg.user(REPORTER, "小王", language_code="zh"))
    report = await file_report(bot, reporter, REPORTER)
    await file_report(
        bot,
        reporter,
        REPORTER,
        kind="grievance",
        category="access",
        description="保安不让电动车进小区",
        lat=30.2605,
        lon=120.1331,
        compound="西溪花园",
        property_company="绿城物业",
    )
    reporter.skip()
    stations = bot.core.service(StationService)
    await stations.add(
        name="文三路暖蜂驿站",
        lat=30.2620,
        lon=120.1290,
        area="文新街道",
        opening_hours="24/7",
        facilities="饮水;充电;微波炉",
        address="文三路 259 号",
    )
    flagged = await stations.add(
        name="古荡驿站",
        lat=30.2560,
        lon=120.1250,
        area="文新街道",
        opening_hours="Mo-Fr 09:00-21:00",
        facilities="厕所",
    )
    await stations.flag(flagged.id, REPORTER, "closed")
    await bot.core.service(TaskService).publish(
        TaskDraft(
            title="帮独居老人送菜",
            starts_at=bot.clock.now() + dt.timedelta(days=1),
            place_text="西溪花园",
            lat=30.2575,
            lon=120.1335,
            slots=3,
            points=10,
        ),
        MODERATOR,
    )

    page = await open_desk(browser, bot, init_data(bot, MODERATOR))
    await page.wait_for_selector("body[data-board-ready]")
    card = page.locator(f'.card[data-ref="{report.ref}"]')
    await card.wait_for()
    assert "文三路口有个大坑" in await card.inner_text()
    await shot(page, "board")

    await page.click("#tab-map")
    await page.wait_for_selector("body[data-map-ready]")
    await page.wait_for_selector("body[data-hotspots-ready]")
    assert await page.locator("path.hotspot").count() == 1
    marker = page.locator(f'.mk-report[data-ref="{report.ref}"]')
    await marker.wait_for()
    assert await marker.is_visible()
    await page.wait_for_timeout(300)
    await shot(page, "map")
    await marker.click()
    await page.wait_for_selector(".leaflet-popup-content")
    assert report.ref in await page.inner_text(".leaflet-popup-content")

    await page.click("#tab-board")
    await page.locator(f'.card[data-ref="{report.ref}"]').click()
    await page.wait_for_selector("#card-actions")
    assert "文三路口有个大坑" in await page.inner_text("#sheet-body")
    await shot(page, "card")
    await page.click('[data-action="resolve"]')
    await page.fill("#card-note", "已联系市政，坑已填平")
    await page.click("#card-confirm")
    await page.wait_for_selector("#toast-action")
    await shot(page, "resolved")
    await page.locator(f'#col-resolved .card[data-ref="{report.ref}"]').wait_for()

    stored = await bot.core.service(ReportService).get(report.id)
    assert stored.status == "resolved"
    # The reporter hears it once the undo grace has passed, exactly as a chat button would tell them.
    await reporter.expect_no_message(within=0.3)
    await bot.advance(seconds=31)
    notice = await reporter.expect_message(contains=report.ref)
    assert "已解决" in notice.text and "坑已填平" in notice.text

    assert await page.locator(".mk-task").count() == 1

    await page.click("#tab-stations")
    await page.wait_for_selector("body[data-stations-ready]")
    await page.fill("#station-q", "驿站")
    await page.click("#station-search button")
    await page.locator(".station", has_text="古荡驿站").wait_for()
    csv_text = "name,lat,lon,area\n新站,30.27,120.13,文新街道\n,30.2,120.1,\n坏坐标,130,30,\n"
    await page.set_input_files(
        "#import-file", files=[{"name": "stations.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}]
    )
    await page.wait_for_selector("#import-errors li")
    assert await page.locator("#import-errors li").count() == 2
    assert "新增 1" in await page.inner_text("#import-summary")
    await shot(page, "stations")
    await page.click("#import-commit")
    await page.wait_for_selector("#import-done")
    assert len(await stations.search("新站")) == 1
    await page.click("#tab-week")
    await page.wait_for_selector("body[data-week-ready]")
    assert await page.locator('[data-kpi="kpi_reports"] .v').inner_text() == "2"
    await page.wait_for_timeout(200)
    await shot(page, "week")
    await page.evaluate("document.getElementById('week').style.overflow = 'visible'")
    await page.evaluate("document.body.style.height = 'auto'; document.documentElement.style.height = 'auto'")
    await shot(page, "week-all", full=True)
    assert not page.problems, page.problems


async def test_undo_on_the_board_tells_the_reporter_nothing(bot, tg, browser):
    await bot.grant(MODERATOR, "moderator")
    reporter = tg.private(tg.user(REPORTER, "小王", language_code="zh"))
    report = await file_report(bot, reporter, REPORTER)
    reporter.skip()
    # In Telegram's dark theme, in English: the page takes its colours from themeParams.
    page = await open_desk(browser, bot, init_data(bot, MODERATOR, "Mod", lang="en"), theme=DARK)
    await page.locator(f'.card[data-ref="{report.ref}"]').click()
    assert await page.inner_text('[data-action="ack"]') == "Acknowledge"
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(23, 33, 43)"
    await page.click('[data-action="ack"]')
    await page.click("#toast-action")  # 撤销
    await page.locator(f'#col-new .card[data-ref="{report.ref}"]').wait_for()
    await bot.advance(seconds=60)
    await reporter.expect_no_message(within=0.3)
    await page.locator(f'.card[data-ref="{report.ref}"]').click()
    await page.wait_for_selector("#card-history li.undone")
    await shot(page, "undone")


@pytest.mark.parametrize("case", ["forged", "expired", "missing"])
async def test_bad_init_data_gets_401_in_the_browser(bot, tg, browser, case):
    await bot.grant(MODERATOR, "moderator")
    signed = init_data(bot, MODERATOR)
    if case == "forged":
        signed = signed.replace("%E7%A4%BE%E5%B7%A5", "%E7%AE%A1%E7%90%86")  # another name, same hash
        assert signed != init_data(bot, MODERATOR)
    elif case == "expired":
        signed = init_data(bot, MODERATOR, age=dt.timedelta(hours=25))
    else:
        signed = ""
    page = await open_desk(browser, bot, signed)
    await page.wait_for_selector('body[data-denied="401"]')
    assert await page.locator("#tabs button").count() == 0
    await shot(page, f"401-{case}")


async def test_a_courier_gets_403_in_the_browser(bot, tg, browser):
    page = await open_desk(browser, bot, init_data(bot, COURIER, "小哥"))
    await page.wait_for_selector('body[data-denied="403"]')
    assert "版主" in await page.inner_text("#status")
    await shot(page, "403-courier")
