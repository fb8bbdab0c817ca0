"""Avatars in Panda3D: one node per visible avatar (its figure shares geometry with every
avatar of the same look), a billboarded name tag, a walk: legs and arms swinging and the
body dipping with each step.

Levels of detail, chosen each frame once the camera has moved (``place_figures``): within
``figure_detail`` metres of the camera a figure is its own trunk and four limbs that swing
(five draws); past it the figure is a copy of the one-piece far mesh, a tenth of the
triangles, in the one Geom of ``copies.Copies`` (one draw for the whole far crowd: on
a software renderer draws, not triangles, were most of a crowd's frame); past twice that,
a copy of the distant mesh (half the far one's vertices) in a second one. Name tags are
placed each frame by ``nametags.arrange`` (``place_tags``): the near ones opaque, fading
out towards ``TAG_DISTANCE``, lifted a row or culled where they would cover a nearer one;
past ``TAG_DISTANCE`` none is drawn (too small to read there, and each tag is two blended
draws: in a crowd seen across the hall they were most of the frame)."""

from __future__ import annotations

import math

import numpy as np
from panda3d.core import NodePath, TransparencyAttrib

from client.interpolation import Pose

from .copies import Copies
from .figure import avatar_mesh, distant_mesh, figure_parts, limb_pivots, swing
from .nametags import TagSpot, arrange
from .scene_geometry import geom_node, load_font, text_node

BOB_HEIGHT = 0.045
STRIDE = 1.6  # metres per full bob cycle (two steps)
FIGURE_DETAIL = 25.0  # metres from the camera
TAG_DISTANCE = 40.0
TAG_HEIGHT = 2.05  # metres: the tag's anchor above the feet
TAG_SCALE = 0.17  # metres per text unit
FIGURE_MIDDLE = 0.9  # metres above the feet: where a figure's distance is measured from


def heading(yaw: float) -> float:
    """Panda3D's H (degrees, 0 facing +y) for a yaw (radians counter-clockwise from +x)."""
    return math.degrees(yaw) - 90.0


class AvatarNode:
    __slots__ = ("root", "body", "limbs", "tag", "card", "size", "key", "phase", "last", "pose", "near",
                 "name", "own", "drawn")

    def __init__(self, root: NodePath, body: NodePath, limbs: list[NodePath], tag: NodePath, card: NodePath,
                 size: tuple[float, float, float], key: tuple[int, int], name: str, own: bool) -> None:
        self.root, self.body, self.limbs, self.tag, self.card = root, body, limbs, tag, card
        self.key, self.name, self.own = key, name, own
        self.size = size  # the tag's card: width, height, centre above the anchor (metres)
        self.phase = 0.0
        self.last: tuple[float, float] | None = None
        self.pose = (0.0, 0.0, 0.0)  # the body's dip (z), H and P as last synced
        self.near = False  # drawn as its own node (limbs that swing); else a copy in the far crowd
        self.drawn: tuple[float, float, float] | None = None  # alpha, scale, lift as last set; None: hidden

    def pose_body(self) -> None:
        dip, h, p = self.pose
        self.body.setPosHpr(0, 0, dip, h, p, 0)
        for limb, pitch in zip(self.limbs, swing(self.phase)):
            limb.setP(pitch)


