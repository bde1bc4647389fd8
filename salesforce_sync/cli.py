"""The `salesforce-sync` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

DEBUG_ENV_VAR = "SALESFORCE_SYNC_DEBUG"


def _emulator_serve(args: argparse.Namespace) -> int:
    from salesforce_sync.emulator.harness import EmulatedOrg

    counts = {"Lead": args.leads, "Contact": args.contacts, "CampaignMember": args.campaign_members,
              "Account": args.accounts, "Opportunity": args.opportunities, "Campaign": args.campaigns}
    counts = {name: count for name, count in counts.items() if count is not None}
    org = EmulatedOrg(seed=args.seed, counts=counts, state_file=args.state_file, port=args.port,
                      http_port=args.http_port, tls_dir=args.tls_dir)
    org.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps(org.connection_info()), flush=True)
    try:
        stop.wait()
    finally:
        org.stop()
    return 0


def _sync(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.sync import run_sync
    from salesforce_sync.config.loader import load_config

    return run_sync(load_config(), args.integrations, full=args.full, workspace=Path(args.workspace))


def _operator_errors() -> tuple[type[Exception], ...]:
    """Errors the operator commands report as one clear line and exit 1 (bugs still show a traceback)."""
    import requests
    from sqlalchemy.exc import InterfaceError, OperationalError

    from salesforce_sync.commands.connect import ConnectError
    from salesforce_sync.commands.sync import DagsterSetupError
    from salesforce_sync.config.errors import ConfigError
    from salesforce_sync.salesforce.auth import SalesforceAuthError
    from salesforce_sync.runs.health import SyncBlocked, SyncDeferred
    from salesforce_sync.runs.lease import SyncLeaseBusy, SyncLeaseLost
    from salesforce_sync.salesforce.client import SalesforceRequestError
    from salesforce_sync.store.errors import OrgAlreadyRegisteredError, StoreInputError
    from salesforce_sync.sync.errors import SyncRuleError

    return (ConfigError, ConnectError, DagsterSetupError, OrgAlreadyRegisteredError, SalesforceAuthError,
            SalesforceRequestError, StoreInputError, SyncBlocked, SyncDeferred, SyncLeaseBusy, SyncLeaseLost,
            SyncRuleError,
            requests.RequestException,
            OperationalError, InterfaceError)


def _error_line(err: Exception) -> str:
    """One line that says what could not be reached or read, and why (the innermost cause, not its wrappers)."""
    import requests
    from sqlalchemy.exc import DBAPIError

    from salesforce_sync.commands.common import first_line, root_cause
    from salesforce_sync.store.urls import STORE_URL_ENV_VAR, configured_store_url, normalize_store_url

    if isinstance(err, DBAPIError):
        where = normalize_store_url(configured_store_url()).render_as_string(hide_password=True)
        return (f"audience store {where} ({STORE_URL_ENV_VAR}) cannot be reached: "
                f"{first_line(str(err.orig) or str(err))}")
    if isinstance(err, requests.RequestException):
        request = err.request
        host = urlsplit(request.url).netloc if request is not None and request.url else "its login host"
        return f"Salesforce at {host} cannot be reached: {first_line(str(root_cause(err)))}"
    return first_line(str(err))


def _debugging(args: argparse.Namespace) -> bool:
    return bool(args.debug or os.environ.get(DEBUG_ENV_VAR, "").strip() not in ("", "0"))


def _reported(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except _operator_errors() as err:
            if _debugging(args):
                raise
            print(f"salesforce-sync {args.command}: error: {_error_line(err)}", file=sys.stderr)
            return 1

    return run


def _listen(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.listen import run_listen
    from salesforce_sync.config.loader import load_config

    stop = threading.Event()

    def stopping(*_: object) -> None:
        print("stopping after the micro-sync under way (if any)", flush=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stopping)
    return run_listen(load_config(), [args.integration] if args.integration else [], stop=stop,
                      retryable=_operator_errors(), describe=_error_line)


def _status(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.status import run_status
    from salesforce_sync.config.loader import load_config

    return run_status(load_config(), as_json=args.json)


def _preview(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.preview import run_preview
    from salesforce_sync.config.loader import load_config

    return run_preview(load_config(), args.integration, args.object)


def _refresh_formulas(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.refresh_formulas import run_refresh_formulas
    from salesforce_sync.config.loader import load_config

    return run_refresh_formulas(load_config(), args.integration)


def _logs(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.logs import run_logs

    return run_logs(args.integration, event=args.event, since=args.since, limit=args.limit, as_json=args.json)


def _people(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.people import run_people
    from salesforce_sync.config.loader import load_config

    return run_people(load_config(), args.project, email=args.email)
def _push(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.push import run_push
    from salesforce_sync.config.loader import load_config

    return run_push(load_config(), args.integration, object_type=args.object, dry_run=args.dry_run, full=args.full)


def _rejected(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.push import run_rejected
    from salesforce_sync.config.loader import load_config

    return run_rejected(load_config(), args.integration, object_type=args.object, limit=args.limit,
                        as_json=args.json)


def _connect(args: argparse.Namespace) -> int:
    from salesforce_sync.commands.connect import run_connect
    from salesforce_sync.config.loader import load_config

    run_connect(load_config(), args.integration, port=args.port, open_browser=not args.no_browser,
                env_file=Path(args.env_file), timeout=args.timeout)
    return 0


def _since(text: str) -> datetime:
    """A date (midnight UTC) or an ISO datetime (UTC unless it has an offset), as an aware UTC datetime."""
    cleaned = text.strip()
    try:
        if "T" in cleaned or " " in cleaned:
            moment = datetime.fromisoformat(cleaned)
        else:
            moment = datetime.combine(date.fromisoformat(cleaned), time(0))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {text!r} is not a date (2026-11-20) or datetime (2026-11-20T06:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0..65535, 0 picks a free one)")
    return value


def _event(text: str) -> str:
    from salesforce_sync.store.models import SyncEvent

    allowed = [event.value for event in SyncEvent]
    if text not in allowed:
        raise argparse.ArgumentTypeError(f"{text!r} is not a sync log event; use one of {', '.join(allowed)}")
    return text


def _add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="every integration's badge, last success, last error and counts")
    status.add_argument("--json", action="store_true", help="print JSON for machines")
    status.set_defaults(handler=_reported(_status))

    preview = commands.add_parser("preview", help="count the records the sync rules select now, with the SOQL")
    preview.add_argument("integration", help="integration id")
    preview.add_argument("object", nargs="?", help="Lead, Contact, CampaignMember, Account, Opportunity or Campaign "
                                                        "(default: every configured one)")
    preview.set_defaults(handler=_reported(_preview))

    refresh = commands.add_parser("refresh-formulas", help="re-read the mapped formula fields and relationship "
                                                           "paths now and write the values that changed")
    refresh.add_argument("integration", nargs="?", help="integration id (default: every one that syncs)")
    refresh.set_defaults(handler=_reported(_refresh_formulas))

    logs = commands.add_parser("logs", help="the sync log, newest first")
    logs.add_argument("integration", nargs="?", help="integration id (default: all)")
    logs.add_argument("--event", type=_event, help="only entries of this event type (e.g. sync_failed)")
    logs.add_argument("--since", type=_since, help="only entries at or after this date or datetime (UTC unless "
                                                    "it has an offset)")
    logs.add_argument("--limit", type=_positive, default=50, help="at most this many entries (default: 50)")
    logs.add_argument("--json", action="store_true", help="print JSON, messages verbatim")
    logs.set_defaults(handler=_reported(_logs))

    people = commands.add_parser("people", help="people per project, or one person (by email) and their records")
    people.add_argument("project", nargs="?", help="project id (default: all)")
    people.add_argument("--email", help="show the person with this email (matched trimmed and case-insensitively)")
    people.set_defaults(handler=_reported(_people))
    push = commands.add_parser("push", help="write the audience's new and changed rows to Salesforce (write_back)")
    push.add_argument("integration", nargs="?", help="integration id (default: every one with a write_back)")
    push.add_argument("--object", help="only this object (Lead, Contact, Account, LeadConversion, CampaignMember; Task, Event or Activity for both)")
    push.add_argument("--dry-run", action="store_true", help="print what would be created, updated and skipped; "
                                                              "write nothing")
    push.add_argument("--full", action="store_true", help="send every row, not only those changed since the last push")
    push.set_defaults(handler=_reported(_push))

    rejected = commands.add_parser("rejected", help="source rows Salesforce refused in the last push, and why")
    rejected.add_argument("integration", nargs="?", help="integration id (default: all)")
    rejected.add_argument("--object", help="only this object (Lead, Contact, Account, LeadConversion, CampaignMember; Task, Event or Activity for both)")
    rejected.add_argument("--limit", type=_positive, default=200, help="at most this many rows (default: 200)")
    rejected.add_argument("--json", action="store_true", help="print JSON, messages verbatim")
    rejected.set_defaults(handler=_reported(_rejected))

    connect = commands.add_parser(
        "connect", help="authorize access to the integration's org in a browser (OAuth with PKCE) and store its "
                        "refresh token in a .env file")
    connect.add_argument("integration", help="integration id (its auth must use method refresh_token)")
    connect.add_argument("--port", type=_port, default=0,
                         help="port of the local redirect listener http://127.0.0.1:<port>/callback (default: a "
                              "free one); a real connected app must list that exact callback URL")
    connect.add_argument("--no-browser", action="store_true", help="only print the authorize URL")
    connect.add_argument("--env-file", default=".env",
                         help="the .env file that receives the refresh token (default: ./.env)")
    connect.add_argument("--timeout", type=_positive, default=300,
                         help="seconds to wait for the redirect (default: 300)")
    connect.set_defaults(handler=_reported(_connect))


def _installed_version() -> str:
    try:
        return version("salesforce-sync")
    except PackageNotFoundError:  # run from a source checkout that was never pip-installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salesforce-sync", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_installed_version()}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error instead of one line (also: {DEBUG_ENV_VAR}=1)")
    commands = parser.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="sync integrations now: every window not yet synced, one run each")
    sync.add_argument("integrations", nargs="*", help="integration ids (default: all)")
    sync.add_argument("--full", action="store_true", help="full re-sync: all windows in one query, and records "
                                                          "Salesforce no longer lists are marked deleted")
    sync.add_argument("--workspace", default="workspace.yaml",
                      help="the Dagster workspace file naming the code location; used when a Dagster daemon serves "
                           "the instance, so the run goes through its run queue (default: ./workspace.yaml)")
    sync.set_defaults(handler=_reported(_sync))

    listen = commands.add_parser("listen", help="the standing change-capture listener: apply change events as "
                                                "micro-syncs until Ctrl-C or SIGTERM (change_capture.mode: listener)")
    listen.add_argument("integration", nargs="?", help="integration id (default: every one in listener mode)")
    listen.set_defaults(handler=_reported(_listen))

    emulator = commands.add_parser("emulator", help="run an emulated Salesforce org")
    emulator_commands = emulator.add_subparsers(dest="emulator_command", required=True)
    serve = emulator_commands.add_parser(
        "serve", help="serve an emulated org over HTTPS; prints its connection details as JSON first")
    serve.add_argument("--port", type=int, default=8443, help="HTTPS port (0 picks a free one)")
    serve.add_argument("--http-port", type=int, default=None, help="also serve plain HTTP on this port")
    serve.add_argument("--seed", type=int, default=7, help="seed of the generated data and credentials")
    serve.add_argument("--leads", type=int, default=2000)
    serve.add_argument("--contacts", type=int, default=1000)
    serve.add_argument("--campaign-members", type=int, default=500)
    for name in ("accounts", "opportunities", "campaigns"):
        serve.add_argument(f"--{name}", type=int, help="default: derived from the people")
    serve.add_argument("--state-file", default=None,
                       help="keep the org in this SQLite file so several processes share it (default: in memory)")
    serve.add_argument("--tls-dir", default=None, help="where to write the CA bundle (default: a temp folder)")
    serve.set_defaults(handler=_emulator_serve)

    _add_operator_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=Warning, module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview|superseded).*")
    args = build_parser().parse_args(argv)
    # Secrets `connect` wrote to ./.env reach the CLI's syncs as they reach `dagster dev`; the real
    # environment wins over the file.
    load_dotenv(Path.cwd() / ".env", override=False)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
