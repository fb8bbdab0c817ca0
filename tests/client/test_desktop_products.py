"""The product models: scripts/product_models.py makes the committed .glb files, panda3d-gltf
loads them, the hall shows them in place of primitives, and a broken file falls back to the
primitive with a warning."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import gltf
from panda3d.core import GeomNode, NodePath, SamplerState, TextureAttrib

from client.desktop.app import QUALITIES
from client.desktop.layout import PRIMITIVE_MODELS, hall_assets
from client.desktop.products import ProductModels
from client.desktop.scene_hall import build_atlas, build_hall
from world.assets import PROJECT_ASSETS
from world.loader import default_expo_path, load_expo

ROOT = Path(__file__).resolve().parents[2]


def test_the_script_makes_the_committed_models_and_they_load(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "product_models.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    made = sorted(p.name for p in tmp_path.glob("*.glb"))
    assert made == ["bottle.glb", "carpet.glb", "jar.glb", "package.glb", "vase.glb"]
    for name in made:
        assert (tmp_path / name).read_bytes() == (PROJECT_ASSETS / "models" / name).read_bytes(), f"{name}: run the script"
        model = NodePath(gltf.load_model(str(tmp_path / name)))
        lo, hi = model.getTightBounds()
        assert 0.3 < hi.x - lo.x <= 1.05 and abs(lo.z) < 1e-4 and 0.3 < hi.z <= 1.05, (name, lo, hi)  # z-up, on the counter


def _hall(assets: Path, products: ProductModels | None, fine_filtering: bool = True):
    expo = load_expo(default_expo_path())
    return build_hall(expo, expo.halls[0], assets, products, fine_filtering=fine_filtering)


def _samplers(root: NodePath) -> list[tuple[str, SamplerState]]:
    """Each texture drawn under ``root`` with the sampler its render state draws it with."""
    states = []
    for path in [root, *root.findAllMatches("**")]:
        node = path.node()
        states.append(node.getState())
        if isinstance(node, GeomNode):
            states += [node.getGeomState(i) for i in range(node.getNumGeoms())]
    out = []
    for state in states:
        attrib = state.getAttrib(TextureAttrib)
        if isinstance(attrib, TextureAttrib):
            out += [(attrib.getOnTexture(st).getName(), attrib.getOnSampler(st)) for st in attrib.getOnStages()]
    return out


def _fine(root: NodePath) -> list[str]:
    """The textures under ``root`` sampled through mipmaps or anisotropically."""
    return sorted({name for name, sampler in _samplers(root)
                   if SamplerState.isMipmap(sampler.getEffectiveMinfilter()) or sampler.getAnisotropicDegree() > 1})


def test_low_quality_samples_the_halls_textures_bilinearly_and_high_keeps_mipmaps():
    # low first: the glTF products' textures are shared through the loader's pool, and low must not change them
    low = _hall(PROJECT_ASSETS, ProductModels(PROJECT_ASSETS), QUALITIES["low"].fine_filtering)
    high = _hall(PROJECT_ASSETS, ProductModels(PROJECT_ASSETS), QUALITIES["high"].fine_filtering)
    drawn = _samplers(low.root)
    assert "atlas" in {name for name, _s in drawn} and low.models_shown > 0
    assert "floor" not in {name for name, _s in drawn}  # low draws the tiles' grout as lines, not a texture
    assert _fine(low.root) == []
    assert all(sampler.getMagfilter() == SamplerState.FT_linear for _n, sampler in drawn)
    assert {"atlas", "floor"} <= set(_fine(high.root))
    # the textures themselves keep their filters: the products' come from the loader's pool
    assert {"atlas"} <= {t.getName() for t in low.root.findAllTextures() if SamplerState.isMipmap(t.getEffectiveMinfilter())}


def test_the_hall_shows_every_product_as_a_model_in_few_draw_calls():
    plain = _hall(PROJECT_ASSETS, None)
    hall = _hall(PROJECT_ASSETS, ProductModels(PROJECT_ASSETS))
    assert len(hall.layout.models) > 20 and hall.models_shown == len(hall.layout.models)
    assert {s.model for s in hall.layout.models} >= set(PRIMITIVE_MODELS.values()) | {"models/carpet.glb"}
    assert hall.geom_count() <= plain.geom_count() + 2  # flattened with the rest, not a geom per product
    # without models the two rugs (models/carpet.glb in their world files) are their boxes
    assert plain.models_shown == 0 and len(plain.layout.models) == 2
    untextured = [node.node().getGeom(i) for node in plain.root.find("static").findAllMatches("**/+GeomNode")
                  for i in range(node.node().getNumGeoms()) if node.node().getGeomState(i).isEmpty()]
    expo = load_expo(default_expo_path())
    white = build_atlas(PROJECT_ASSETS, hall_assets(expo, expo.halls[0]))[2]
    _signs, faces = plain.layout.solid.split_plain(white)  # the booths' plain faces share the boxes' state
    assert [sum(g.getPrimitive(k).getNumVertices() for k in range(g.getNumPrimitives())) for g in untextured] == [
        3 * len(faces.triangles) + 2 * 5 * 6]  # and the two boxes, five faces each


def test_a_model_that_will_not_load_is_drawn_as_its_primitive(tmp_path, caplog):
    assets = tmp_path / "assets"
    shutil.copytree(PROJECT_ASSETS, assets)
    (assets / "models" / "jar.glb").write_bytes(b"glTF not really")
    with caplog.at_level(logging.WARNING):
        hall = _hall(assets, ProductModels(assets))
    jars = [s for s in hall.layout.models if s.model == "models/jar.glb"]
    assert jars and hall.models_shown == len(hall.layout.models) - len(jars)
    assert "models/jar.glb did not load" in caplog.text and "drawing its primitive instead" in caplog.text
