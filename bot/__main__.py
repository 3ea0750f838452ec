"""The project's command line: `python -m bot COMMAND`.

run         set up the database, train if needed, start every service, print the chat URL
run-cluster start the scale-out topology on this machine: PostgreSQL + Redis, 2 Rasa replicas,
            the action server with several workers, 2 gateways (see bot/ops/cluster.py)
serve       start the gateway only (the web chat)
train       train the Rasa model unless one for the current data exists
db upgrade  apply the database migrations
kb seed     load data/kb/ into an empty database
kb import FILE
            validate a file and upsert it: service points / insurance products (CSV, YAML) or
            knowledge items (XLSX, CSV or YAML with key and question columns); a file with any
            bad row is rejected whole, each bad row listed
kb export [--format yaml|csv|xlsx] [--kind service_points|insurance_products|knowledge] [-o FILE]
            write the knowledge base in the format `kb import` reads
staff add USERNAME --name 显示名 [--role agent|admin|editor] [--password-stdin]
            create a staff console account (password asked twice, or one line from stdin)
staff list  list the staff accounts
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.ops.security import startup_check
from bot.settings import Settings


def prepare_database(settings: Settings) -> None:
    from bot.db.engine import session_factory
    from bot.db.migrate import upgrade
    from bot.kb.seed import seed_if_empty

    upgrade(settings.database_url)
    with session_factory(settings.database_url)() as session:
        added = seed_if_empty(session)
    if added:
        print(f"Seeded {added} records (service points, insurance products, knowledge items)")
    from bot.knowledge.embed import DEFAULT_CACHE, Embedder
    from bot.knowledge.live import warm_up

    print("Preparing the knowledge search (the first time takes about a minute)…", flush=True)
    warm_up(settings.database_url, Embedder(DEFAULT_CACHE))


def cmd_kb(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.db.engine import session_factory
    from bot.db.migrate import upgrade

    if args.action == "seed":
        prepare_database(settings)
        return 0
    upgrade(settings.database_url)
    with session_factory(settings.database_url)() as session:
        if args.action == "import":
            from bot.kb.importer import ImportRejected, import_file
            from bot.kb.knowledge_file import import_items, is_knowledge_file

            if not args.file:
                print("kb import needs a FILE (.xlsx, .csv, .yml or .yaml)", file=sys.stderr)
                return 2
            path = Path(args.file)
            try:
                if is_knowledge_file(path.name, path.read_bytes()):
                    report = import_items(session, path.name, path.read_bytes(), by="cli")
                else:
                    report = import_file(session, path, show_progress=True)
            except ImportRejected as exc:
                print(f"Rejected {args.file}; nothing was imported:\n{exc}", file=sys.stderr)
                return 1
            print(f"Imported {args.file}: {report}")
            return 0
        output = Path(args.output) if args.output else None
        suffix = output.suffix.lower().lstrip(".") if output else ""
        if args.kind == "knowledge":
            from bot.kb import knowledge_file

            records = knowledge_file.export_records(session)
            fmt = args.format or (suffix if suffix in ("xlsx", "csv") else "csv")
            data = (knowledge_file.export_xlsx if fmt == "xlsx" else knowledge_file.export_csv)(
                records
            )
        else:
            from bot.kb.exporter import export_csv, export_yaml

            fmt = args.format or ("csv" if suffix == "csv" else "yaml")
            text = export_csv(session, args.kind) if fmt == "csv" else export_yaml(session)
            data = text.encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        print(f"Exported to {output}")
    return 0


def cmd_staff(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db.conversations import utcnow
    from bot.db.engine import session_factory
    from bot.db.migrate import upgrade
    from bot.staff import accounts

    upgrade(settings.database_url)
    with session_factory(settings.database_url)() as session:
        if args.action == "list":
            rows = accounts.list_accounts(session)
            if not rows:
                print("No staff accounts yet: python -m bot staff add USERNAME --name 显示名")
            now = utcnow()
            for account in rows:
                state = "active" if account.active else "inactive"
                if account.locked_until is not None and account.locked_until > now:
                    state += f", locked until {account.locked_until:%Y-%m-%d %H:%M} UTC"
                print(f"{account.username}\t{account.display_name}\t{account.role}\t{state}")
            return 0
        if not args.username or not args.name:
            print("staff add needs USERNAME and --name", file=sys.stderr)
            return 2
        password = _read_new_password(args.password_stdin)
        if password is None:
            return 1
        try:
            account = accounts.create_account(
                session, args.username, args.name, password, args.role
            )
        except accounts.AccountError as exc:
            print(f"Not created: {exc}", file=sys.stderr)
            return 1
    print(f"Created {account.role} account {account.username} ({account.display_name}).")
    return 0


def _read_new_password(from_stdin: bool) -> str | None:
    """The new password: one line from stdin, or typed twice at a hidden prompt."""
    from getpass import getpass

    from bot.staff.accounts import MIN_PASSWORD_LENGTH

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass("Password: ")
        if getpass("Password again: ") != password:
            print("The passwords differ; nothing was created.", file=sys.stderr)
            return None
    if len(password) < MIN_PASSWORD_LENGTH:
        print(
            f"The password is too short (at least {MIN_PASSWORD_LENGTH} characters); "
            "nothing was created.",
            file=sys.stderr,
        )
        return None
    return password


def cmd_run(settings: Settings) -> int:
    from bot.ops.stack import services
    from bot.ops.supervisor import supervise
    from bot.rasa.model import ensure_trained

    if startup_check(settings):
        return 2  # refused: every problem is printed (bot/ops/security.py)
    prepare_database(settings)
    model = ensure_trained()

    def announce() -> None:
        print(
            f"\nAll services are up. Open the chat: {settings.chat_url}\nPress Ctrl-C to stop.\n",
            flush=True,
        )

    return asyncio.run(supervise(services(settings, model), announce))


def cmd_run_cluster(settings: Settings) -> int:
    from dataclasses import replace

    from bot.db.engine import session_factory
    from bot.ops.cluster import (
        ClusterConfig,
        ClusterError,
        budget_report,
        check_redis,
        ensure_database,
        services_cluster,
    )
    from bot.ops.supervisor import supervise
    from bot.rasa.model import ensure_trained

    try:
        config = ClusterConfig.from_settings(settings)
        if ensure_database(config.database_url):
            print(f"Created the database {config.database_url}")
        check_redis(config.redis_url)
        print("PostgreSQL connections (pool size + overflow per process):")
        print(budget_report(config))
    except ClusterError as exc:
        print(f"Cannot start the cluster: {exc}", file=sys.stderr)
        return 1
    settings = replace(settings, database_url=config.database_url)
    prepare_database(settings)
    session_factory(settings.database_url).kw["bind"].dispose()  # the supervisor keeps none
    model = ensure_trained()
    topology = services_cluster(settings, model, config)
    gateways = [
        s.health_url.removesuffix("healthz") for s in topology if s.name.startswith("gateway")
    ]

    def announce() -> None:
        print(
            f"\nAll {len(topology)} services are up. Open the chat: {', '.join(gateways)}\n"
            "(put a load balancer with sticky sessions in front of them, see README "
            '"Scale-out").\nPress Ctrl-C to stop.\n',
            flush=True,
        )

    return asyncio.run(supervise(topology, announce))


def cmd_serve(settings: Settings) -> int:
    from aiohttp import web

    from bot.app import create_app
    from bot.domain.masking import install_log_masking
    from bot.web.access_log import PathOnlyAccessLogger

    if startup_check(settings):
        return 2  # refused: every problem is printed (bot/ops/security.py)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_log_masking()  # no phone or ID-card number reaches the gateway's logs
    web.run_app(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        print=lambda *_: None,
        access_log_class=PathOnlyAccessLogger,  # no query string: WeChat signs in it
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start everything")
    commands.add_parser("run-cluster", help="start the scale-out topology (PostgreSQL, Redis)")
    commands.add_parser("serve", help="start the gateway only")
    commands.add_parser("train", help="train the model if the data changed")
    db = commands.add_parser("db", help="database administration")
    db.add_argument("action", choices=["upgrade"])
    kb = commands.add_parser("kb", help="knowledge base administration")
    kb.add_argument("action", choices=["seed", "import", "export"])
    kb.add_argument("file", nargs="?", help="kb import: the CSV or YAML file")
    kb.add_argument(
        "--format",
        choices=["yaml", "csv", "xlsx"],
        help="kb export: yaml (default), csv; knowledge items: csv (default) or xlsx",
    )
    kb.add_argument(
        "--kind",
        choices=["service_points", "insurance_products", "knowledge"],
        default="service_points",
        help="kb export: which table (one per CSV file); knowledge = the knowledge items",
    )
    kb.add_argument("-o", "--output", help="kb export: file to write (default: stdout)")
    staff = commands.add_parser("staff", help="staff console accounts")
    staff.add_argument("action", choices=["add", "list"])
    staff.add_argument("username", nargs="?", help="staff add: the login name")
    staff.add_argument("--name", help="staff add: the name citizens see, e.g. 王小明")
    staff.add_argument("--role", choices=["agent", "admin", "editor"], default="agent")
    staff.add_argument(
        "--password-stdin", action="store_true", help="staff add: read the password from stdin"
    )
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if args.command == "run":
        return cmd_run(settings)
    if args.command == "run-cluster":
        return cmd_run_cluster(settings)
    if args.command == "serve":
        return cmd_serve(settings)
    if args.command == "train":
        from bot.rasa.model import ensure_trained

        ensure_trained()
        return 0
    if args.command == "db":
        from bot.db.migrate import upgrade

        upgrade(settings.database_url)
        print("Database is at the latest migration.")
        return 0
    if args.command == "kb":
        return cmd_kb(settings, args)
    if args.command == "staff":
        return cmd_staff(settings, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
