"""sRGB → CIE Lab (D65), the one conversion every colour comparison uses: the prompt builder's
colour names, the adherence checker's palette, the editor's product matte. Distances in Lab follow
what the eye sees; plain RGB distance calls dark blues and dark reds "grey". Numpy only.
"""
from __future__ import annotations

import re

import numpy as np

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

# Linear sRGB → XYZ (IEC 61966-2-1), and the D65 white point.
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])
_D65 = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb) -> np.ndarray:
    """uint8 or 0..255 float sRGB (..., 3) -> CIE Lab (D65), float64."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def hex_to_rgb(code: str) -> tuple[int, int, int]:
    """'#1a2b3c' or '#fff' (the '#' optional) -> (r, g, b) 0..255; ValueError for anything else."""
    match = _HEX.match(code.strip()) if isinstance(code, str) else None
    if match is None:
        raise ValueError(f"palette colours must be hex like '#1a2b3c' or '#fff'; got {code!r}.")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
