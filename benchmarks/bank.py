"""``python benchmarks/bank.py [--quick]``: the bank's throughput against raw SQLite (see bank_throughput.py).

Run as a file, this script's directory comes first on ``sys.path`` and this file is named like
the package it measures, so it puts the repository first and hands over to the real module.
"""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), str(ROOT / "benchmarks")] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.modules.pop("bank", None)  # this file, if it was imported under the package's name
runpy.run_module("bank_throughput", run_name="__main__")
