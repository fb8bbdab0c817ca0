"""Writes the product models the expo shows on its counters (assets/models/*.glb).

Hand-written glTF 2.0 binaries (JSON + one buffer, packed with struct): no modelling tool or
new dependency, and the files are reproducible byte for byte (tests/scripts checks the
committed ones). Each model is about one unit across, stands on y = 0 (glTF is y-up) and is
near-white in its vertex colours with darker lids and bands: the client multiplies the
product's colour in, so one file serves every product of that shape and a counter's models
flatten into one draw call. The material is PBR metallic-roughness (simplepbr at high quality).

    python scripts/product_models.py [--out assets/models]
"""

from __future__ import annotations

import argparse
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS = 16  # around a turned shape: round at counter distance, few vertices (the flattened
# hall combines at most the renderer's max vertices per geom, 3,000 on llvmpipe)


@dataclass
class Mesh:
    positions: list[tuple[float, float, float]] = field(default_factory=list)
    normals: list[tuple[float, float, float]] = field(default_factory=list)
    colours: list[tuple[float, float, float, float]] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)

    def vertex(self, p: tuple[float, float, float], n: tuple[float, float, float], grey: float) -> int:
        self.positions.append(p)
        self.normals.append(n)
        self.colours.append((grey, grey, grey, 1.0))
        return len(self.positions) - 1

    def quad(self, a: int, b: int, c: int, d: int) -> None:
        self.indices += [a, b, c, a, c, d]


def turned(mesh: Mesh, profile: list[tuple[float, float, float]], lying: bool = False) -> None:
    """A surface of revolution about the y axis (or lying along x, for a rolled carpet) from
    (radius, height, grey) points listed bottom to top; flat caps close radius-0 ends."""
    lift = max(r for r, _, _ in profile) if lying else 0.0

    def place(r: float, h: float, a: float) -> tuple[float, float, float]:
        x, z = r * math.cos(a), r * math.sin(a)
        return (h - 0.5, x + lift, z) if lying else (x, h, z)

    for (r0, h0, g0), (r1, h1, g1) in zip(profile, profile[1:]):
        dr, dh = r1 - r0, h1 - h0
        length = math.hypot(dr, dh) or 1.0
        nr, nh = dh / length, -dr / length  # outward normal of this band in the (r, h) plane
        ring = []
        for i in range(SEGMENTS + 1):
            a = 2 * math.pi * i / SEGMENTS
            n = (nh, nr * math.cos(a), nr * math.sin(a)) if lying else (nr * math.cos(a), nh, nr * math.sin(a))
            ring.append((mesh.vertex(place(r0, h0, a), n, g0), mesh.vertex(place(r1, h1, a), n, g1)))
        for i in range(SEGMENTS):
            (a0, a1), (b0, b1) = ring[i], ring[i + 1]
            # lying swaps two axes, a mirror: the winding turns round with it
            mesh.quad(a0, b0, b1, a1) if lying else mesh.quad(a0, a1, b1, b0)


def box(mesh: Mesh, lo: tuple[float, float, float], hi: tuple[float, float, float], grey: float) -> None:
    faces = (((1, 0, 0), 0, 1), ((-1, 0, 0), 0, 0), ((0, 1, 0), 1, 1), ((0, -1, 0), 1, 0), ((0, 0, 1), 2, 1), ((0, 0, -1), 2, 0))
    for normal, axis, high in faces:
        u, v = [i for i in range(3) if i != axis]
        corners = []
        for cu, cv in ((0, 0), (1, 0), (1, 1), (0, 1)):
            p = [0.0, 0.0, 0.0]
            p[axis] = hi[axis] if high else lo[axis]
            p[u] = hi[u] if cu else lo[u]
            p[v] = hi[v] if cv else lo[v]
            corners.append(mesh.vertex((p[0], p[1], p[2]), normal, grey))
        a, b, c, d = corners
        e1 = [mesh.positions[b][i] - mesh.positions[a][i] for i in range(3)]
        e2 = [mesh.positions[c][i] - mesh.positions[a][i] for i in range(3)]
        facing = sum(normal[i] * (e1[(i + 1) % 3] * e2[(i + 2) % 3] - e1[(i + 2) % 3] * e2[(i + 1) % 3]) for i in range(3))
        mesh.quad(a, b, c, d) if facing > 0 else mesh.quad(a, d, c, b)  # counter-clockwise seen from outside


def disc(mesh: Mesh, r: float, h: float, up: bool, grey: float) -> None:
    centre = mesh.vertex((0.0, h, 0.0), (0.0, 1.0 if up else -1.0, 0.0), grey)
    rim = [mesh.vertex((r * math.cos(2 * math.pi * i / SEGMENTS), h, r * math.sin(2 * math.pi * i / SEGMENTS)),
                       (0.0, 1.0 if up else -1.0, 0.0), grey) for i in range(SEGMENTS)]
    for i in range(SEGMENTS):
        a, b = rim[i], rim[(i + 1) % SEGMENTS]
        mesh.indices += [centre, b, a] if up else [centre, a, b]


