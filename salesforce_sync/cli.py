"""The `salesforce-sync` command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence


def _emulator_serve(args: argparse.Namespace) -> int:
    from salesforce_sync.emulator.harness import EmulatedOrg

    counts = {"Lead": args.leads, "Contact": args.contacts, "CampaignMember": args.campaign_members}
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

    return run_sync(load_config(), args.integrations, full=args.full)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salesforce-sync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="sync integrations now: every window not yet synced, one run each")
    sync.add_argument("integrations", nargs="*", help="integration ids (default: all)")
    sync.add_argument("--full", action="store_true", help="full re-sync: all windows in one query, and records "
                                                          "Salesforce no longer lists are marked deleted")
    sync.set_defaults(handler=_sync)

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
    serve.add_argument("--state-file", default=None,
                       help="keep the org in this SQLite file so several processes share it (default: in memory)")
    serve.add_argument("--tls-dir", default=None, help="where to write the CA bundle (default: a temp folder)")
    serve.set_defaults(handler=_emulator_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=Warning, module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview|superseded).*")
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
