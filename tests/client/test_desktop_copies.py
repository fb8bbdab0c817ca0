"""The far crowd: every far figure a copy in one Geom, placed as its own node would be."""

from __future__ import annotations

import math
import random

import numpy as np
from panda3d.core import GeomNode, GeomVertexReader, NodePath

from client.desktop.copies import Copies, place_copies
from client.desktop.figure import avatar_mesh, distant_mesh
from client.desktop.scene_avatars import AvatarLayer, heading
from client.interpolation import Pose


def test_a_copy_is_the_far_mesh_turned_and_moved_as_a_node_with_that_heading_would_be() -> None:
    template = avatar_mesh(0x3366CC, 3, far=True)
    rnd = random.Random(5)
    poses = [(rnd.uniform(-50, 50), rnd.uniform(-50, 50), rnd.uniform(-7, 7)) for _ in range(12)]
    xs, ys, yaws = (np.array(v) for v in zip(*poses))
    both = place_copies(template, xs, ys, np.radians([heading(y) for y in yaws]))
    positions, normals = both[:, :, :3], both[:, :, 3:]
    for (x, y, yaw), placed, turned in zip(poses, positions, normals):
        node = NodePath("figure")
        node.setPos(x, y, 0.0)
        node.setH(heading(yaw))
        mat = node.getMat()
        want = np.array([tuple(mat.xformPoint(tuple(map(float, p)))) for p in template.positions])
        assert np.allclose(placed, want, atol=1e-4)
        want_n = np.array([tuple(mat.xformVec(tuple(map(float, n)))) for n in template.normals])
        assert np.allclose(turned, want_n, atol=1e-5)


def visible_geom_nodes(root: NodePath) -> list[NodePath]:
    return [p for p in root.findAllMatches("**/+GeomNode")
            if not p.isHidden() and "tag" not in {a.getName() for a in p.getAncestors()} and p.node().getNumGeoms()]


def placed(crowd: Copies) -> list[tuple[float, float, tuple[float, ...]]]:
    """Each copy's middle and first vertex colour, read back from the vertex buffer."""
    node = crowd.path.node()
    assert isinstance(node, GeomNode)
    vdata = node.getGeom(0).getVertexData()
    vertices = crowd.template.vertex_count
    assert vdata.getNumRows() == vertices * crowd.count
    pos, col = GeomVertexReader(vdata, "vertex"), GeomVertexReader(vdata, "color")
    copies = []
    for _ in range(crowd.count):
        points = [pos.getData3() for _ in range(vertices)]
        colour = tuple(col.getData4())
        for _ in range(vertices - 1):
            col.getData4()
        copies.append((sum(p.x for p in points) / vertices, sum(p.y for p in points) / vertices, colour))
    return copies


def test_near_figures_are_nodes_that_walk_far_ones_copies_in_one_draw_distant_ones_in_another() -> None:
    scene = NodePath("render")
    camera = scene.attachNewNode("camera")
    camera.setPos(0.0, 0.0, 1.7)
    layer = AvatarLayer(scene, figure_detail=12.0, tag_distance=18.0)
    colours = {1: 0x3366CC, 2: 0xE4572E, 3: 0x2E9E5B}
    spots = {1: (3.0, 4.0), 2: (20.0, 0.0), 3: (0.0, -40.0)}  # near, far (12-24 m), distant
    avatars = [(e, f"v{e}", colours[e], e, Pose(*spots[e], 0.0, 1), False) for e in colours]
    layer.sync(avatars, 0.05)
    assert layer.place_figures(camera) == 1
    assert [e for e, n in layer.nodes.items() if not n.body.isHidden()] == [1]
    (far,), (distant,) = placed(layer.far), placed(layer.distant)
    assert (round(far[0]), round(far[1]), round(distant[0]), round(distant[1])) == (20, 0, 0, -40)
    assert np.allclose(far[2], avatar_mesh(colours[2], 2, far=True).colours[0], atol=1e-6)
    assert np.allclose(distant[2], distant_mesh(colours[3], 3).colours[0], atol=1e-6)
    assert layer.distant.template.vertex_count * 2 <= layer.far.template.vertex_count + 10
    # a draw each for the far and the distant crowd, five for the near figure (trunk and four limbs)
    drawn = visible_geom_nodes(layer.root)
    assert len(drawn) == 2 + 5 and {layer.far.path, layer.distant.path} <= set(drawn)
    # the near one walks: its legs swing; the far ones' limbs are not touched
    far_limb = layer.nodes[2].limbs[0].getP()
    for step in range(1, 6):
        layer.sync([(e, f"v{e}", colours[e], e, Pose(spots[e][0] + 0.2 * step, spots[e][1], 0.0, 1), False)
                    for e in colours], 0.05)
        layer.place_figures(camera)
    assert abs(layer.nodes[1].limbs[0].getP()) > 5.0
    assert layer.nodes[2].limbs[0].getP() == far_limb
    # the camera walks over to the second: it becomes a node, posed as it was synced, and the first a copy
    camera.setPos(21.0, 2.0, 1.7)
    assert layer.place_figures(camera) == 1
    assert layer.nodes[2].near and not layer.nodes[2].body.isHidden() and layer.nodes[1].body.isHidden()
    assert math.isclose(layer.nodes[2].body.getH(), heading(0.0), abs_tol=1e-4)
    assert abs(layer.nodes[2].limbs[0].getP()) > 5.0
    assert [(round(x), round(y)) for x, y, _c in placed(layer.far)] == [(4, 4)]  # both walked a metre east
    assert [(round(x), round(y)) for x, y, _c in placed(layer.distant)] == [(1, -40)]
    # whoever leaves is gone from the copies too; a cleared layer draws none
    layer.sync([a for a in avatars if a[0] != 3], 0.05)
    layer.place_figures(camera)
    assert layer.far.count == 1 and layer.distant.count == 0 and layer.distant.path.isHidden()
    layer.clear()
    assert layer.far.count == 0 and layer.far.path.isHidden()
