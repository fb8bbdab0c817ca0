"""The hall's product models: glTF files (scripts/product_models.py) loaded with panda3d-gltf.

Models are loaded once per file and copied per counter spot, tinted with the product's
colour; the hall flattens them with its other static geometry, so a hall full of products
costs a few draw calls, not one per product. A file that does not load is logged and the
product drawn as its primitive: a broken asset never leaves a counter empty."""

from __future__ import annotations

import logging
from pathlib import Path

import gltf
from panda3d.core import NodePath

from .layout import ModelSpot, draw_primitive
from .mesh import MeshBuilder
from .scene_geometry import geom_node

log = logging.getLogger(__name__)


def draw_fallback(parent: NodePath, spot: ModelSpot) -> None:
    """The spot's primitive in place of its model."""
    mesh = MeshBuilder()
    draw_primitive(mesh, spot.fallback, spot.position, spot.scale, spot.colour)
    parent.attachNewNode(geom_node(mesh.build(), f"primitive:{spot.model}"))


class ProductModels:
    """glTF files by asset path, each loaded at most once (a failure is remembered too)."""

    def __init__(self, assets_root: Path) -> None:
        self.assets_root = assets_root
        self._loaded: dict[str, NodePath | None] = {}

    def model(self, path: str) -> NodePath | None:
        if path not in self._loaded:
            try:
                node: NodePath | None = NodePath(gltf.load_model(str(self.assets_root / path)))
            except Exception as e:  # the loader raises many kinds (I/O, JSON, glTF content)
                log.warning("product model %s did not load (%s); drawing its primitive instead", path, e)
                node = None
            self._loaded[path] = node
        return self._loaded[path]

    def place(self, parent: NodePath, spot: ModelSpot) -> bool:
        """The spot's model under ``parent``, or its primitive if the file will not load;
        True when the model was used."""
        model = self.model(spot.model)
        if model is None:
            draw_fallback(parent, spot)
            return False
        copy = parent.attachNewNode(f"model:{spot.model}")
        for part in model.getChildren():  # not the ModelRoot itself: flattening keeps those apart
            part.copyTo(copy)
        copy.setPos(*spot.position)
        copy.setScale(spot.scale)
        copy.setColorScale(*spot.colour)
        # the fixed-function lighting uses a material's own colour, not the vertex colours the
        # tint is baked into by flattening
        copy.setMaterialOff(1)
        return True
