"""`xiaoge-bot` command line: run, migrate, sandbox, role, stations, reports, db."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import logging
import sqlite3
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bot.core.config import Config, ConfigError, load_config, token_looks_valid

log = logging.getLogger("xiaoge")

EXIT_CONFIG = 2
EXIT_LEASE_LOST = 3  # an active instance lost its lease (cluster): its supervisor starts it again
DEFAULT_CONFIG = "config.toml"

NO_TOKEN = (
    "No bot token: create a bot with @BotFather in Telegram (send /newbot), then put the token in "
    '{path} under [telegram] token = "..." or set XIAOGE_BOT_TOKEN.'
)


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "apscheduler", "telegram.ext.Application", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(coro: Coroutine[Any, Any, int | None]) -> int:
    try:
        return asyncio.run(coro) or 0
    except KeyboardInterrupt:
        return 130
    except sqlite3.Error as exc:  # e.g. storage.path is a folder, or on a read-only disk
        print(f"storage.path: cannot use the database: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from storage.pg import DatabaseUnavailable

        if isinstance(exc, DatabaseUnavailable):  # a wrong URL, no server, no such database
            print(f"storage.url: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        raise
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


async def _open_db(config: Config) -> Any:
    from storage.engine import open_database

    db = await open_database(config.storage.path, config.storage.url).open()
    await db.migrate()
    return db


# -- commands -----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    if not config.telegram.token:
        print(NO_TOKEN.format(path=args.config), file=sys.stderr)
        return EXIT_CONFIG
    if not token_looks_valid(config.telegram.token):
        print(
            f"telegram.token: does not look like a bot token (digits:letters), check {args.config}",
            file=sys.stderr,
        )
        return EXIT_CONFIG

    async def main() -> int:
        from telegram.error import InvalidToken, TelegramError

        from bot.core.runtime import Runtime

        try:
            async with Runtime(config) as runtime:
                await runtime.wait_closed()
            if runtime.lost_lease:
                print(
                    "cluster: lost the lease to another instance; stopped (start again to wait as standby)",
                    file=sys.stderr,
                )
                return EXIT_LEASE_LOST
        except InvalidToken:
            print(
                f"telegram.token: Telegram refused the token; check it with @BotFather ({args.config})",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        except TelegramError as exc:
            print(
                f"cannot reach the Bot API at {config.telegram.base_url}: {exc}"
                " (check the network, or telegram.base_url)",
                file=sys.stderr,
            )
            return 1
        return 0

    return _run(main())


def cmd_migrate(args: argparse.Namespace, config: Config) -> int:
    async def main() -> int:
        from storage.engine import open_database

        async with open_database(config.storage.path, config.storage.url) as db:
            applied = await db.migrate()
            version = await db.schema_version()
        print(
            f"{db.path}: schema version {version}"
            + (f" (applied {', '.join(applied)})" if applied else " (up to date)")
        )
        return 0

    return _run(main())


def cmd_sandbox(args: argparse.Namespace, config: Config) -> int:
    from bot.sandbox import run_sandbox

    return _run(run_sandbox(config, role=args.role, lang=args.lang, stations=args.stations))


def cmd_role(args: argparse.Namespace, config: Config) -> int:
    async def main() -> int:
        from storage import roles as roles_repo

        db = await _open_db(config)
        try:
            now = dt.datetime.now(dt.UTC)
            if args.action == "list":
                grants = await roles_repo.all_grants(db)
                for g in grants:
                    print(f"{g.user_id}\t{g.role}\t{g.area or '*'}")
                print(f"admins (config): {', '.join(map(str, config.bot.admins)) or '-'}")
                return 0
            if args.role_name not in ("moderator", "captain", "station_keeper"):
                print(
                    f"unknown role {args.role_name!r}: use moderator, captain or station_keeper",
                    file=sys.stderr,
                )
                return EXIT_CONFIG
            if args.action == "grant":
                changed = await roles_repo.grant(
                    db,
                    user_id=args.user_id,
                    role=args.role_name,
                    area=args.area or "",
                    granted_by=None,
                    now=now,
                )
                print("granted" if changed else "already held")
            else:
                removed = await roles_repo.revoke(
                    db, user_id=args.user_id, role=args.role_name, area=args.area or ""
                )
                print("revoked" if removed else "not held")
            return 0
        finally:
            await db.close()

    return _run(main())


def _feature(module: str, attr: str) -> Callable[..., Any] | None:
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def cmd_stations(args: argparse.Namespace, config: Config) -> int:
    if args.action == "import" and not Path(args.file).is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 1

    async def main() -> int:
        from bot.core.clock import SystemClock
        from bot.core.container import Core
        from bot.core.i18n import Catalog

        db = await _open_db(config)
        core = Core(config, SystemClock(), db, Catalog.load(config.bot.default_language))
        try:
            if args.action == "import":
                importer = _feature("bot.stations.importer", "import_file")
                if importer is None:
                    print("stations import is not available in this build", file=sys.stderr)
                    return 1
                from bot.stations.importer import StationImportError

                path = Path(args.file)
                try:
                    result = await importer(core, path, args.crs)
                except StationImportError as exc:  # the file as a whole: unreadable, no header ...
                    print(f"{args.file}: {exc}", file=sys.stderr)
                    return 1
                print(result.summary() if hasattr(result, "summary") else result)
                return 0 if not getattr(result, "errors", None) else 1
            exporter = _feature("bot.stations.importer", "export_csv")
            if exporter is None:
                print("stations export is not available in this build", file=sys.stderr)
                return 1
            to_stdout = args.output == "-"
            count = await exporter(
                db, sys.stdout if to_stdout else args.output, include_inactive=args.include_inactive
            )
            where = "standard output" if to_stdout else args.output
            print(f"exported {count} station(s) to {where}", file=sys.stderr)
            return 0
        finally:
            await db.close()

    return _run(main())


def cmd_reports(args: argparse.Namespace, config: Config) -> int:
    async def main() -> int:
        from bot.core.clock import SystemClock
        from bot.core.container import Core
        from bot.core.i18n import Catalog

        try:
            since = dt.date.fromisoformat(args.since) if args.since else None
        except ValueError:
            print(f"--since: not a date (YYYY-MM-DD): {args.since!r}", file=sys.stderr)
            return EXIT_CONFIG
        exporter = _feature("bot.reports.service", "export_reports")
        if exporter is None:
            print("reports export is not available in this build", file=sys.stderr)
            return 1
        db = await _open_db(config)
        try:
            core = Core(config, SystemClock(), db, Catalog.load(config.bot.default_language))
            count = await exporter(core, since, args.output)
            print(f"exported {count} report(s) to {args.output}", file=sys.stderr)
            return 0
        finally:
            await db.close()

    return _run(main())


def cmd_db(args: argparse.Namespace, config: Config | None) -> int:
    async def main() -> int:
        import asyncpg

        from storage.copy import CopyRefused, copy_database
        from storage.pg import DatabaseUnavailable

        try:
            result = await copy_database(args.source, args.target, force=args.force)
        except (CopyRefused, DatabaseUnavailable, sqlite3.Error) as exc:  # nothing was written
            print(f"db copy: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        except asyncpg.PostgresError as exc:  # the copy's transaction was rolled back
            print(f"db copy: PostgreSQL refused the copy, nothing was written: {exc}", file=sys.stderr)
            return 1
        print("\n".join(result.lines()))
        return 0 if result.ok else 1

    return _run(main())


# -- parser -------------------------------------------------------------------------------------


def _late_config() -> argparse.ArgumentParser:
    """--config accepted after a nested action too (`role grant 1 moderator --config x.toml`)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", default=argparse.SUPPRESS, help="config file")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xiaoge-bot", description="小哥助手 xiaoge-bot: a Telegram bot for courier communities"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, help_text: str, func: Callable[[argparse.Namespace, Config], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
        p.set_defaults(func=func)
        return p

    add("run", "run the bot (polling or webhook, as configured)", cmd_run)
    add("migrate", "create or upgrade the database", cmd_migrate)
    sandbox = add(
        "sandbox", "chat with the bot in this terminal, against the built-in fake Telegram", cmd_sandbox
    )
    sandbox.add_argument(
        "--role",
        choices=["courier", "moderator", "captain", "admin", "station_keeper"],
        default="courier",
        help="who you are at start (switch with :as in the sandbox)",
    )
    sandbox.add_argument(
        "--lang", choices=["zh", "en"], default="zh", help="everyone's language (wins over an earlier /lang)"
    )
    sandbox.add_argument(
        "--stations", default="data/stations.demo.csv", help="stations CSV to load ('' for none)"
    )

    role = add("role", "grant, revoke or list roles", cmd_role)
    role_sub = role.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("grant", "revoke"):
        p = role_sub.add_parser(action, help=f"{action} a role", parents=[_late_config()])
        p.add_argument("user_id", type=int, help="Telegram user id")
        p.add_argument("role_name", metavar="role", help="moderator | captain | station_keeper")
        p.add_argument("area", nargs="?", default="", help="area tag (default: all areas)")
    role_sub.add_parser("list", help="list granted roles", parents=[_late_config()])

    stations = add("stations", "import or export warm stations", cmd_stations)
    st_sub = stations.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = st_sub.add_parser("import", help="import stations from CSV or GeoJSON", parents=[_late_config()])
    imp.add_argument("file")
    imp.add_argument(
        "--crs",
        choices=["wgs84", "gcj02", "bd09"],
        default="wgs84",
        help="coordinates of the file (default wgs84)",
    )
    exp = st_sub.add_parser("export", help="export stations as CSV", parents=[_late_config()])
    exp.add_argument("--output", "-o", default="-", help="file to write ('-' = stdout)")
    exp.add_argument(
        "--include-inactive",
        action="store_true",
        help="also deactivated stations (active column 0; an import creates new ones deactivated)",
    )

    reports = add("reports", "export reports", cmd_reports)
    rp_sub = reports.add_subparsers(dest="action", required=True, metavar="ACTION")
    rexp = rp_sub.add_parser(
        "export", help="export reports as CSV (UTF-8 with BOM)", parents=[_late_config()]
    )
    rexp.add_argument("--since", help="first day, YYYY-MM-DD")
    rexp.add_argument("--output", "-o", default="-", help="file to write ('-' = stdout)")

    db = sub.add_parser("db", help="database maintenance", description="database maintenance")
    db.set_defaults(func=cmd_db, needs_config=False)
    db_sub = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    dbc = db_sub.add_parser(
        "copy",
        help="copy a deployment's data to another database (e.g. SQLite to PostgreSQL)",
        description=(
            "Copy every table to another database: the target is migrated first, then filled in one"
            " transaction; row counts are compared per table afterwards (exit 1 on a mismatch)."
            " Running it again adds only what is missing. A target holding other data is refused"
            " (exit 2) unless --force."
        ),
    )
    dbc.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="sqlite:PATH or postgresql://..."
    )
    dbc.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="postgresql://... or sqlite:PATH"
    )
    dbc.add_argument(
        "--force", action="store_true", help="replace what the target holds (PostgreSQL targets)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not getattr(args, "needs_config", True):
        return args.func(args, None)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return args.func(args, config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