class AvatarLayer:
    """Keeps the nodes in step with the avatars to draw: ``sync`` each frame with
    (entity, name, colour, style, pose) for everyone, the visitor included, then, once the
    camera has moved, ``place_figures`` and ``place_tags``."""

    def __init__(self, parent: NodePath, figure_detail: float = FIGURE_DETAIL, tag_distance: float = TAG_DISTANCE) -> None:
        self.figure_detail, self.tag_distance = figure_detail, tag_distance
        self.root = parent.attachNewNode("avatars")
        self.nodes: dict[int, AvatarNode] = {}
        self._trunks: dict[tuple[int, int], NodePath] = {}
        self._limbs: dict[tuple[int, int], tuple[NodePath, NodePath]] = {}  # a leg and an arm
        self.far = Copies(self.root, avatar_mesh(0, 0, far=True), self._far_colours, "far-crowd")
        self.distant = Copies(self.root, distant_mesh(0, 0), self._distant_colours, "distant-crowd")
        self._font = load_font(True)
        self.moving = False  # anyone moved at the last sync (the frame cap stays high)

    @staticmethod
    def _far_colours(key) -> np.ndarray:
        colour, style = key
        return avatar_mesh(colour, style, far=True).colours

    @staticmethod
    def _distant_colours(key) -> np.ndarray:
        colour, style = key
        return distant_mesh(colour, style).colours

    def _figure(self, key: tuple[int, int]) -> tuple[NodePath, tuple[NodePath, NodePath]]:
        trunk = self._trunks.get(key)
        if trunk is None:
            parts = figure_parts(*key)
            trunk = self._trunks[key] = NodePath(geom_node(parts.trunk, f"figure-{key[0]:06x}"))
            self._limbs[key] = (NodePath(geom_node(parts.leg, "leg")), NodePath(geom_node(parts.arm, "arm")))
        return trunk, self._limbs[key]

    def _make(self, entity: int, name: str, colour: int, style: int, own: bool, staff_of: str | None = None) -> AvatarNode:
        key = (colour, style % 20)
        root = self.root.attachNewNode(f"avatar-{entity}")
        body = root.attachNewNode("body")
        trunk, (leg, arm) = self._figure(key)
        trunk.instanceTo(body)
        limbs = []
        for i, pivot in enumerate(limb_pivots()):
            limb = body.attachNewNode("limb")
            limb.setPos(*pivot)
            (leg if i < 2 else arm).instanceTo(limb)
            limbs.append(limb)
        body.hide()  # until place_figures finds it near
        # booth staff wear their exhibitor's name on a gold tag: whom to ask, from across the aisle
        label = f"{name}  ·  {staff_of}" if staff_of else name
        tn = text_node(label, (1, 1, 1, 1) if not staff_of else (0.1, 0.07, 0.0, 1), self._font, name="tag")
        if staff_of:
            tn.setCardColor(0.98, 0.78, 0.28, 0.85)
        else:
            tn.setCardColor(0.05, 0.07, 0.12, 0.62 if not own else 0.8)
        tn.setCardAsMargin(0.25, 0.25, 0.1, 0.1)
        tn.setCardDecal(True)
        tag = root.attachNewNode("tag")
        card = tag.attachNewNode("card")
        card.attachNewNode(tn.generate()).setScale(TAG_SCALE)
        left, right, bottom, top = tn.getCardActual()
        tag.setZ(TAG_HEIGHT)
        tag.setBillboardPointEye()
        tag.setLightOff(1)
        tag.setTransparency(TransparencyAttrib.MAlpha)
        tag.setBin("fixed", 5)
        tag.setDepthWrite(False)
        tag.hide()  # until place_tags finds it a place
        size = ((right - left) * TAG_SCALE, (top - bottom) * TAG_SCALE, (top + bottom) / 2 * TAG_SCALE)
        node = AvatarNode(root, body, limbs, tag, card, size, key, name, own)
        node.tag.setTag("label", label)  # what the tag says, for tests and tools
        return node

    def sync(self, avatars: list[tuple[int, str, int, int, Pose, bool]], dt: float,
             staff: dict[int, str] | None = None) -> None:
        """``staff``: the entities that are booth staff, with their exhibitor's name."""
        staff = staff or {}
        seen = set()
        self.moving = False
        for entity, name, colour, style, pose, own in avatars:
            seen.add(entity)
            node = self.nodes.get(entity)
            if node is None:
                node = self.nodes[entity] = self._make(entity, name, colour, style, own, staff.get(entity))
            moved = 0.0 if node.last is None else math.hypot(pose.x - node.last[0], pose.y - node.last[1])
            node.last = (pose.x, pose.y)
            self.moving = self.moving or moved > 1e-4
            was = node.phase
            if pose.motion and moved < 3.0:
                node.phase = (node.phase + moved / STRIDE * 2 * math.pi) % (2 * math.pi)
            else:
                node.phase = 0.0
            # the hips are lowest when the legs are furthest apart: the body dips there
            dip = -BOB_HEIGHT * abs(math.sin(node.phase))
            node.root.setPos(pose.x, pose.y, 0.0)
            body = (dip, heading(pose.yaw), -4.0 if pose.motion == 2 else 0.0)
            changed = body != node.pose or node.phase != was
            node.pose = body  # a far figure's node is posed when it comes near (place_figures)
            if node.near and changed:
                node.pose_body()
        for entity in [e for e in self.nodes if e not in seen]:
            self.nodes.pop(entity).root.removeNode()

    def place_figures(self, camera: NodePath) -> int:
        """Each figure near, far or distant for this camera (call after the camera has
        moved): the near ones shown as their nodes, the others as copies in the far and
        the distant crowd, which are redrawn; returns how many are near."""
        cx, cy, cz = camera.getPos(self.root)
        reach2 = self.figure_detail ** 2
        batches: tuple[tuple[list, list, list, list], ...] = (([], [], [], []), ([], [], [], []))  # far, distant
        near = 0
        for node in self.nodes.values():
            x, y = node.last or (0.0, 0.0)
            d2 = (x - cx) ** 2 + (y - cy) ** 2 + (FIGURE_MIDDLE - cz) ** 2
            close = d2 <= reach2
            if close != node.near:
                node.near = close
                if close:
                    node.pose_body()
                    node.body.show()
                else:
                    node.body.hide()
            if close:
                near += 1
            elif not node.root.isHidden():  # our own, when the camera is pulled into our head
                keys, xs, ys, turns = batches[d2 > 4 * reach2]
                keys.append(node.key)
                xs.append(x)
                ys.append(y)
                turns.append(math.radians(node.pose[1]))
        for crowd, (keys, xs, ys, turns) in zip((self.far, self.distant), batches):
            crowd.draw(keys, np.array(xs), np.array(ys), np.array(turns))
        return near

    def place_tags(self, camera: NodePath, pixels_per_unit: float, hide_own: bool = False) -> int:
        """Each tag drawn where ``nametags.arrange`` puts it for this camera (call after the
        camera has moved); returns how many are drawn. ``hide_own``: the camera is pulled
        in so close that our own name would fill the view."""
        cx, cy, cz = camera.getPos(self.root)
        reach2 = self.tag_distance ** 2
        spots: list[TagSpot] = []
        grounded: set[int] = set()
        for entity, node in self.nodes.items():
            x, y = node.last or (0.0, 0.0)
            if (x - cx) ** 2 + (y - cy) ** 2 + (TAG_HEIGHT - cz) ** 2 > reach2 or (node.own and hide_own):
                continue
            width, height, centre = node.size
            p = camera.getRelativePoint(node.root, (0.0, 0.0, TAG_HEIGHT + centre))
            spots.append(TagSpot(entity, p.x, p.y, p.z, width, height, node.own))
            if node.drawn is not None and node.drawn[2] == 0.0:
                grounded.add(entity)
        places = {t.entity: t for t in arrange(spots, self.tag_distance, pixels_per_unit, grounded)}
        for entity, node in self.nodes.items():
            t = places.get(entity)
            if t is None:
                if node.drawn is not None:
                    node.tag.hide()
                    node.drawn = None
                continue
            want = (round(t.alpha * 8) / 8, round(t.scale, 2), round(t.lift, 2))  # steps: few state changes
            if want != node.drawn:
                if node.drawn is None:
                    node.tag.show()
                node.tag.setAlphaScale(want[0])
                node.tag.setScale(want[1])
                node.card.setZ(want[2] / want[1])  # the card's frame is the scaled tag's
                node.drawn = want
        return len(places)

    def clear(self) -> None:
        for node in self.nodes.values():
            node.root.removeNode()
        self.nodes.clear()
        for crowd in (self.far, self.distant):
            crowd.draw([], np.zeros(0), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.nodes)
