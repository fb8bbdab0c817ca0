"""Panda3D nodes from the pure pieces: meshes to GeomNodes, labels to text, a font."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from panda3d.core import (
    DynamicTextFont,
    Filename,
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
    InternalName,
    NodePath,
    TextFont,
    TextNode,
)

from world.assets import font_file

from .layout import Label
from .mesh import Mesh
from .text import display


@lru_cache(maxsize=1)
def vertex_format() -> GeomVertexFormat:
    """Position, normal, RGBA colour and UV, all float32 and interleaved: the layout of
    ``Mesh`` arrays side by side, so one numpy hstack fills a vertex buffer."""
    array = GeomVertexArrayFormat()
    array.addColumn(InternalName.getVertex(), 3, Geom.NT_float32, Geom.C_point)
    array.addColumn(InternalName.getNormal(), 3, Geom.NT_float32, Geom.C_normal)
    array.addColumn(InternalName.getColor(), 4, Geom.NT_float32, Geom.C_color)
    array.addColumn(InternalName.getTexcoord(), 2, Geom.NT_float32, Geom.C_texcoord)
    return GeomVertexFormat.registerFormat(GeomVertexFormat(array))


def geom_node(mesh: Mesh, name: str) -> GeomNode:
    """One Geom holding the whole mesh, written from the numpy arrays in two copies."""
    node = GeomNode(name)
    if mesh.vertex_count == 0:
        return node
    data = np.hstack([mesh.positions, mesh.normals, mesh.colours, mesh.uvs]).astype(np.float32)
    vdata = GeomVertexData(name, vertex_format(), Geom.UH_static)
    vdata.uncleanSetNumRows(len(data))
    vdata.modifyArrayHandle(0).copyDataFrom(np.ascontiguousarray(data).tobytes())
    prim = GeomTriangles(Geom.UH_static)
    prim.setIndexType(Geom.NT_uint32)
    indices = np.ascontiguousarray(mesh.triangles, dtype=np.uint32).reshape(-1)
    handle = prim.modifyVertices()
    handle.uncleanSetNumRows(len(indices))
    handle.modifyHandle().copyDataFrom(indices.tobytes())
    geom = Geom(vdata)
    geom.addPrimitive(prim)
    node.addGeom(geom)
    return node


@lru_cache(maxsize=2)
def load_font(bold: bool = True) -> TextFont | None:
    """DejaVu Sans when installed (crisp at any size), else Panda3D's built-in font."""
    path = font_file(bold)
    if path is None:
        return None
    font = DynamicTextFont(Filename.fromOsSpecific(str(path)))
    if not font.isValid():
        return None
    font.setPixelsPerUnit(64)
    font.setPageSize(1024, 1024)  # one page holds every glyph a hall needs: one texture
    return font


def text_node(text: str, colour, font: TextFont | None, align: int = TextNode.ACenter, wrap: float | None = None,
              name: str = "text") -> TextNode:
    tn = TextNode(name)
    if font is not None:
        tn.setFont(font)
    tn.setText(display(text))
    tn.setAlign(align)
    tn.setTextColor(*colour)
    if wrap:
        tn.setWordwrap(wrap)
    return tn


def place_label(parent: NodePath, label: Label, font: TextFont | None) -> NodePath:
    """Panda3D text lies in the XZ plane readable from -Y; turn it to face ``label.facing``."""
    tn = text_node(label.text, label.colour, font, wrap=label.wrap / label.height if label.wrap else None)
    np_ = parent.attachNewNode(tn.generate())
    frame = tn.getFrameActual()
    wide = (frame[1] - frame[0]) * label.height
    scale = label.height if not label.fit or wide <= label.fit else label.height * label.fit / wide
    np_.setScale(scale)
    fx, fy = label.facing
    np_.setH(math.degrees(math.atan2(fx, -fy)))
    x, y, z = label.position
    mid = (frame[2] + frame[3]) / 2 * scale  # the text block centred vertically on the position
    np_.setPos(x, y, z - mid)
    return np_
