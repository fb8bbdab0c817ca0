"""Avatars in Panda3D: one node per visible avatar (its figure shares geometry with every
avatar of the same look), a billboarded name tag, a little bob while walking.

Levels of detail (Panda3D's LODNode, switched in its cull pass): past ``FIGURE_DETAIL``
metres from the camera a figure is drawn with a tenth of the triangles, and past
``TAG_DISTANCE`` its name tag is not drawn at all (too small to read there, and each tag is
two blended draws: in a crowd seen across the hall they were most of the frame)."""

from __future__ import annotations

import math

from panda3d.core import LODNode, NodePath, TransparencyAttrib

from client.interpolation import Pose

from .figure import avatar_mesh
from .scene_geometry import geom_node, load_font, text_node

BOB_HEIGHT = 0.045
STRIDE = 1.6  # metres per full bob cycle (two steps)
FIGURE_DETAIL = 25.0  # metres from the camera
TAG_DISTANCE = 40.0
FAR = 1e6


def heading(yaw: float) -> float:
    """Panda3D's H (degrees, 0 facing +y) for a yaw (radians counter-clockwise from +x)."""
    return math.degrees(yaw) - 90.0


class AvatarNode:
    __slots__ = ("root", "body", "tag", "phase", "last", "name")

    def __init__(self, root: NodePath, body: NodePath, tag: NodePath, name: str) -> None:
        self.root, self.body, self.tag, self.name = root, body, tag, name
        self.phase = 0.0
        self.last: tuple[float, float] | None = None


class AvatarLayer:
    """Keeps the nodes in step with the avatars to draw: ``sync`` each frame with
    (entity, name, colour, style, pose) for everyone, the visitor included."""

    def __init__(self, parent: NodePath, figure_detail: float = FIGURE_DETAIL, tag_distance: float = TAG_DISTANCE) -> None:
        self.figure_detail, self.tag_distance = figure_detail, tag_distance
        self.root = parent.attachNewNode("avatars")
        self.nodes: dict[int, AvatarNode] = {}
        self._figures: dict[tuple[int, int], NodePath] = {}  # an LODNode: near and far figure
        self._font = load_font(True)
        self.moving = False  # anyone moved at the last sync (the frame cap stays high)

    def _figure(self, colour: int, style: int) -> NodePath:
        key = (colour, style % 20)
        fig = self._figures.get(key)
        if fig is None:
            lod = LODNode(f"figure-{colour:06x}")
            fig = self._figures[key] = NodePath(lod)
            for far, (out, in_) in ((False, (self.figure_detail, 0.0)), (True, (FAR, self.figure_detail))):
                lod.addSwitch(out, in_)
                fig.attachNewNode(geom_node(avatar_mesh(colour, style, far=far), "far" if far else "near"))
        return fig

    def _make(self, entity: int, name: str, colour: int, style: int, own: bool) -> AvatarNode:
        root = self.root.attachNewNode(f"avatar-{entity}")
        body = root.attachNewNode("body")
        self._figure(colour, style).instanceTo(body)
        tn = text_node(name, (1, 1, 1, 1), self._font, name="tag")
        tn.setCardColor(0.05, 0.07, 0.12, 0.62 if not own else 0.8)
        tn.setCardAsMargin(0.25, 0.25, 0.1, 0.1)
        tn.setCardDecal(True)
        reach = LODNode("tag-reach")
        reach.addSwitch(self.tag_distance, 0.0)
        tag = root.attachNewNode(reach)
        tag.attachNewNode(tn.generate()).setScale(0.17)
        tag.setZ(2.05)
        tag.setBillboardPointEye()
        tag.setLightOff(1)
        tag.setTransparency(TransparencyAttrib.MAlpha)
        tag.setBin("fixed", 5)
        tag.setDepthWrite(False)
        return AvatarNode(root, body, tag, name)

    def sync(self, avatars: list[tuple[int, str, int, int, Pose, bool]], dt: float) -> None:
        seen = set()
        self.moving = False
        for entity, name, colour, style, pose, own in avatars:
            seen.add(entity)
            node = self.nodes.get(entity)
            if node is None:
                node = self.nodes[entity] = self._make(entity, name, colour, style, own)
            moved = 0.0 if node.last is None else math.hypot(pose.x - node.last[0], pose.y - node.last[1])
            node.last = (pose.x, pose.y)
            self.moving = self.moving or moved > 1e-4
            if pose.motion and moved < 3.0:
                node.phase = (node.phase + moved / STRIDE * 2 * math.pi) % (2 * math.pi)
            else:
                node.phase = 0.0
            bob = BOB_HEIGHT * abs(math.sin(node.phase))
            node.root.setPos(pose.x, pose.y, 0.0)
            node.body.setPosHpr(0, 0, bob, heading(pose.yaw), -4.0 if pose.motion == 2 else 0.0, 0)
        for entity in [e for e in self.nodes if e not in seen]:
            self.nodes.pop(entity).root.removeNode()

    def clear(self) -> None:
        for node in self.nodes.values():
            node.root.removeNode()
        self.nodes.clear()

    def __len__(self) -> int:
        return len(self.nodes)
