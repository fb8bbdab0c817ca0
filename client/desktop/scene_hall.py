"""A hall's static scene in Panda3D: the layout's meshes with an atlas, a tiled floor and
labels, flattened into a few draw calls; plus the lights."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from panda3d.core import (
    AmbientLight,
    DirectionalLight,
    Filename,
    GeomNode,
    NodePath,
    PNMImage,
    RenderState,
    SamplerState,
    Texture,
    TextureAttrib,
    TransparencyAttrib,
    Vec4,
)

from world.model import Expo, Hall

from .atlas import pack
from .i18n import country_name
from .layout import PRIMITIVE_MODELS, TILE_SHADE, HallBuilder, HallLayout, hall_assets
from .mesh import Mesh
from .products import ProductModels, draw_fallback
from .scene_geometry import geom_node, load_font, place_label


def _read_image(path: Path) -> PNMImage | None:
    image = PNMImage()
    if not path.is_file() or not image.read(Filename.fromOsSpecific(str(path))):
        return None
    if not image.hasAlpha():
        image.addAlpha()
        image.alphaFill(1.0)
    return image


def _over(image: PNMImage, background: tuple[float, float, float]) -> PNMImage:
    """The image composited onto an opaque background: the atlas is drawn without blending."""
    out = PNMImage(image.getXSize(), image.getYSize(), 4)
    out.fill(*background)
    out.alphaFill(1)
    out.blendSubImage(image, 0, 0)
    return out


def build_atlas(assets_root: Path, paths: dict[str, tuple[float, float, float]]) -> tuple[Texture, dict[str, tuple[float, float, float, float]], tuple[float, float]]:
    """Every sign image of a hall in one texture, each over the colour of the panel it
    hangs on; returns it, the UV rectangle per asset path, and the UV of a white texel for
    untextured geometry."""
    images = {p: _over(img, bg) for p, bg in paths.items() if (img := _read_image(assets_root / p)) is not None}
    layout = pack({p: (img.getXSize(), img.getYSize()) for p, img in images.items()})
    atlas = PNMImage(layout.width, layout.height, 4)
    atlas.fill(1, 1, 1)
    atlas.alphaFill(1)
    for path, img in images.items():
        place = layout.placements[path]
        atlas.copySubImage(img, place.x, place.y)
        # repeat the edge pixels into the padding, so filtering at the border stays clean
        for dx, dy, sx, sy, w, h in ((-1, 0, 0, 0, 1, img.getYSize()), (img.getXSize(), 0, img.getXSize() - 1, 0, 1, img.getYSize()),
                                     (0, -1, 0, 0, img.getXSize(), 1), (0, img.getYSize(), 0, img.getYSize() - 1, img.getXSize(), 1)):
            atlas.copySubImage(img, place.x + dx, place.y + dy, sx, sy, w, h)
    texture = Texture("atlas")
    texture.load(atlas)
    texture.setMinfilter(SamplerState.FT_linear_mipmap_linear)
    texture.setMagfilter(SamplerState.FT_linear)
    texture.setAnisotropicDegree(4)
    texture.setWrapU(SamplerState.WM_clamp)
    texture.setWrapV(SamplerState.WM_clamp)
    return texture, {p: layout.uv(p) for p in images}, layout.white_uv()


def floor_texture(seed: int = 7) -> Texture:
    """A near-white tile with soft grout lines and a little grain: multiplied by the hall's
    floor colour it reads as a polished tiled floor without drawing a grid."""
    size = 128
    image = PNMImage(size, size, 3)
    rng = random.Random(seed)
    for y in range(size):
        for x in range(size):
            v = 0.95 + rng.uniform(-0.025, 0.025)
            edge = min(x, y, size - 1 - x, size - 1 - y)
            if edge < 2:
                v = 0.78 + edge * 0.06
            image.setXel(x, y, v, v, v)
    texture = Texture("floor")
    texture.load(image)
    texture.setMinfilter(SamplerState.FT_linear_mipmap_linear)
    texture.setMagfilter(SamplerState.FT_linear)
    texture.setAnisotropicDegree(8)
    texture.setWrapU(SamplerState.WM_repeat)
    texture.setWrapV(SamplerState.WM_repeat)
    return texture


@dataclass(slots=True)
class HallScene:
    hall: Hall
    root: NodePath
    layout: HallLayout
    models_shown: int = 0  # product spots drawn from their glTF file (the rest: primitives)

    def geom_count(self) -> int:
        return sum(n.node().getNumGeoms() for n in self.root.findAllMatches("**/+GeomNode"))

    def destroy(self) -> None:
        self.root.removeNode()


def cheap_filtering(root: NodePath) -> None:
    """Every texture under ``root`` sampled bilinearly from its full-size image: no mipmaps,
    no anisotropy. A software renderer (llvmpipe) pays per texel fetched, and trilinear
    with anisotropy fetches many per pixel: at low quality the hall with no avatars went
    from 82-86 to 23-32 CPU ms a frame (benchmarks/README.md). The sampler is set in the
    render states under ``root``, not on the textures: the glTF products' and the fonts'
    are shared through the loader's pool with whatever else draws them."""
    for path in [root, *root.findAllMatches("**")]:
        node = path.node()
        node.setState(_bilinear(node.getState()))
        if isinstance(node, GeomNode):
            for i in range(node.getNumGeoms()):
                node.setGeomState(i, _bilinear(node.getGeomState(i)))


