"""Decoding 1,000 clients' inputs: the protocol's codec (msgspec Structs, array_like, tagged by
the type code) against the codec it replaced (msgpack, then a Python validator per field),
the measurement issue 13 asked for before choosing, repeated in every run.

    .venv/bin/python benchmarks/codec.py [--clients 1000] [--rounds 300]

The job: the Input frames of 1,000 clients (what the server decodes most: one per client
per change of direction, and once a second while walking), as our encoder writes them, each
decoded and validated into a message. Peers, in the same run on the same frames:

* ours: ``protocol.decode_client``: msgspec's decoder plus what it cannot say (the exact
  field count, the text rules, our error codes and field names);
* validators: the previous codec (benchmarks/codec_validators.py);
* msgspec alone: our decoder without that wrapper, to show what the wrapper costs.

Before timing, ours and the validators decode a corpus of good and bad frames of every
client message and the script prints where their answers differ (the message, or the
error code): a faster codec that answers differently would not be the same protocol.
Best of ``rounds`` per peer.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import codec_validators  # noqa: E402  (the script's own folder)

import protocol as p  # noqa: E402
from protocol.codec import _CLIENT  # noqa: E402
from protocol.limits import MAX_SEQ  # noqa: E402

# ----------------------------------------------------------------------------- the job


def inputs(clients: int, rng: random.Random) -> list[bytes]:
    frames = []
    for seq in range(1, clients + 1):
        heading = rng.uniform(-math.pi, math.pi)
        moving = rng.random() < 0.8
        frames.append(p.encode(p.Input(seq * 20, math.cos(heading) if moving else 0.0, math.sin(heading) if moving else 0.0,
                                       heading, rng.random() < 0.2, 20 if moving else 1)))
    return frames


def corpus() -> list[bytes]:
    """Good frames of every client message and bad ones of each kind our codec names."""
    good = [p.Hello(p.PROTOCOL_VERSION, "  Aigerim ", 0x336699, 3, None, None), p.Hello(2, "Li Wei", 0, 0, "t" * 40, "b:x"),
            p.Input(1, 0.6, -0.8, 2.0, True, 20), p.Input(MAX_SEQ, -1.0, 1.0, -7.0, False, 1), p.Chat(0, " hello "),
            p.Ping(12.5), p.Order("kz-honey", "HONEY-1", 2, "key-1"), p.OrderPaid("o1"), p.CancelOrder("o1"),
            p.QueryStock("kz-honey"), p.QueryInventory(), p.Bye()]
    frames = [p.encode(m) for m in good]
    bad_values: list[Any] = [
        [2, 0, 0.0, 0.0, 0.0, False, 1], [2, True, 0.0, 0.0, 0.0, False, 1], [2, 1, 1.5, 0.0, 0.0, False, 1],
        [2, 1, math.nan, 0.0, 0.0, False, 1], [2, 1, math.inf, 0.0, 0.0, False, 1], [2, 1, 0.0, 0.0, 0.0, 1, 1],
        [2, 1, 0.0, 0.0, 0.0, False, 21], [2, 1, 0.0, 0.0, 0.0, False], [2, 1, 0.0, 0.0, 0.0, False, 1, 0],
        [2, 1, "0", 0.0, 0.0, False, 1], [2, 1, msgpack.ExtType(1, b"x"), 0.0, 0.0, False, 1], [2.0, 1],
        [99, 1], [70, 1.0, 2.0], [], 5, "x", [3, 0, "a\x07b"], [3, 3, "hi"], [3, 0, "   "], [3, 0, "x" * 281],
        [1, 2, "A", 0, 0, None, None], [1, 2, "Ann\u200b", 0, 0, None, None], [1, 2, "Ann", 0x1000000, 0, None, None],
        [5, "b", "s", 0, "k"], [5, "b", "s", 1, ""], [4, -1.0], [4], [9, 1], [10],
    ]
    frames += [msgpack.packb(v) for v in bad_values]
    frames.append(p.encode(p.Ping(1.0)) + b"\x00")  # trailing bytes
    frames.append(b"\xc1")  # never valid msgpack
    return frames


def answer(decode: Callable[[bytes], Any], frame: bytes) -> tuple[Any, ...]:
    """What a codec makes of a frame: the message's name and fields, or the error code."""
    try:
        message = decode(frame)
    except p.ProtocolError as exc:
        return ("error", exc.code.value)
    cls = type(message)
    names = cls.__struct_fields__ if hasattr(cls, "__struct_fields__") else tuple(cls.__dataclass_fields__)
    return ("message", type(message).__name__, *(getattr(message, n) for n in names))


def best(decode: Callable[[bytes], Any], frames: list[bytes], rounds: int) -> float:
    """Seconds for the whole batch, the best of ``rounds``."""
    fastest = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for frame in frames:
            decode(frame)
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args(argv)
    frames = corpus()
    differ = [(frame, a, b) for frame in frames
              if (a := answer(p.decode_client, frame)) != (b := answer(codec_validators.decode_client, frame))]
    print(f"corpus: {len(frames)} frames, {len(differ)} answered differently")
    for frame, ours, theirs in differ:
        print(f"  {frame[:40]!r}: ours {ours}, validators {theirs}")
    inputs_ = inputs(args.clients, random.Random(13))
    same = all(answer(p.decode_client, f) == answer(codec_validators.decode_client, f) for f in inputs_)
    peers: dict[str, Callable[[bytes], Any]] = {"ours": p.decode_client, "validators": codec_validators.decode_client, "msgspec alone": _CLIENT.decoder.decode}
    times = {name: best(decode, inputs_, args.rounds) for name, decode in peers.items()}
    n = len(inputs_)
    print(f"{n} Input frames ({sum(map(len, inputs_)) / n:.1f} bytes each), best of {args.rounds}; agree: {same}")
    for name, seconds in times.items():
        print(f"  {name:14} {seconds * 1e3:7.3f} ms  {seconds / n * 1e6:6.2f} us/frame  "
              f"validators/this {times['validators'] / seconds:5.1f}x")
    return 0 if same and not differ else 1


if __name__ == "__main__":
    raise SystemExit(main())
