"""High quality's look: simplepbr's physically based shading, with the key light casting a
shadow map that follows the camera.

Why one direct light: on Mesa's llvmpipe (software GL, this project's test renderer) the
pbr fragment shader compiled with shadows and ``max_lights`` of 2 or more crashes LLVM's
JIT (a segfault in its EarlyCSE pass, Mesa 22.3 / LLVM 15), whichever of ``use_330`` is
set; with ``max_lights=1`` it compiles and draws. So the key light is the only direct
light and casts the shadows; the fill the fixed-function path had is folded into ambient.
Panda3D's own shader generator (``setShaderAuto``) is no way round it: it emits Cg, which
these wheels cannot load ("The profile is not supported").

Soft edges: the shadow map is sampled through a ``sampler2DShadow`` with linear filtering
(bilinear percentage-closer filtering in hardware and in llvmpipe), and a small map over a
small film keeps it cheap: only what is near the camera casts, which is what a visitor sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import simplepbr
from panda3d.core import AmbientLight, DirectionalLight, NodePath, Vec3, Vec4

SHADOW_MAP = 1024  # texels a side
SHADOW_FILM = 48.0  # metres a side the map covers, centred ahead of the camera
SHADOW_REACH = 60.0  # metres back along the light from the centre to the light's lens
KEY_HPR = (30.0, -55.0, 0.0)  # warm key light from high in the south-east, as at low


@dataclass(frozen=True, slots=True)
class PbrLighting:
    """The pipeline and the key light, so the frame task can move the shadow's film."""

    pipeline: simplepbr.Pipeline
    key: NodePath
    ambient: NodePath

    def follow(self, x: float, y: float) -> None:
        """Centre the shadow map's film on (x, y) on the floor: the light keeps its direction."""
        back = self.key.getQuat().getForward() * -SHADOW_REACH
        self.key.setPos(Vec3(x, y, 0.0) + back)


def pbr_lighting(render: NodePath, multisamples: int = 0) -> PbrLighting:
    """Set up physically based shading on ``render`` with one shadow-casting key light."""
    pipeline = simplepbr.init(render_node=render, msaa_samples=multisamples, max_lights=1,  # type: ignore[arg-type]
                              enable_shadows=True, use_330=True, use_normal_maps=False)
    ambient = render.attachNewNode(AmbientLight("ambient"))
    ambient.node().setColor(Vec4(0.45, 0.45, 0.5, 1))  # the fixed-function ambient plus some of the fill
    sun = DirectionalLight("key")
    sun.setColor(Vec4(2.2, 2.1, 1.9, 1))  # about pi times the fixed-function key: Lambert divides by pi
    sun.setShadowCaster(True, SHADOW_MAP, SHADOW_MAP)
    lens = sun.getLens()
    lens.setFilmSize(SHADOW_FILM, SHADOW_FILM)
    lens.setNearFar(1.0, 2 * SHADOW_REACH)
    key = render.attachNewNode(sun)
    key.setHpr(*KEY_HPR)
    for light in (ambient, key):
        render.setLight(light)
    lighting = PbrLighting(pipeline, key, ambient)
    lighting.follow(0.0, 0.0)
    return lighting