def _bilinear(state: RenderState) -> RenderState:
    attrib = state.getAttrib(TextureAttrib)
    if not isinstance(attrib, TextureAttrib):
        return state
    for stage in attrib.getOnStages():
        sampler = SamplerState(attrib.getOnSampler(stage))
        sampler.setMinfilter(SamplerState.FT_linear)
        sampler.setMagfilter(SamplerState.FT_linear)
        sampler.setAnisotropicDegree(1)
        attrib = attrib.addOnStage(stage, attrib.getOnTexture(stage), sampler)
    return state.setAttrib(attrib)


def build_hall(expo: Expo, hall: Hall, assets_root: Path, products: ProductModels | None = None,
               fine_filtering: bool = True, language: str = "en") -> HallScene:
    """The hall's nodes under one root, flattened: one geom per material (atlas, floor,
    font, glow, the product models). Without ``products`` every product is its primitive.
    Without ``fine_filtering`` (low quality) its textures get :func:`cheap_filtering`; a
    world edit rebuilds the hall through here, so new banners get it too."""
    texture, regions, white = build_atlas(assets_root, hall_assets(expo, hall))
    stand_ins = {k: v for k, v in PRIMITIVE_MODELS.items() if (assets_root / v).is_file()} if products else None
    layout = HallBuilder(expo, hall, regions, white, country_name=country_name, primitive_models=stand_ins,
                         language=language).build()
    root = NodePath(f"hall-{hall.id}")
    static = root.attachNewNode("static")
    # the plain faces (most of every booth) apart from the signs: drawn without the atlas
    # they look the same, and a software renderer fetches no texel for their pixels
    signs, plain = layout.solid.split_plain(white)
    static.attachNewNode(geom_node(signs, "solid")).setTexture(texture)
    static.attachNewNode(geom_node(plain, "plain"))
    floor_node(layout, textured=fine_filtering).reparentTo(static)
    labels = static.attachNewNode("labels")
    font = load_font(True)
    for label in layout.labels:
        place_label(labels, label, font)
    labels.setLightOff(1)
    labels.setDepthOffset(2)  # text sits on its panel without fighting it for depth
    labels.setTransparency(TransparencyAttrib.MAlpha)
    shelf = static.attachNewNode("products")
    shown = 0
    for spot in layout.models:
        if products is None:
            draw_fallback(shelf, spot)
        elif products.place(shelf, spot):
            shown += 1
    static.flattenStrong()
    ceiling = root.attachNewNode(geom_node(layout.ceiling, "ceiling"))
    ceiling.setLightOff(1)
    glow = root.attachNewNode(geom_node(layout.glow, "glow"))
    glow.setLightOff(1)
    glow.setTransparency(TransparencyAttrib.MAlpha)
    glow.setDepthWrite(False)
    glow.setTwoSided(True)
    glow.setBin("transparent", 10)
    if not fine_filtering:
        cheap_filtering(root)
    return HallScene(hall, root, layout, shown)


def floor_node(layout: HallLayout, textured: bool = True) -> NodePath:
    """The hall's floor: the tiled texture over the floor colour, or (not ``textured``, for
    low quality) the tiles' grey as vertex colour and the grout as lines of geometry. On
    llvmpipe the textured floor cost about as much as all the hall's other geometry."""
    if textured:
        floor = NodePath(geom_node(layout.floor, "floor"))
        floor.setTexture(floor_texture())
        return floor
    tiles = layout.floor
    shade = np.array([TILE_SHADE, TILE_SHADE, TILE_SHADE, 1.0], np.float32)
    floor = NodePath(geom_node(Mesh(tiles.positions, tiles.normals, tiles.colours * shade, tiles.uvs, tiles.triangles),
                               "floor"))
    floor.attachNewNode(geom_node(layout.grout, "grout"))
    return floor


def add_lights(render: NodePath, fill: bool = True) -> list[NodePath]:
    """A warm key light from high in the south-east, a cool fill from the north-west (not
    at low quality: each light is a pass per vertex) and ambient: every face of a box reads
    differently, nothing is black."""
    ambient = AmbientLight("ambient")
    ambient.setColor(Vec4(0.42, 0.42, 0.45, 1))
    key = DirectionalLight("key")
    key.setColor(Vec4(0.75, 0.72, 0.66, 1))
    fill_light = DirectionalLight("fill")
    fill_light.setColor(Vec4(0.25, 0.27, 0.32, 1))
    lights = [render.attachNewNode(ambient), render.attachNewNode(key)]
    lights[1].setHpr(30, -55, 0)
    if fill:
        lights.append(render.attachNewNode(fill_light))
        lights[2].setHpr(-150, -35, 0)
    else:
        ambient.setColor(Vec4(0.55, 0.55, 0.58, 1))  # what the fill gave, flat
    for light in lights:
        render.setLight(light)
    return lights
