"""``python benchmarks/bank.py [--quick]``: the bank's throughput against raw SQLite (see bank_throughput.py).

Run as a file, a script's directory comes first on ``sys.path``, and this file is named like
the package it measures. So, run itself, it puts the repository first and hands over to the
real module; imported as ``bank`` (by another benchmark here run as a file, e.g.
console_live.py through the server), it puts the real package in its place. Before, such a
benchmark ran this one instead of its own.
"""

import importlib
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), str(ROOT / "benchmarks")] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
if __name__ == "__main__":
    sys.modules.pop("bank", None)  # this file, if it was imported under the package's name
    runpy.run_module("bank_throughput", run_name="__main__")
else:
    del sys.modules[__name__]
    sys.modules[__name__] = importlib.import_module("bank")  # what the importer of ``bank`` gets
