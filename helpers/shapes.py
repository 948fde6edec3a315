"""Shapes: small binary images of filled geometric shapes, generated deterministically.

The course's own `shapes.pkl` cannot be obtained, so the project draws its own set of the same kind:
20x20 images, one filled shape each (circle, square, triangle, pentagon, hexagon or five-pointed
star) at a random size, rotation and position. Shape pixels are 0 on a background of 1, like the
course's set. A pixel belongs to the shape when its centre lies inside it (no anti-aliasing), so the
images are exactly binary and depend only on numpy's legacy `RandomState`, whose stream is frozen.
"""

import numpy as np

KINDS = ("circle", "square", "triangle", "pentagon", "hexagon", "star")
_CORNERS = {"square": 4, "triangle": 3, "pentagon": 5, "hexagon": 6}


def _polygon_vertices(kind, radius, angle):
    """Vertices (k, 2) of a regular polygon or a five-pointed star of circumradius `radius`."""
    if kind == "star":
        k = 10
        radii = np.where(np.arange(k) % 2 == 0, radius, 0.45 * radius)
    else:
        k = _CORNERS[kind]
        radii = np.full(k, radius)
    theta = angle + 2 * np.pi * np.arange(k) / k
    return np.stack([radii * np.cos(theta), radii * np.sin(theta)], axis=1)


def _inside_polygon(points, vertices):
    """Even-odd rule: is each point (n, 2) inside the closed polygon `vertices` (k, 2)?"""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = vertices[:, 0], vertices[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (crosses & (x < x_cross)).sum(axis=1) % 2 == 1


def generate_shapes(n, size=20, seed=0):
    """`n` images of shape (size, size), uint8, shape pixels 0 on background 1.

    Each image: a kind drawn uniformly from KINDS, a circumradius in [0.15, 0.45] * size, a rotation
    in [0, 2 pi) and a centre that keeps the whole shape inside the image.
    """
    if n < 0 or size < 8:
        raise ValueError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    rng = np.random.RandomState(seed)
    centres = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).reshape(-1, 2) + 0.5
    images = np.ones((n, size, size), dtype=np.uint8)
    for i in range(n):
        kind = KINDS[rng.randint(len(KINDS))]
        radius = rng.uniform(0.15, 0.45) * size
        angle = rng.uniform(0, 2 * np.pi)
        centre = rng.uniform(radius, size - radius, size=2)
        offsets = centres - centre
        if kind == "circle":
            inside = (offsets**2).sum(axis=1) <= radius**2
        else:
            inside = _inside_polygon(offsets, _polygon_vertices(kind, radius, angle))
        images[i].reshape(-1)[inside] = 0
    return images
