"""A small numpy rasteriser for the cart-pole (no pygame or display needed)."""
from __future__ import annotations

import math

import numpy as np

BACKGROUND = (255, 255, 255)
RAIL = (90, 90, 90)
LIMIT = (200, 60, 60)
CART = (40, 90, 160)
POLE = (200, 140, 40)
TARGET_ON = (40, 170, 60)
TARGET_OFF = (160, 160, 160)


def _disc(img: np.ndarray, cx: float, cy: float, radius: float, color: tuple) -> None:
    h, w, _ = img.shape
    x0, x1 = max(int(cx - radius), 0), min(int(cx + radius) + 2, w)
    y0, y1 = max(int(cy - radius), 0), min(int(cy + radius) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius * radius
    img[y0:y1, x0:x1][mask] = color


def _segment(img: np.ndarray, ax: float, ay: float, bx: float, by: float, half_width: float,
             color: tuple) -> None:
    """Thick line: every pixel within half_width of the segment a-b."""
    h, w, _ = img.shape
    x0 = max(int(min(ax, bx) - half_width), 0)
    x1 = min(int(max(ax, bx) + half_width) + 2, w)
    y0 = max(int(min(ay, by) - half_width), 0)
    y1 = min(int(max(ay, by) + half_width) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = bx - ax, by - ay
    length_sq = dx * dx + dy * dy
    t = np.zeros_like(xs) if length_sq == 0.0 else np.clip(((xs - ax) * dx + (ys - ay) * dy) / length_sq, 0.0, 1.0)
    dist_sq = (xs - (ax + t * dx)) ** 2 + (ys - (ay + t * dy)) ** 2
    img[y0:y1, x0:x1][dist_sq <= half_width * half_width] = color


def draw_cartpole(x: float, theta: float, pole_length: float, x_limit: float, target_x: float,
                  on_target: bool, width: int = 400, height: int = 300) -> np.ndarray:
    """RGB uint8 image (height, width, 3) of the cart, pole, rail limits and target point."""
    # Scale so that the rail (with a margin) and a full pole above and below fit.
    span_x = 2.0 * max(x_limit, abs(target_x)) + 2.2 * pole_length
    scale = min(width / span_x, height / (2.3 * pole_length))
    origin_x, origin_y = width / 2.0, height / 2.0 + 0.05 * pole_length * scale
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = BACKGROUND

    def px(wx: float, wy: float) -> tuple:
        return origin_x + wx * scale, origin_y - wy * scale

    rail_l, rail_y = px(-x_limit, 0.0)
    rail_r, _ = px(x_limit, 0.0)
    _segment(img, rail_l, rail_y, rail_r, rail_y, 1.5, RAIL)
    for end in (rail_l, rail_r):
        _segment(img, end, rail_y - 12, end, rail_y + 12, 1.5, LIMIT)
    tx, ty = px(target_x, pole_length)
    _disc(img, tx, ty, max(3.0, 0.05 * scale), TARGET_ON if on_target else TARGET_OFF)
    cx, cy = px(x, 0.0)
    cart_w, cart_h = 0.16 * scale, 0.07 * scale
    _segment(img, cx - cart_w / 2, cy, cx + cart_w / 2, cy, cart_h / 2, CART)
    tip_x, tip_y = px(x + pole_length * math.sin(theta), pole_length * math.cos(theta))
    _segment(img, cx, cy, tip_x, tip_y, max(2.0, 0.012 * scale), POLE)
    _disc(img, cx, cy, max(2.0, 0.015 * scale), RAIL)
    return img
