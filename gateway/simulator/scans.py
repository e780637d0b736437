"""Scanned reply forms: JPEG images of a handwritten-looking Cyrillic reply.

Deterministic for a given seed, so a test can regenerate and compare.
"""

from __future__ import annotations

import io
import os
import random
from functools import cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi
PAPER = (246, 243, 232)
INK = (28, 44, 120)
PRINTED = (60, 60, 60)
RULE = (190, 200, 215)

PHRASES = (
    "Здравствуйте!",
    "Спасибо вам большое за письмо, оно очень меня поддержало.",
    "Здесь всё по-прежнему, держусь, много читаю и пишу.",
    "Передайте привет всем, кто обо мне помнит.",
    "Погода стоит холодная, но в камере тепло.",
    "Очень жду новостей с воли, пишите обо всём.",
    "Прочитал книгу, которую вы советовали, она замечательная.",
    "Ваши письма для меня большая радость.",
    "Надеюсь, у вас всё хорошо и все здоровы.",
    "Обнимаю вас крепко, до следующего письма.",
)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if os.path.exists(DEJAVU):
        return ImageFont.truetype(DEJAVU, size)
    return ImageFont.load_default(size)


def render_reply_page(
    written_number: str | None, n: int, pages: int, seed: str, text: str | None = None
) -> bytes:
    """One scanned page of the reply form; page 1 carries the number as the prisoner wrote it."""
    rng = random.Random(f"{seed}/{n}")
    page = Image.new("RGB", PAGE_SIZE, PAPER)
    draw = ImageDraw.Draw(page)
    left, right = 110, PAGE_SIZE[0] - 100

    draw.text((left, 70), "ФСИН-ПИСЬМО · БЛАНК ОТВЕТА", font=_font(34), fill=PRINTED)
    draw.text((right - 220, 80), f"Лист {n} из {pages}", font=_font(26), fill=PRINTED)
    y = 150
    if n == 1:
        draw.text((left, y), "Ответ на письмо №", font=_font(30), fill=PRINTED)
        draw.line((left + 300, y + 38, right, y + 38), fill=PRINTED, width=2)
        if written_number:
            _handwrite(page, (left + 320, y - 6), written_number, rng, size=40)
        y += 90

    line_gap = 64
    for rule_y in range(y + line_gap, PAGE_SIZE[1] - 120, line_gap):
        draw.line((left, rule_y, right, rule_y), fill=RULE, width=2)

    words = (text or " ".join(rng.choice(PHRASES) for _ in range(40))).split()
    x, baseline = left + rng.randint(0, 40), y + line_gap - 8
    for word in words:
        size = rng.randint(34, 40)
        width = int(_font(size).getlength(word + " ")) + rng.randint(0, 10)
        if x + width > right:
            x, baseline = left + rng.randint(0, 25), baseline + line_gap
            if baseline > PAGE_SIZE[1] - 140:
                break
        _handwrite(page, (x, baseline - size), word, rng, size=size)
        x += width

    # A scanner's slight skew and softness.
    page = page.rotate(rng.uniform(-1.2, 1.2), resample=Image.BICUBIC, fillcolor=PAPER)
    page = page.filter(ImageFilter.GaussianBlur(0.7))
    out = io.BytesIO()
    page.save(out, "JPEG", quality=78)
    return out.getvalue()


def _handwrite(page: Image.Image, at: tuple[int, int], word: str, rng: random.Random, size: int):
    """Draw one word slanted and a little off the line, as a hand would."""
    font = _font(size)
    width = int(font.getlength(word)) + 20
    tile = Image.new("L", (width, size + 24), 0)
    ImageDraw.Draw(tile).text((6, 6), word, font=font, fill=255)
    tile = tile.transform(
        tile.size, Image.AFFINE, (1, rng.uniform(0.15, 0.3), -4, 0, 1, 0), resample=Image.BICUBIC
    )
    tile = tile.rotate(rng.uniform(-3, 3), resample=Image.BICUBIC)
    ink = Image.new("RGB", tile.size, tuple(c + rng.randint(-10, 10) for c in INK))
    page.paste(ink, (at[0], at[1] + rng.randint(-4, 4)), tile)
