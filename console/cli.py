"""`expo-console`: exhibitor logins from a terminal, for organisers who script their set-up.

The same store the console's "Exhibitor logins" page writes (``console/console.sqlite3``
under the server's data directory), so a login issued here works in the running console
at once, and one revoked here stops working at the next page (its open sessions end when
the console's own page revokes it, or when the server restarts).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from world.loader import WorldError, default_expo_path, load_expo

from .auth import Credentials


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="expo-console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("var/server"),
                        help="the world server's --data-dir (make run: var/server)")
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="print a new login for one booth (shown once)")
    issue.add_argument("booth", help="the booth's id, as in its world file")
    issue.add_argument("--label", default="", help="whom it is for")
    issue.add_argument("--world", type=Path, default=None, help="expo directory (default: the packaged expo)")
    commands.add_parser("list", help="the logins issued, one a line: digest, booth, label, issued, state")
    revoke = commands.add_parser("revoke", help="stop a login working")
    revoke.add_argument("digest", help="its digest, from `list`")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    credentials = Credentials(args.data_dir / "console", time.time)
    try:
        if args.command == "issue":
            try:
                expo = load_expo(args.world or default_expo_path())
            except WorldError as exc:
                print(f"expo-console: the world does not load:\n{exc}", file=sys.stderr)
                return 1
            if expo.booth(args.booth) is None:
                print(f"expo-console: no booth {args.booth!r}; the expo has: {', '.join(b.id for b in expo.booths)}",
                      file=sys.stderr)
                return 2
            print(credentials.issue(args.booth, args.label))
        elif args.command == "list":
            for login in credentials.logins():
                state = "revoked" if login.revoked_at else "active"
                issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(login.created_at))
                print(f"{login.digest}\t{login.booth}\t{login.label}\t{issued}\t{state}")
        elif not credentials.revoke(args.digest):
            print(f"expo-console: no active login with digest {args.digest!r}", file=sys.stderr)
            return 1
        return 0
    finally:
        credentials.close()


if __name__ == "__main__":
    sys.exit(main())
