"""World files (TOML) and their model: loader, validation, manifest, the default expo.

The server and the client need only these names::

    expo = load_expo(default_expo_path())      # raises WorldError listing every problem
    expo, problems = check_expo(path)          # never raises for bad files
    data = to_manifest(expo)                   # msgpack-able dict sent to clients at join
    expo = from_manifest(data)
"""

from .assets import assets_root, flag_asset, font_file
from .loader import check_expo, check_files, default_expo_path, load_expo
from .manifest import from_manifest, to_manifest
from .problems import Problem, WorldError

__all__ = [
    "Problem", "WorldError", "assets_root", "check_expo", "check_files", "default_expo_path",
    "flag_asset", "font_file", "from_manifest", "load_expo", "to_manifest",
]