def jar() -> Mesh:
    """Honey, jam, spices: a squat glass body and a darker screw lid."""
    m = Mesh()
    turned(m, [(0.30, 0.0, 0.9), (0.34, 0.05, 0.95), (0.34, 0.62, 0.95), (0.28, 0.70, 0.9), (0.27, 0.72, 0.45), (0.27, 0.86, 0.4)])
    disc(m, 0.30, 0.0, False, 0.8)
    disc(m, 0.27, 0.86, True, 0.45)
    return m


def bottle() -> Mesh:
    """Oils, drinks, perfume: shoulders, a neck and a cap."""
    m = Mesh()
    turned(m, [(0.22, 0.0, 0.9), (0.24, 0.04, 0.95), (0.24, 0.52, 0.95), (0.10, 0.72, 0.95), (0.08, 0.86, 0.95), (0.09, 0.87, 0.4), (0.09, 1.0, 0.4)])
    disc(m, 0.22, 0.0, False, 0.8)
    disc(m, 0.09, 1.0, True, 0.4)
    return m


def vase() -> Mesh:
    """Ceramics, fruit baskets, lanterns: a round belly and a flared mouth."""
    m = Mesh()
    profile = [(0.16, 0.0, 0.85)]
    for i in range(1, 8):
        t = i / 8
        profile.append((0.16 + 0.26 * math.sin(math.pi * t), 0.7 * t, 0.95))
    profile += [(0.14, 0.74, 0.95), (0.20, 0.86, 0.7)]
    turned(m, profile)
    disc(m, 0.16, 0.0, False, 0.8)
    disc(m, 0.14, 0.80, True, 0.35)  # the inside of the mouth, dark
    return m


def package() -> Mesh:
    """Tea, sweets, textiles folded: a carton with a darker band round its middle."""
    m = Mesh()
    box(m, (-0.5, 0.0, -0.4), (0.5, 0.34, 0.4), 0.95)
    box(m, (-0.505, 0.34, -0.405), (0.505, 0.46, 0.405), 0.55)
    box(m, (-0.5, 0.46, -0.4), (0.5, 0.8, 0.4), 0.95)
    return m


def carpet() -> Mesh:
    """A rug rolled up and lying on the counter, its ends showing the darker underside."""
    m = Mesh()
    turned(m, [(0.0, 0.0, 0.5), (0.16, 0.0, 0.5), (0.17, 0.02, 0.95), (0.17, 0.98, 0.95), (0.16, 1.0, 0.5), (0.0, 1.0, 0.5)], lying=True)
    return m


MODELS = {"jar": jar, "bottle": bottle, "vase": vase, "package": package, "carpet": carpet}


def glb(mesh: Mesh, name: str) -> bytes:
    """The mesh as a binary glTF 2.0 file: one node, one primitive, one PBR material."""
    pos = b"".join(struct.pack("<3f", *p) for p in mesh.positions)
    nor = b"".join(struct.pack("<3f", *n) for n in mesh.normals)
    col = b"".join(struct.pack("<4f", *c) for c in mesh.colours)
    idx = struct.pack(f"<{len(mesh.indices)}H", *mesh.indices)
    idx += b"\0" * (-len(idx) % 4)
    blob = pos + nor + col + idx
    count = len(mesh.positions)
    views = [(0, len(pos), 34962), (len(pos), len(nor), 34962), (len(pos) + len(nor), len(col), 34962),
             (len(pos) + len(nor) + len(col), len(mesh.indices) * 2, 34963)]
    lo = [round(min(p[i] for p in mesh.positions), 6) for i in range(3)]
    hi = [round(max(p[i] for p in mesh.positions), 6) for i in range(3)]
    doc = {
        "asset": {"version": "2.0", "generator": "silk-road-expo scripts/product_models.py"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [{"attributes": {"POSITION": 0, "NORMAL": 1, "COLOR_0": 2}, "indices": 3, "material": 0}]}],
        "materials": [{"name": "product", "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0.0, "roughnessFactor": 0.55}}],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": [{"buffer": 0, "byteOffset": o, "byteLength": n, "target": t} for o, n, t in views],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": count, "type": "VEC3", "min": lo, "max": hi},
            {"bufferView": 1, "componentType": 5126, "count": count, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5126, "count": count, "type": "VEC4"},
            {"bufferView": 3, "componentType": 5123, "count": len(mesh.indices), "type": "SCALAR"},
        ],
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(blob), b"BIN\0") + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in MODELS.items():
        path = out / f"{name}.glb"
        path.write_bytes(glb(make(), name))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "models")
    args = ap.parse_args(argv)
    for path in write_all(args.out):
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
