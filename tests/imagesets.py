"""Image sets the tests and benchmarks make: zips of JPEGs in one folder per class.

Each class is a shape (disc, square, horizontal bar, vertical bar, ring, ...) in its own
hue, drawn at a random place and size on a random dark background with pixel noise, so a
model has something to learn and nothing is trivially separable by one pixel.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

SHAPES = ("disc", "square", "hbar", "vbar", "ring", "cross", "diagonal", "dots")


def shape_image(shape: str, hue: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """One size x size RGB uint8 image of ``shape`` in colour ``hue`` (3 floats in 0..255)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    r = rng.uniform(0.15, 0.3) * size
    dy, dx = yy - cy, xx - cx
    masks = {
        "disc": dy ** 2 + dx ** 2 < r ** 2,
        "square": (abs(dy) < r) & (abs(dx) < r),
        "hbar": (abs(dy) < r / 3) & (abs(dx) < 1.5 * r),
        "vbar": (abs(dx) < r / 3) & (abs(dy) < 1.5 * r),
        "ring": abs(np.sqrt(dy ** 2 + dx ** 2) - r) < r / 4,
        "cross": ((abs(dy) < r / 4) | (abs(dx) < r / 4)) & (abs(dy) < r) & (abs(dx) < r),
        "diagonal": (abs(dy - dx) < r / 3) & (abs(dy) < r),
        "dots": ((dy % (r / 1.5)) < r / 4) & ((dx % (r / 1.5)) < r / 4) & (abs(dy) < r) & (abs(dx) < r),
    }
    img = np.empty((size, size, 3), np.float32)
    img[:] = rng.uniform(0, 80, 3)
    img[masks[shape]] = hue * rng.uniform(0.7, 1.0)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def class_folder_zip(path: Path, n_images: int = 1000, n_classes: int = 5, size: int = 64, seed: int = 0,
                     root: str = "shapes/") -> Path:
    """A .zip of ``n_images`` size x size colour JPEGs in ``n_classes`` class folders
    (``root``/<class>/<i>.jpg, the layout keras.utils.image_dataset_from_directory reads)."""
    from PIL import Image

    if not 2 <= n_classes <= len(SHAPES):
        raise ValueError(f"n_classes must be 2..{len(SHAPES)}")
    rng = np.random.default_rng(seed)
    hues = np.array([[230, 60, 60], [60, 200, 60], [70, 110, 240], [230, 200, 40], [200, 70, 220],
                     [60, 210, 210], [240, 140, 40], [200, 200, 200]], np.float32)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:  # JPEGs do not compress further
        for i in range(n_images):
            c = i % n_classes
            buf = io.BytesIO()
            Image.fromarray(shape_image(SHAPES[c], hues[c], size, rng)).save(buf, "JPEG", quality=90)
            z.writestr(f"{root}{SHAPES[c]}/{i:05d}.jpg", buf.getvalue())
    return Path(path)
