"""Procedural geometry as plain arrays: boxes, cylinders, cones, spheres, discs, arches.

A whole hall is built into a few ``Mesh`` objects (one per material) and handed to Panda3D
once, so the static scene draws in a handful of calls and the geometry is testable without
a graphics card. Every vertex has a position, a normal (for the lights), an RGBA colour and
a UV; untextured parts point their UVs at a white texel of the texture atlas, so they share
one render state with the textured banners and merge into the same draw call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RGBA = tuple[float, float, float, float]
UVRect = tuple[float, float, float, float]  # u0, v0, u1, v1


@dataclass(frozen=True, slots=True)
class Mesh:
    """Triangles: ``positions``/``normals`` (n, 3), ``colours`` (n, 4), ``uvs`` (n, 2) float32,
    ``triangles`` (m, 3) uint32, counter-clockwise seen from the front."""

    positions: np.ndarray
    normals: np.ndarray
    colours: np.ndarray
    uvs: np.ndarray
    triangles: np.ndarray

    @property
    def vertex_count(self) -> int:
        return len(self.positions)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.positions.min(axis=0), self.positions.max(axis=0)

    def split_plain(self, plain_uv: tuple[float, float]) -> tuple[Mesh, Mesh]:
        """The textured triangles and the plain ones (every corner's UV at ``plain_uv``, the
        white texel), each a mesh of the vertices it uses: a plain part drawn without its
        texture looks the same and costs a software renderer no texel fetch a pixel."""
        at_white = np.all(np.abs(self.uvs - np.asarray(plain_uv, np.float32)) < 1e-6, axis=1)
        plain = at_white[self.triangles].all(axis=1)
        return self._only(~plain), self._only(plain)

    def _only(self, keep: np.ndarray) -> Mesh:
        used, triangles = np.unique(self.triangles[keep], return_inverse=True)
        return Mesh(self.positions[used], self.normals[used], self.colours[used], self.uvs[used],
                    triangles.reshape(-1, 3).astype(np.uint32))


class MeshBuilder:
    """Accumulates parts; ``build()`` returns one Mesh. ``plain_uv`` is where untextured
    parts sample the texture (a white texel), so their vertex colour shows as is."""

    def __init__(self, plain_uv: tuple[float, float] = (0.0, 0.0)) -> None:
        self.plain_uv = plain_uv
        self._pos: list[np.ndarray] = []
        self._nrm: list[np.ndarray] = []
        self._col: list[np.ndarray] = []
        self._uv: list[np.ndarray] = []
        self._tri: list[np.ndarray] = []
        self._count = 0

    @property
    def empty(self) -> bool:
        return self._count == 0

    def add(self, positions, normals, colour: RGBA | np.ndarray, triangles, uvs=None) -> None:
        """The primitive every other method ends in: arrays in, appended with an offset."""
        pos = np.asarray(positions, dtype=np.float32).reshape(-1, 3)
        n = len(pos)
        nrm = np.asarray(normals, dtype=np.float32).reshape(-1, 3)
        nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
        col = np.broadcast_to(np.asarray(colour, dtype=np.float32), (n, 4))
        uv = np.broadcast_to(np.asarray(self.plain_uv if uvs is None else uvs, dtype=np.float32), (n, 2))
        self._pos.append(pos)
        self._nrm.append(np.broadcast_to(nrm, (n, 3)) if len(nrm) == 1 else nrm)
        self._col.append(col)
        self._uv.append(uv)
        self._tri.append(np.asarray(triangles, dtype=np.uint32).reshape(-1, 3) + self._count)
        self._count += n

    def build(self) -> Mesh:
        if self.empty:
            z3 = np.zeros((0, 3), np.float32)
            return Mesh(z3, z3, np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32), np.zeros((0, 3), np.uint32))
        return Mesh(np.concatenate(self._pos), np.concatenate(self._nrm), np.concatenate(self._col),
                    np.concatenate(self._uv), np.concatenate(self._tri))

    # ------------------------------------------------------------------ flat shapes

    def quad(self, a, b, c, d, colour: RGBA, uv: UVRect | None = None) -> None:
        """Corners counter-clockwise seen from the front: a bottom-left, b bottom-right,
        c top-right, d top-left (for the texture)."""
        pts = np.array([a, b, c, d], dtype=np.float32)
        normal = np.cross(pts[1] - pts[0], pts[3] - pts[0])
        uvs = None
        if uv is not None:
            u0, v0, u1, v1 = uv
            uvs = [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]
        self.add(pts, [normal], colour, [(0, 1, 2), (0, 2, 3)], uvs)

    def sign(self, centre, width: float, height: float, facing: tuple[float, float], colour: RGBA,
             uv: UVRect | None = None) -> None:
        """An upright rectangle centred at ``centre`` whose front looks along ``facing``
        (a horizontal unit vector)."""
        fx, fy = facing
        rx, ry = -fy, fx  # right-hand side of someone looking at the front
        cx, cy, cz = centre
        hw, hh = width / 2, height / 2
        self.quad((cx - rx * hw, cy - ry * hw, cz - hh), (cx + rx * hw, cy + ry * hw, cz - hh),
                  (cx + rx * hw, cy + ry * hw, cz + hh), (cx - rx * hw, cy - ry * hw, cz + hh), colour, uv)

    def disc(self, centre, radius: float, colour: RGBA, segments: int = 32) -> None:
        cx, cy, cz = centre
        a = np.linspace(0, 2 * math.pi, segments, endpoint=False)
        ring = np.stack([cx + radius * np.cos(a), cy + radius * np.sin(a), np.full(segments, cz)], axis=1)
        pos = np.vstack([[cx, cy, cz], ring])
        tri = [(0, 1 + i, 1 + (i + 1) % segments) for i in range(segments)]
        self.add(pos, [(0, 0, 1)], colour, tri)

    def annulus(self, centre, inner: float, outer: float, colour: RGBA, segments: int = 48) -> None:
        cx, cy, cz = centre
        a = np.linspace(0, 2 * math.pi, segments, endpoint=False)
        c, s = np.cos(a), np.sin(a)
        pos = np.concatenate([np.stack([cx + r * c, cy + r * s, np.full(segments, cz)], axis=1) for r in (inner, outer)])
        tri = []
        for i in range(segments):
            j = (i + 1) % segments
            tri += [(i, segments + i, segments + j), (i, segments + j, j)]
        self.add(pos, [(0, 0, 1)], colour, tri)

    # ------------------------------------------------------------------ solids

    def box(self, lo, hi, colour: RGBA, bottom: bool = False) -> None:
        """An axis-aligned box from corner ``lo`` to ``hi``; the bottom face is left out
        unless asked (it stands on the floor)."""
        x0, y0, z0 = lo
        x1, y1, z1 = hi
        faces = [
            ((x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)),  # south
            ((x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)),  # east
            ((x1, y1, z0), (x0, y1, z0), (x0, y1, z1), (x1, y1, z1)),  # north
            ((x0, y1, z0), (x0, y0, z0), (x0, y0, z1), (x0, y1, z1)),  # west
            ((x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)),  # top
        ]
        if bottom:
            faces.append(((x0, y1, z0), (x1, y1, z0), (x1, y0, z0), (x0, y0, z0)))
        for face in faces:
            self.quad(*face, colour)

    def cylinder(self, base, radius: float, height: float, colour: RGBA, segments: int = 16,
                 top_radius: float | None = None, cap: bool = True) -> None:
        """Upright, standing on ``base``; ``top_radius`` makes a frustum (0: a cone)."""
        cx, cy, cz = base
        rt = radius if top_radius is None else top_radius
        a = np.linspace(0, 2 * math.pi, segments + 1)
        c, s = np.cos(a), np.sin(a)
        bottom = np.stack([cx + radius * c, cy + radius * s, np.full_like(a, cz)], axis=1)
        top = np.stack([cx + rt * c, cy + rt * s, np.full_like(a, cz + height)], axis=1)
        slope = (radius - rt) / height if height else 0.0
        normals = np.stack([c, s, np.full_like(a, slope)], axis=1)
        n = segments + 1
        tri = []
        for i in range(segments):
            tri += [(i, i + 1, n + i + 1), (i, n + i + 1, n + i)]
        self.add(np.vstack([bottom, top]), np.vstack([normals, normals]), colour, tri)
        if cap and rt > 0:
            self.disc((cx, cy, cz + height), rt, colour, segments)

    def cone(self, base, radius: float, height: float, colour: RGBA, segments: int = 16) -> None:
        self.cylinder(base, radius, height, colour, segments, top_radius=0.0, cap=False)

    def sphere(self, centre, radius: float, colour: RGBA, rings: int = 10, segments: int = 16,
               squash: float = 1.0) -> None:
        """A UV sphere; ``squash`` scales it vertically (an ellipsoid)."""
        cx, cy, cz = centre
        theta = np.linspace(0, math.pi, rings + 1)[:, None]  # from the top
        phi = np.linspace(0, 2 * math.pi, segments + 1)[None, :]
        nx, ny = np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi)
        nz = np.cos(theta) * np.ones_like(phi)
        normals = np.stack([nx, ny, nz / max(squash, 1e-6)], axis=-1).reshape(-1, 3)
        pos = np.stack([cx + radius * nx, cy + radius * ny, cz + radius * squash * nz], axis=-1).reshape(-1, 3)
        w = segments + 1
        tri = []
        for r in range(rings):
            for i in range(segments):
                a, b = r * w + i, r * w + i + 1
                c, d = a + w, b + w
                if r > 0:
                    tri.append((a, c, b))
                if r < rings - 1:
                    tri.append((b, c, d))
        self.add(pos, normals, colour, tri)

    def arch(self, centre, radius: float, tube: float, facing: tuple[float, float], colour: RGBA,
             segments: int = 24, sides: int = 8) -> None:
        """Half a torus standing upright over ``centre`` (on the floor), its opening facing
        along ``facing``: a doorway."""
        fx, fy = facing
        rx, ry = fy, -fx
        cx, cy, cz = centre
        u = np.linspace(0, math.pi, segments + 1)[:, None]  # along the arch
        v = np.linspace(0, 2 * math.pi, sides + 1)[None, :]  # around the tube
        # the arch's centre line in the (right, up) plane, and the tube around it
        ring_r = np.cos(u) * radius
        ring_z = np.sin(u) * radius
        out_r, out_z = np.cos(u), np.sin(u)  # outward direction of the centre line
        off_r = out_r * np.cos(v) * tube
        off_z = out_z * np.cos(v) * tube
        off_f = np.sin(v) * tube * np.ones_like(u)
        px = cx + rx * (ring_r + off_r) + fx * off_f
        py = cy + ry * (ring_r + off_r) + fy * off_f
        pz = cz + ring_z + off_z
        nxx = rx * out_r * np.cos(v) + fx * np.sin(v)
        nyy = ry * out_r * np.cos(v) + fy * np.sin(v)
        nzz = out_z * np.cos(v)
        pos = np.stack([px, py, pz], axis=-1).reshape(-1, 3)
        nrm = np.stack([nxx, nyy, nzz], axis=-1).reshape(-1, 3)
        w = sides + 1
        tri = []
        for i in range(segments):
            for j in range(sides):
                a, b = i * w + j, i * w + j + 1
                c, d = a + w, b + w
                tri += [(a, b, c), (b, d, c)]
        self.add(pos, nrm, colour, tri)


def rgba(rgb: tuple[float, float, float], alpha: float = 1.0) -> RGBA:
    return (rgb[0], rgb[1], rgb[2], alpha)


def shade(rgb: tuple[float, float, float], factor: float) -> tuple[float, float, float]:
    """Lighter (factor > 1, towards white) or darker (factor < 1) versions of a colour."""
    if factor >= 1.0:
        t = factor - 1.0
        return tuple(c + (1.0 - c) * t for c in rgb)  # type: ignore[return-value]
    return tuple(c * factor for c in rgb)  # type: ignore[return-value]
