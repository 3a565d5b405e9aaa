"""The `offsite` command line: run, migrate, keys, simulate, audit."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from api.auth import KeyRequestError, create_key
from ingest import simulate
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedPostgres
from offsite.migrations import MigrationError, prepare_database
from offsite.settings import ConfigError, Settings, load_settings

log = logging.getLogger("offsite")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_file=args.config)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one `offsite run` uses.

    An embedded server this command started is stopped afterwards; one it found running
    (a live `offsite run`) is left alone.
    """
    if settings.database.url:
        yield settings.database.url
        return
    pg = EmbeddedPostgres(settings.state_dir / "postgres")
    pg.start()
    try:
        yield pg.url
    finally:
        if not pg.adopted:
            pg.stop()


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    app = OffsiteApp(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: app.reload())
    app.start()
    e = app.endpoints
    lines = [
        "offsite is running",
        f"  HTTP      {e.http}  (API {e.http}/docs, metrics {e.http}/metrics)",
        f"  MQTT      {e.broker}  (devices publish to offsite/v1/devices/<id>/telemetry)",
        f"  database  {e.database}",
    ]
    lines += [f"  embedded  {what}" for what in e.embedded]
    lines.append("Ctrl-C stops it.")
    print("\n".join(lines), flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        print("offsite: stopping", file=sys.stderr, flush=True)
        app.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with _database(settings) as url, psycopg.connect(url) as conn:
            caps = prepare_database(conn, settings)
        kind = "TimescaleDB hypertables" if caps.timescaledb else "native partitions"
        print(f"database is up to date ({kind})")
        return 0
    except (MigrationError, psycopg.OperationalError) as err:
        print(f"offsite migrate: {err}", file=sys.stderr)
        return 1


def cmd_keys_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with _database(settings) as url, psycopg.connect(url) as conn:
            prepare_database(conn, settings)
            key = create_key(conn, args.department, args.role, args.name or "")
        print(key)
        print(
            f"created a {args.role} key for {args.department}; it is shown only once",
            file=sys.stderr,
        )
        return 0
    except KeyRequestError as err:
        print(f"offsite keys create: {err}", file=sys.stderr)
        return 2


def _public_key(settings: Settings) -> str | None:
    from alerts import checkpoints

    key = settings.alerts.audit_signing_key
    return (
        None
        if key is None
        else checkpoints.public_hex(checkpoints.signing_key(key.get_secret_value()))
    )


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from alerts import checkpoints
    from alerts.cli import verify_command

    settings = _settings(args)
    try:
        exported = []
        if args.checkpoints:
            with open(args.checkpoints, encoding="utf-8") as f:
                exported = checkpoints.read_export(f)
        public_key = args.public_key or _public_key(settings)
        with _database(settings) as url, psycopg.connect(url) as conn:
            return verify_command(conn, exported=exported, public_key=public_key)
    except (OSError, checkpoints.CheckpointError, psycopg.OperationalError) as err:
        print(f"offsite audit verify: {err}", file=sys.stderr)
        return 2


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from alerts.checkpoints import CheckpointError
    from alerts.cli import checkpoint_command

    settings = _settings(args)
    key = settings.alerts.audit_signing_key
    if key is None:
        print(
            "offsite audit checkpoint: set OFFSITE_ALERTS__AUDIT_SIGNING_KEY"
            " (make one with `offsite audit keygen`)",
            file=sys.stderr,
        )
        return 2
    try:
        with _database(settings) as url, psycopg.connect(url, autocommit=True) as conn:
            return checkpoint_command(conn, key.get_secret_value(), sys.stdout)
    except (CheckpointError, psycopg.OperationalError) as err:
        print(f"offsite audit checkpoint: {err}", file=sys.stderr)
        return 2


def cmd_audit_export(args: argparse.Namespace) -> int:
    from alerts.cli import export_command

    settings = _settings(args)
    try:
        with _database(settings) as url, psycopg.connect(url) as conn:
            return export_command(conn, args.after, sys.stdout)
    except psycopg.OperationalError as err:
        print(f"offsite audit export-checkpoints: {err}", file=sys.stderr)
        return 2


def cmd_audit_verify_export(args: argparse.Namespace) -> int:
    from alerts.checkpoints import CheckpointError
    from alerts.cli import verify_export_command

    try:
        with open(args.file, encoding="utf-8") as f:
            return verify_export_command(f.readlines(), args.public_key, sys.stdout)
    except (OSError, CheckpointError) as err:
        print(f"offsite audit verify-export: {err}", file=sys.stderr)
        return 2


def cmd_audit_keygen(args: argparse.Namespace) -> int:
    from alerts import checkpoints

    key = checkpoints.new_key()
    print(key)
    print(
        "public key (give it to whoever verifies exported checkpoints):"
        f" {checkpoints.public_hex(checkpoints.signing_key(key))}",
        file=sys.stderr,
    )
    return 0


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offsite", description="Off-site regulatory supervision server."
    )
    parser.add_argument(
        "--config", help="YAML settings file (default: $OFFSITE_CONFIG); env vars win over it"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the server (embedded database and broker if unset)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("migrate", help="apply database migrations and exit")
    p.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    p = keys.add_parser("create", help="create an API key bound to a department and a role")
    p.add_argument("--department", required=True, help="department code, e.g. EEB")
    p.add_argument("--role", required=True, choices=["viewer", "officer", "admin"])
    p.add_argument("--name", help="who or what the key is for")
    p.set_defaults(func=cmd_keys_create)

    audit = sub.add_parser("audit", help="the full-process audit chain").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    p = audit.add_parser(
        "verify", help="check every link and signed checkpoint; print the first broken one"
    )
    p.add_argument("--checkpoints", help="also check against an exported checkpoints file")
    p.add_argument("--public-key", help="hex public key (default: the configured key's)")
    p.set_defaults(func=cmd_audit_verify)
    p = audit.add_parser("checkpoint", help="sign the chain's current head")
    p.set_defaults(func=cmd_audit_checkpoint)
    p = audit.add_parser(
        "export-checkpoints", help="print the signed checkpoints, one JSON line each"
    )
    p.add_argument("--after", type=int, default=0, help="only those after this seq")
    p.set_defaults(func=cmd_audit_export)
    p = audit.add_parser(
        "verify-export", help="check an exported checkpoints file's signatures (no database)"
    )
    p.add_argument("file")
    p.add_argument("--public-key", required=True, help="hex public key of the signing key")
    p.set_defaults(func=cmd_audit_verify_export)
    p = audit.add_parser("keygen", help="make a new signing key (base64) and show its public key")
    p.set_defaults(func=cmd_audit_keygen)

    simulate.add_parser(sub)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings_level = load_settings(config_file=args.config).log_level
    except ConfigError as err:
        print(f"offsite: {err}", file=sys.stderr)
        return 2
    _setup_logging(settings_level)
    func: Command = args.func
    try:
        return func(args)
    except ConfigError as err:
        print(f"offsite: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
