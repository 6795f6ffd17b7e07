"""Draw bundle/icon.png, the Claude Desktop bundle's icon: a shopping bag with a check mark on an indigo
rounded square. Standard library only (zlib + struct), 4x supersampled for smooth edges.

Run: python scripts/draw_icon.py   (rewrites bundle/icon.png; commit the result)
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

SIZE = 256
SCALE = 4
INDIGO = (79, 70, 229)
WHITE = (255, 255, 255)


def inside_rounded_square(x: float, y: float, radius: float = 0.2) -> bool:
    dx = max(abs(x - 0.5) - (0.5 - radius), 0.0)
    dy = max(abs(y - 0.5) - (0.5 - radius), 0.0)
    return dx * dx + dy * dy <= radius * radius


def near_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float], width: float) -> bool:
    (ax, ay), (bx, by) = a, b
    t = max(0.0, min(1.0, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)))
    return math.hypot(x - (ax + t * (bx - ax)), y - (ay + t * (by - ay))) <= width / 2


def white_at(x: float, y: float) -> bool:
    """The bag (body and handle) and, cut out of it, the check mark."""
    body = 0.24 <= x <= 0.76 and 0.36 <= y <= 0.80
    ring = abs(math.hypot(x - 0.5, y - 0.36) - 0.13) <= 0.03 and y <= 0.36
    corner = (0.46, 0.67)
    check = near_segment(x, y, (0.37, 0.58), corner, 0.07) or near_segment(x, y, corner, (0.64, 0.48), 0.07)
    return (body and not check) or ring


def pixel(px: int, py: int) -> tuple[int, int, int, int]:
    covered = white = 0
    for sy in range(SCALE):
        for sx in range(SCALE):
            x, y = (px + (sx + 0.5) / SCALE) / SIZE, (py + (sy + 0.5) / SCALE) / SIZE
            if inside_rounded_square(x, y):
                covered += 1
                white += white_at(x, y)
    samples = SCALE * SCALE
    if not covered:
        return (0, 0, 0, 0)
    share = white / covered
    rgb = tuple(round(c * (1 - share) + w * share) for c, w in zip(INDIGO, WHITE, strict=True))
    return (*rgb, round(255 * covered / samples))  # type: ignore[return-value]


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    raw = b"".join(b"\x00" + row for row in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    rows = [b"".join(bytes(pixel(px, py)) for px in range(SIZE)) for py in range(SIZE)]
    target = Path(__file__).resolve().parents[1] / "bundle" / "icon.png"
    target.write_bytes(png(SIZE, SIZE, rows))
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
