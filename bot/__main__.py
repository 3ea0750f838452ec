"""The project's command line: `python -m bot COMMAND`.

run         set up the database, train if needed, start every service, print the chat URL
serve       start the gateway only (the web chat)
train       train the Rasa model unless one for the current data exists
db upgrade  apply the database migrations
kb seed     load data/kb/ into an empty database
kb import FILE
            validate a CSV or YAML file of service points / insurance products and upsert it
            (a file with any bad row is rejected whole, each bad row listed)
kb export [--format yaml|csv] [--kind service_points|insurance_products] [-o FILE]
            write the knowledge base in the format `kb import` reads
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.settings import Settings


def prepare_database(settings: Settings) -> None:
    from bot.db.engine import session_factory
    from bot.db.migrate import upgrade
    from bot.db.seed import seed_if_empty

    upgrade(settings.database_url)
    with session_factory(settings.database_url)() as session:
        added = seed_if_empty(session)
    if added:
        print(f"Seeded {added} records (service points, insurance products) from data/kb/")


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

            if not args.file:
                print("kb import needs a FILE (.csv, .yml or .yaml)", file=sys.stderr)
                return 2
            try:
                report = import_file(session, Path(args.file), show_progress=True)
            except ImportRejected as exc:
                print(f"Rejected {args.file}; nothing was imported:\n{exc}", file=sys.stderr)
                return 1
            print(f"Imported {args.file}: {report}")
            return 0
        from bot.kb.exporter import export_csv, export_yaml

        output = Path(args.output) if args.output else None
        fmt = args.format or ("csv" if output and output.suffix.lower() == ".csv" else "yaml")
        text = export_csv(session, args.kind) if fmt == "csv" else export_yaml(session)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"Exported to {output}")
    return 0


def cmd_run(settings: Settings) -> int:
    from bot.model import ensure_trained
    from bot.stack import services
    from bot.supervisor import supervise

    prepare_database(settings)
    model = ensure_trained()

    def announce() -> None:
        print(
            f"\nAll services are up. Open the chat: {settings.chat_url}\nPress Ctrl-C to stop.\n",
            flush=True,
        )

    return asyncio.run(supervise(services(settings, model), announce))


def cmd_serve(settings: Settings) -> int:
    from aiohttp import web

    from bot.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    web.run_app(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        print=lambda *_: None,
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
    commands.add_parser("serve", help="start the gateway only")
    commands.add_parser("train", help="train the model if the data changed")
    db = commands.add_parser("db", help="database administration")
    db.add_argument("action", choices=["upgrade"])
    kb = commands.add_parser("kb", help="knowledge base administration")
    kb.add_argument("action", choices=["seed", "import", "export"])
    kb.add_argument("file", nargs="?", help="kb import: the CSV or YAML file")
    kb.add_argument("--format", choices=["yaml", "csv"], help="kb export: default yaml")
    kb.add_argument(
        "--kind",
        choices=["service_points", "insurance_products"],
        default="service_points",
        help="kb export --format csv: which table (one per CSV file)",
    )
    kb.add_argument("-o", "--output", help="kb export: file to write (default: stdout)")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if args.command == "run":
        return cmd_run(settings)
    if args.command == "serve":
        return cmd_serve(settings)
    if args.command == "train":
        from bot.model import ensure_trained

        ensure_trained()
        return 0
    if args.command == "db":
        from bot.db.migrate import upgrade

        upgrade(settings.database_url)
        print("Database is at the latest migration.")
        return 0
    if args.command == "kb":
        return cmd_kb(settings, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
