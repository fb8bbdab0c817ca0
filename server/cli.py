"""`expo-server`: the authoritative world server (issue 3). Not built yet; this entry point says so instead of failing."""

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="expo-server", description="the authoritative world server (issue 3); not built yet.")
    parser.parse_args(argv)
    parser.error("not built yet: see the issue tracker")
    return 2
