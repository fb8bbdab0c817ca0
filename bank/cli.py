"""`expo-bank`: run the mock bank and administer its database.

    expo-bank serve                      # 127.0.0.1:8766, var/bank.sqlite3, API docs at /docs
    expo-bank verify --db var/bank.sqlite3
    expo-bank open-merchant --name "Penang Batik" --currency MYR --reference booth-7
    expo-bank accounts --db var/bank.sqlite3   # balances, welcome grants, escrows, collectibles
    expo-bank serve --db postgresql://user:pw@host:5432/expo   # the same bank on PostgreSQL

Every option has an EXPO_BANK_* environment variable (shown in --help). Without a platform key,
``serve`` creates one in ``platform.key`` beside the database (mode 0600) for the world server to read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from pathlib import Path

from . import fx
from .audit import audit
from .bodylimit import DEFAULT_MAX_BODY
from .errors import BankError
from .ratelimit import Limit
from .service import Bank, BankConfig, Principal, Role
from .sqlite_store import SQLiteStorage
from .storage import Storage, StorageUnavailable

DEFAULT_DB = "var/bank.sqlite3"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"EXPO_BANK_{name}", default)


def _env_str(name: str, default: str) -> str:
    return os.environ.get(f"EXPO_BANK_{name}", default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(f"EXPO_BANK_{name}", default))


def _secret(value: str | None, path: str | None, default_path: Path, what: str) -> str:
    """A secret given directly, read from a file, or generated into ``default_path`` (mode 0600)."""
    if value:
        return value
    file = Path(path) if path else default_path
    if not file.exists():
        if path:
            raise SystemExit(f"expo-bank: no such file {file} for the {what}")
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        logging.getLogger("bank").warning("created a new %s in %s", what, file)
    text = file.read_text().strip()
    if not text:
        raise SystemExit(f"expo-bank: {file} is empty; it should hold the {what}")
    return text


def _limit(text: str) -> Limit:
    burst, sep, rate = text.partition("/")
    try:
        return Limit(int(burst), float(rate)) if sep else Limit(int(burst), float(burst))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected BURST/PER_SECOND, e.g. 60/1") from None


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=_env("DB", DEFAULT_DB),
                   help="SQLite database file, or a postgresql:// URL [EXPO_BANK_DB] (default: %(default)s)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="expo-bank", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP API (docs at /docs)")
    _add_db(serve)
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="[EXPO_BANK_HOST] (default: %(default)s)")
    serve.add_argument("--port", type=int, default=_env_int("PORT", 8766),
                       help="[EXPO_BANK_PORT] (default: %(default)s)")
    serve.add_argument("--platform-key", default=_env("PLATFORM_KEY"),
                       help="the world server's credential [EXPO_BANK_PLATFORM_KEY]")
    serve.add_argument("--platform-key-file", default=_env("PLATFORM_KEY_FILE"),
                       help="read the platform key from this file [EXPO_BANK_PLATFORM_KEY_FILE] "
                            "(default: platform.key beside the database, created if missing)")
    serve.add_argument("--secrets-dir", default=_env("SECRETS_DIR"),
                       help="where platform.key and webhook.secret are kept when not given [EXPO_BANK_SECRETS_DIR] "
                            "(default: beside a SQLite database; var/ for a PostgreSQL URL)")
    serve.add_argument("--webhook-url", action="append", default=None,
                       help="POST signed events here; repeatable [EXPO_BANK_WEBHOOK_URLS, comma-separated]")
    serve.add_argument("--webhook-secret", default=_env("WEBHOOK_SECRET"),
                       help="HMAC key for Expo-Signature [EXPO_BANK_WEBHOOK_SECRET]")
    serve.add_argument("--webhook-secret-file", default=_env("WEBHOOK_SECRET_FILE"),
                       help="read the webhook secret from this file [EXPO_BANK_WEBHOOK_SECRET_FILE] "
                            "(default: webhook.secret beside the database, created if needed)")
    serve.add_argument("--welcome-usd", type=int, default=_env_int("WELCOME_USD", 1000),
                       help="welcome balance of a new visitor account, in USD converted to its currency "
                            "[EXPO_BANK_WELCOME_USD] (default: %(default)s)")
    serve.add_argument("--welcome-budget-usd", type=int, default=_env_int("WELCOME_BUDGET_USD", 2_000_000),
                       help="all welcome grants of the expo together, in USD; later accounts open with nothing "
                            "[EXPO_BANK_WELCOME_BUDGET_USD] (default: %(default)s)")
    serve.add_argument("--open-limit", type=_limit, default=_limit(_env_str("OPEN_LIMIT", "60/1")),
                       help="anonymous account openings per client address, as BURST/PER_SECOND "
                            "[EXPO_BANK_OPEN_LIMIT] (default: 60/1)")
    serve.add_argument("--open-limit-overall", type=_limit, default=_limit(_env_str("OPEN_LIMIT_OVERALL", "300/20")),
                       help="anonymous account openings from all addresses together, as BURST/PER_SECOND "
                            "[EXPO_BANK_OPEN_LIMIT_OVERALL] (default: 300/20)")
    serve.add_argument("--max-body-bytes", type=int, default=_env_int("MAX_BODY_BYTES", DEFAULT_MAX_BODY),
                       help="largest request body accepted; larger ones get 413 before they are read "
                            "[EXPO_BANK_MAX_BODY_BYTES] (default: %(default)s)")
    serve.add_argument("--holding-days", type=int, default=_env_int("HOLDING_DAYS", 180),
                       help="days a collectible is held before its holder may give it away "
                            "[EXPO_BANK_HOLDING_DAYS] (default: %(default)s)")
    serve.add_argument("--intent-ttl", type=int, default=_env_int("INTENT_TTL", 900),
                       help="seconds until an unconfirmed payment intent expires [EXPO_BANK_INTENT_TTL] "
                            "(default: %(default)s)")
    serve.add_argument("--log-level", default=_env("LOG_LEVEL", "info"), choices=["debug", "info", "warning", "error"])

    verify = sub.add_parser("verify", help="re-check the hash chain, every balance, payment, escrow and "
                                           "collectible; exit 1 on any problem")
    _add_db(verify)
    verify.add_argument("--json", action="store_true", help="print the report as JSON")

    merchant = sub.add_parser("open-merchant", help="create a merchant account (prints it as JSON)")
    _add_db(merchant)
    merchant.add_argument("--name", required=True)
    merchant.add_argument("--currency", required=True, choices=fx.CURRENCIES, metavar="CODE")
    merchant.add_argument("--reference", help="your id for this merchant; reusing it returns the same account")

    visitor = sub.add_parser("open-account", help="create a visitor account (prints it and its token as JSON)")
    _add_db(visitor)
    visitor.add_argument("--name", required=True)
    visitor.add_argument("--currency", required=True, choices=fx.CURRENCIES, metavar="CODE")

    fund = sub.add_parser("fund", help="grant money to an account from the bank's funding account")
    _add_db(fund)
    fund.add_argument("--account", required=True)
    fund.add_argument("--amount", type=int, required=True, help="minor units")

    accounts = sub.add_parser("accounts", help="list accounts and balances")
    _add_db(accounts)
    accounts.add_argument("--all", action="store_true", help="include the bank's own accounts")
    return parser


def _is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def open_storage(db: str) -> Storage:
    """The storage a ``--db`` names: a PostgreSQL URL, or else a SQLite file."""
    if _is_postgres(db):
        from .pg_store import PgStorage  # psycopg is imported only when asked for

        return PgStorage(db)
    return SQLiteStorage(db)


def _secrets_dir(db: str) -> Path:
    """Where the platform key and webhook secret default to: beside a SQLite file; for a
    PostgreSQL URL, beside the default database (``var/``)."""
    return Path(DEFAULT_DB if _is_postgres(db) else db).parent


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .api import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "debug":  # httpx says every webhook POST at info; the delivery worker logs the failures
        logging.getLogger("httpx").setLevel(logging.WARNING)
    access = logging.getLogger("bank.access")  # its messages are JSON lines already: print them bare
    bare = logging.StreamHandler()
    bare.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(bare)
    access.propagate = False
    db_dir = Path(args.secrets_dir) if args.secrets_dir else _secrets_dir(args.db)
    platform_key = _secret(args.platform_key, args.platform_key_file, db_dir / "platform.key", "platform key")
    urls = args.webhook_url or [u.strip() for u in (_env("WEBHOOK_URLS") or "").split(",") if u.strip()]
    secret = _secret(args.webhook_secret, args.webhook_secret_file, db_dir / "webhook.secret",
                     "webhook secret") if urls else None
    config = BankConfig(welcome_usd=args.welcome_usd, intent_ttl_seconds=args.intent_ttl, webhook_urls=tuple(urls),
                        welcome_budget_usd=args.welcome_budget_usd, open_per_address=args.open_limit,
                        open_overall=args.open_limit_overall, holding_period_days=args.holding_days)
    storage = open_storage(args.db)
    try:
        app = create_app(Bank(storage, config=config), platform_key, webhook_secret=secret,
                         max_body_bytes=args.max_body_bytes)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    finally:
        storage.close()
    return 0


def _verify(args: argparse.Namespace) -> int:
    if not _is_postgres(args.db) and not Path(args.db).exists():
        print(f"expo-bank verify: no database at {args.db}", file=sys.stderr)
        return 1
    storage = open_storage(args.db)
    try:
        report = audit(storage)
    finally:
        storage.close()
    if args.json:
        print(json.dumps({"ok": report.ok, "entries": report.entries, "transactions": report.transactions,
                          "accounts": report.accounts, "items": len(report.holders), "problems": report.problems},
                         indent=2))
    else:
        print(f"{args.db}: {report.entries} entries, {report.transactions} transactions, {report.accounts} accounts")
        print(f"{len(report.holders)} collectible items, each with one holder")
        print(f"hash chain, balances, per-currency sums, payments, escrows and items: "
              f"{'OK' if report.ok else 'PROBLEMS'}")
        for problem in report.problems:
            print(f"  - {problem}")
    return 0 if report.ok else 1


def _admin(args: argparse.Namespace) -> int:
    storage = open_storage(args.db)
    try:
        bank = Bank(storage)
        if args.command == "open-merchant":
            reply = bank.create_merchant(Principal(Role.PLATFORM), args.name, args.currency, args.reference, None)
            print(json.dumps(reply.body, indent=2))
        elif args.command == "open-account":
            print(json.dumps(bank.open_account(args.name, args.currency, None).body, indent=2))
        elif args.command == "fund":
            print(bank.grant(args.account, args.amount))
        else:
            with storage.reading() as tx:
                for a in tx.accounts():
                    if args.all or not a.kind.internal:
                        print(f"{a.id:34} {a.kind:9} {a.currency} {a.balance:>20} {a.display_name}")
                print(f"welcome grants: USD {tx.welcome_granted_usd():,} granted in all")
                pending = [p for p in tx.all_pending() if p.status == "pending"]
                print(f"escrows: {len(pending)} pending; collectibles: {sum(1 for _ in tx.all_items())} items held")
        return 0
    except BankError as exc:
        print(f"expo-bank {args.command}: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        storage.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "verify":
            return _verify(args)
        return _admin(args)
    except StorageUnavailable as exc:
        print(f"expo-bank {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
