#!/usr/bin/env python3
"""Render dashboard buffers (JSON dumped by `cargo test --test tui screenshots -- --ignored`)
to PNG: one monospace cell per character, ratatui's colours and modifiers.

usage: render.py DUMP_DIR OUT_DIR    (needs Pillow and the DejaVu fonts)
"""
import json
import pathlib
import sys

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = pathlib.Path("/usr/share/fonts/truetype/dejavu")
SIZE = 15
MONO = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono.ttf"), SIZE)
MONO_BOLD = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono-Bold.ttf"), SIZE)
# Symbols the monospace face lacks (✗, ⏱) come from DejaVu Sans.
FALLBACK = ImageFont.truetype(str(FONT_DIR / "DejaVuSans.ttf"), SIZE)

BG = (24, 26, 33)
FG = (208, 208, 208)
PALETTE = {
    "Reset": None,
    "Black": (0, 0, 0),
    "Red": (224, 80, 80),
    "Green": (98, 196, 98),
    "Yellow": (229, 192, 80),
    "Blue": (97, 150, 235),
    "Magenta": (200, 110, 220),
    "Cyan": (80, 200, 210),
    "Gray": (170, 170, 170),
    "DarkGray": (110, 115, 125),
    "LightRed": (255, 120, 120),
    "LightGreen": (140, 230, 140),
    "LightYellow": (250, 220, 120),
    "LightBlue": (135, 185, 255),
    "LightMagenta": (230, 150, 240),
    "LightCyan": (130, 230, 240),
    "White": (255, 255, 255),
}

_MISSING = {}


def has_glyph(font, ch):
    """A glyph the font lacks renders as its .notdef box: compare with a private-use char."""
    key = id(font)
    if key not in _MISSING:
        _MISSING[key] = mask_bytes(font, "\ue000")
    return mask_bytes(font, ch) != _MISSING[key]


def mask_bytes(font, ch):
    img = Image.new("L", (SIZE * 2, SIZE * 2), 0)
    ImageDraw.Draw(img).text((0, 0), ch, font=font, fill=255)
    return img.tobytes()


def render(dump, out):
    cells = dump["cells"]
    width, height = dump["width"], dump["height"]
    left, top, right, bottom = MONO.getbbox("M")
    cw = MONO.getlength("M")
    ch = SIZE + 4
    img = Image.new("RGB", (int(cw * width) + 16, ch * height + 16), BG)
    draw = ImageDraw.Draw(img)
    for y, row in enumerate(cells):
        for x, (sym, fg, bg, mods) in enumerate(row):
            fgc = PALETTE.get(fg) or FG
            bgc = PALETTE.get(bg) or BG
            if "REVERSED" in mods:
                fgc, bgc = bgc, fgc
            if "DIM" in mods:
                fgc = tuple(int(c * 0.6) for c in fgc)
            px, py = 8 + x * cw, 8 + y * ch
            if bgc != BG:
                draw.rectangle([px, py, px + cw, py + ch], fill=bgc)
            if sym.strip():
                font = MONO_BOLD if "BOLD" in mods else MONO
                if not has_glyph(font, sym):
                    font = FALLBACK
                draw.text((px, py + 1), sym, font=font, fill=fgc)
            if "UNDERLINED" in mods:
                draw.line([px, py + ch - 2, px + cw, py + ch - 2], fill=fgc)
    img.save(out)


def main():
    src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.json")):
        out = dst / (f.stem + ".png")
        render(json.loads(f.read_text()), out)
        print(out)


if __name__ == "__main__":
    main()
