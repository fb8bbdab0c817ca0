"""Many copies of one mesh, each turned and moved, in one Geom rewritten each frame.

On a software renderer each draw call costs about a tenth of a millisecond whatever it
draws, so 200 far figures (or the minimap's 200 dots) drawn a node each cost more than the
whole hall. numpy places every copy (``place_copies``) into one vertex buffer: one draw
call for all. Used for the far figures of the crowd (they do not walk: from where they are
drawn a swing is a pixel; near figures stay nodes of their own, ``scene_avatars``) and the
people on the hall maps (``ui.HallMapPanel``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
from panda3d.core import Geom, GeomNode, GeomTriangles, GeomVertexData, NodePath, OmniBoundingVolume

from .mesh import Mesh
from .scene_geometry import vertex_format

Key = Hashable  # what a copy's vertex colours depend on (an avatar's colour and style)


def place_copies(template: Mesh, xs: np.ndarray, ys: np.ndarray, turns: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Positions and normals side by side, (copies, vertices, 6) float32, of the template
    turned by ``turns`` (radians counter-clockwise about +z, as Panda3D's H in radians) and
    moved to (``xs``, ``ys``, 0); written into ``out`` when given (a view of a vertex
    buffer's columns). One batched matrix product: a 6x6 block rotation per copy."""
    copies = len(turns)
    c, s = np.cos(turns).astype(np.float32), np.sin(turns).astype(np.float32)
    turn = np.zeros((copies, 6, 6), np.float32)  # row vectors: [x y z nx ny nz] @ turn
    turn[:, 0, 0] = turn[:, 1, 1] = turn[:, 3, 3] = turn[:, 4, 4] = c
    turn[:, 0, 1] = turn[:, 3, 4] = s
    turn[:, 1, 0] = turn[:, 4, 3] = -s
    turn[:, 2, 2] = turn[:, 5, 5] = 1.0
    if out is None:
        out = np.empty((copies, template.vertex_count, 6), np.float32)
    np.matmul(np.concatenate([template.positions, template.normals], axis=1), turn, out=out)
    out[:, :, 0] += np.asarray(xs, np.float32)[:, None]
    out[:, :, 1] += np.asarray(ys, np.float32)[:, None]
    return out


class Copies:
    """One node drawing a copy of ``template`` per item; ``colours`` gives a key's vertex
    colours (as many as the template's vertices: only colours differ between copies)."""

    def __init__(self, parent: NodePath, template: Mesh, colours: Callable[[Key], np.ndarray], name: str) -> None:
        self.template = template
        self._colours_of = colours
        self._colours: dict[Key, np.ndarray] = {}
        self._keys: tuple[Key, ...] = ()
        self._rows = np.zeros((0, template.vertex_count, 12), np.float32)  # position, normal, colour, UV
        self._indices = np.zeros(0, np.uint32)  # for as many copies as ever drawn: a prefix serves fewer
        self._vdata = GeomVertexData(name, vertex_format(), Geom.UH_stream)
        self._triangles = GeomTriangles(Geom.UH_stream)
        self._triangles.setIndexType(Geom.NT_uint32)
        geom = Geom(self._vdata)
        geom.addPrimitive(self._triangles)
        node = GeomNode(name)
        node.addGeom(geom)
        node.setBounds(OmniBoundingVolume())  # the copies move every frame: never culled as a whole
        node.setFinal(True)
        self.path = parent.attachNewNode(node)
        self.path.hide()
        self.count = 0

    def draw(self, keys: Sequence[Key], xs: np.ndarray, ys: np.ndarray, turns: np.ndarray) -> None:
        """This frame's copies: a key and a place each."""
        assert len(keys) == len(xs) == len(ys) == len(turns)
        copies = len(keys)
        if copies == 0:
            if self.count:
                self.path.hide()
                self.count = 0
            return
        if not self.count:
            self.path.show()
        vertices = self.template.vertex_count
        if tuple(keys) != self._keys:  # who is drawn changed: colours and UVs are rewritten only then
            self._keys = tuple(keys)
            self._rows = np.empty((copies, vertices, 12), np.float32)
            self._rows[:, :, 6:10] = np.stack([self._colour(k) for k in keys])
            self._rows[:, :, 10:12] = self.template.uvs
        rows = self._rows
        place_copies(self.template, xs, ys, turns, out=rows[:, :, 0:6])
        self._vdata.uncleanSetNumRows(copies * vertices)
        self._vdata.modifyArrayHandle(0).copyDataFrom(rows.reshape(-1))
        if copies != self.count:
            self._write_indices(copies)
        self.count = copies

    def _colour(self, key: Key) -> np.ndarray:
        colours = self._colours.get(key)
        if colours is None:
            colours = self._colours[key] = np.ascontiguousarray(self._colours_of(key), dtype=np.float32)
            assert colours.shape == (self.template.vertex_count, 4)
        return colours

    def _write_indices(self, copies: int) -> None:
        per_copy = self.template.triangles.size
        if len(self._indices) < copies * per_copy:
            grown = max(copies, 2 * len(self._indices) // max(per_copy, 1))
            offsets = (np.arange(grown, dtype=np.uint32) * self.template.vertex_count)[:, None]
            self._indices = (self.template.triangles.reshape(1, -1) + offsets).reshape(-1)
        handle = self._triangles.modifyVertices()
        handle.uncleanSetNumRows(copies * per_copy)
        handle.modifyHandle().copyDataFrom(self._indices[:copies * per_copy])

    def destroy(self) -> None:
        self.path.removeNode()
