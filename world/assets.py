"""Where the files that world files refer to live, and the naming conventions for them.

Asset paths in world files are relative to an assets directory: ``<expo dir>/assets`` when
an expo brings its own, otherwise the project's ``assets/`` (made by
``scripts/make_assets.py``). A booth's flag is found from its country code alone:
``flags/<cc>.png`` with ``cc`` lower case, e.g. ``flags/kz.png``.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ASSETS = Path(__file__).resolve().parent.parent / "assets"

# DejaVu Sans (Bitstream Vera licence, free to use and redistribute), from Debian's
# fonts-dejavu-core. Absent elsewhere: then use Panda3D's built-in default font.
DEJAVU_SANS = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_SANS_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def assets_root(expo_dir: Path | None = None) -> Path:
    """The directory asset paths of the expo in ``expo_dir`` are relative to."""
    if expo_dir is not None and (expo_dir / "assets").is_dir():
        return expo_dir / "assets"
    return PROJECT_ASSETS


def flag_asset(country: str) -> str:
    """The asset path of a country's flag, e.g. ``'KZ'`` -> ``'flags/kz.png'``."""
    return f"flags/{country.lower()}.png"


def font_file(bold: bool = False) -> Path | None:
    """A TrueType font for labels, or None to fall back to Panda3D's default font."""
    path = DEJAVU_SANS_BOLD if bold else DEJAVU_SANS
    return path if path.is_file() else None


def ink_for(background: tuple[float, float, float]) -> tuple[float, float, float]:
    """Dark text on light colours, white on dark ones (WCAG relative luminance), so a booth's
    name reads on its own colours whether drawn into an image or onto a panel."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in background]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return (0.1, 0.1, 0.12) if luminance > 0.4 else (1.0, 1.0, 1.0)
