"""From a request to a look: the seed, and the theme the prompt's words choose.

Everything the preview engine draws or plays is a pure function of the seed and
the theme, and the seed is a hash of the request, so equal requests give equal
pictures and sounds. A prompt's words pick a theme (palette, shapes, particles,
default camera move); colour words tint it; movement words choose the camera
when the request names none. A prompt without known words still gets a stable
look: its hash picks a hue.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

RGB = tuple[int, int, int]


def request_seed(endpoint: str, request: dict[str, Any]) -> int:
    """A 64-bit seed from the endpoint and the whole request (input URIs included)."""
    blob = json.dumps([endpoint, request], sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


@dataclass(frozen=True)
class Theme:
    name: str
    sky: tuple[RGB, RGB]  # top of the sky, horizon
    ground: tuple[RGB, RGB]  # far, near
    accents: tuple[RGB, RGB, RGB]
    shapes: str  # waves | mountains | trees | buildings | dunes | hills | orbs | shards
    hero: str  # sun | moon | planet | none
    particles: str  # snow | rain | stars | embers | bubbles | fireflies | petals | dust
    motion: str  # camera move used when the request names none
    tempo: float  # beats per minute of the soundtrack
    minor: bool  # soundtrack mood
    noise: str  # soundtrack texture: surf | wind | rain | crackle | hum | none


THEMES: dict[str, Theme] = {
    t.name: t
    for t in (
        Theme(
            "ocean",
            ((24, 64, 140), (150, 205, 235)),
            ((20, 90, 140), (8, 40, 90)),
            ((40, 150, 200), (230, 245, 255), (10, 70, 120)),
            "waves",
            "sun",
            "bubbles",
            "dolly_right",
            72,
            False,
            "surf",
        ),
        Theme(
            "forest",
            ((60, 120, 90), (190, 220, 170)),
            ((40, 90, 50), (16, 50, 26)),
            ((30, 110, 45), (120, 170, 60), (90, 60, 30)),
            "trees",
            "sun",
            "fireflies",
            "jib_up",
            84,
            False,
            "wind",
        ),
        Theme(
            "city",
            ((12, 10, 40), (70, 40, 110)),
            ((30, 30, 60), (14, 14, 28)),
            ((255, 60, 180), (40, 230, 255), (255, 210, 80)),
            "buildings",
            "moon",
            "rain",
            "dolly_left",
            110,
            True,
            "hum",
        ),
        Theme(
            "space",
            ((4, 4, 16), (40, 20, 70)),
            ((30, 20, 60), (10, 8, 24)),
            ((140, 90, 255), (255, 140, 200), (90, 200, 255)),
            "orbs",
            "planet",
            "stars",
            "dolly_in",
            60,
            True,
            "hum",
        ),
        Theme(
            "snow",
            ((120, 150, 200), (225, 235, 250)),
            ((200, 215, 235), (240, 245, 255)),
            ((150, 180, 220), (255, 255, 255), (90, 110, 150)),
            "mountains",
            "sun",
            "snow",
            "dolly_out",
            66,
            False,
            "wind",
        ),
        Theme(
            "desert",
            ((90, 150, 220), (250, 215, 160)),
            ((220, 160, 90), (190, 120, 60)),
            ((240, 190, 110), (170, 100, 50), (255, 230, 170)),
            "dunes",
            "sun",
            "dust",
            "dolly_right",
            78,
            True,
            "wind",
        ),
        Theme(
            "fire",
            ((30, 5, 5), (200, 60, 10)),
            ((90, 20, 5), (20, 5, 5)),
            ((255, 120, 20), (255, 210, 60), (180, 20, 10)),
            "shards",
            "none",
            "embers",
            "jib_up",
            120,
            True,
            "crackle",
        ),
        Theme(
            "sunset",
            ((70, 40, 120), (255, 150, 80)),
            ((90, 50, 90), (40, 20, 50)),
            ((255, 110, 90), (255, 200, 120), (120, 60, 140)),
            "hills",
            "sun",
            "dust",
            "dolly_in",
            70,
            False,
            "wind",
        ),
        Theme(
            "flowers",
            ((150, 200, 240), (245, 230, 240)),
            ((110, 170, 90), (60, 130, 60)),
            ((255, 120, 170), (255, 220, 90), (200, 90, 220)),
            "orbs",
            "sun",
            "petals",
            "dolly_left",
            96,
            False,
            "none",
        ),
        Theme(
            "storm",
            ((40, 45, 55), (120, 125, 135)),
            ((60, 65, 70), (30, 32, 38)),
            ((180, 190, 200), (90, 100, 110), (220, 230, 255)),
            "hills",
            "none",
            "rain",
            "dolly_out",
            80,
            True,
            "rain",
        ),
    )
}

KEYWORDS: dict[str, tuple[str, ...]] = {
    "ocean": (
        "ocean",
        "sea",
        "wave",
        "waves",
        "beach",
        "surf",
        "coast",
        "shore",
        "water",
        "lake",
        "river",
        "boat",
        "sail",
        "island",
        "underwater",
        "fish",
        "whale",
    ),
    "forest": (
        "forest",
        "tree",
        "trees",
        "woods",
        "jungle",
        "leaf",
        "leaves",
        "moss",
        "park",
        "grass",
        "meadow",
        "field",
        "nature",
        "deer",
        "valley",
    ),
    "city": (
        "city",
        "street",
        "urban",
        "building",
        "buildings",
        "skyline",
        "neon",
        "traffic",
        "car",
        "cars",
        "downtown",
        "tokyo",
        "york",
        "cyberpunk",
        "alley",
    ),
    "space": (
        "space",
        "star",
        "stars",
        "galaxy",
        "planet",
        "cosmos",
        "nebula",
        "astronaut",
        "rocket",
        "orbit",
        "universe",
        "moon",
        "alien",
    ),
    "snow": (
        "snow",
        "winter",
        "ice",
        "frozen",
        "mountain",
        "mountains",
        "glacier",
        "arctic",
        "cold",
        "ski",
        "polar",
    ),
    "desert": ("desert", "sand", "dune", "dunes", "canyon", "cactus", "sahara", "dry", "camel"),
    "fire": (
        "fire",
        "flame",
        "flames",
        "lava",
        "volcano",
        "burning",
        "ember",
        "embers",
        "inferno",
        "explosion",
        "dragon",
    ),
    "sunset": ("sunset", "sunrise", "dusk", "dawn", "golden", "evening", "twilight", "clouds"),
    "flowers": (
        "flower",
        "flowers",
        "blossom",
        "spring",
        "petal",
        "petals",
        "rose",
        "cherry",
        "bloom",
        "garden",
        "butterfly",
    ),
    "storm": (
        "storm",
        "rain",
        "rainy",
        "thunder",
        "lightning",
        "cloudy",
        "grey",
        "gray",
        "fog",
        "mist",
        "gloomy",
    ),
}

COLOR_WORDS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "orange": (255, 140, 30),
    "yellow": (250, 220, 50),
    "green": (50, 190, 70),
    "blue": (40, 100, 230),
    "purple": (150, 60, 210),
    "violet": (150, 60, 210),
    "pink": (255, 120, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gold": (240, 190, 60),
    "golden": (240, 190, 60),
    "silver": (200, 205, 215),
    "cyan": (40, 220, 230),
    "teal": (30, 160, 150),
    "magenta": (230, 40, 200),
    "brown": (130, 80, 40),
}

PARTICLE_WORDS: dict[str, str] = {
    "snow": "snow",
    "snowy": "snow",
    "snowing": "snow",
    "snowflakes": "snow",
    "rain": "rain",
    "rainy": "rain",
    "raining": "rain",
    "storm": "rain",
    "stars": "stars",
    "starry": "stars",
    "sparks": "embers",
    "embers": "embers",
    "bubbles": "bubbles",
    "fireflies": "fireflies",
    "petals": "petals",
    "dust": "dust",
    "sand": "dust",
}

MOTION_WORDS: tuple[tuple[str, str], ...] = (
    (r"\b(zoom(s|ing)? in|push(es|ing)? in|dolly in|closer|approach\w*|toward)", "dolly_in"),
    (r"\b(zoom(s|ing)? out|pull(s|ing)? back|dolly out|reveal\w*|receding)", "dolly_out"),
    (r"\b(pan(s|ning)? left|dolly left|track(s|ing)? left|leftward)", "dolly_left"),
    (r"\b(pan(s|ning)? right|dolly right|track(s|ing)? right|rightward)", "dolly_right"),
    (r"\b(ris(e|es|ing)|ascend\w*|jib up|crane up|aerial|soar\w*|fly(ing)? up)", "jib_up"),
    (r"\b(descend\w*|jib down|crane down|dive|diving|sink\w*)", "jib_down"),
    (r"\b(rack focus|focus|bokeh|macro|shallow depth)", "focus_shift"),
    (r"\b(still|static|tripod|locked off|motionless)", "static"),
)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _hue_theme(seed: int) -> Theme:
    """A look for prompts without known words: one hue and its neighbours, from the seed."""
    hue = (seed % 3600) / 3600

    def hsv(h: float, s: float, v: float) -> RGB:
        r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
        return round(r * 255), round(g * 255), round(b * 255)

    shapes = ("orbs", "hills", "waves", "shards")[(seed >> 12) % 4]
    particles = ("dust", "fireflies", "bubbles", "petals")[(seed >> 16) % 4]
    return Theme(
        "abstract",
        (hsv(hue, 0.7, 0.35), hsv(hue + 0.08, 0.35, 0.9)),
        (hsv(hue - 0.05, 0.6, 0.5), hsv(hue - 0.08, 0.7, 0.25)),
        (hsv(hue + 0.5, 0.7, 0.95), hsv(hue + 0.15, 0.5, 1.0), hsv(hue - 0.2, 0.8, 0.6)),
        shapes,
        ("sun", "planet", "none")[(seed >> 20) % 3],
        particles,
        "dolly_in",
        90,
        bool(seed & 1),
        "none",
    )


def choose_theme(prompt: str | None, seed: int) -> Theme:
    """The theme the prompt's words vote for (first mention breaks ties); colour words
    tint it, weather words (snow, rain, stars, ...) choose its particles."""
    ws = words(prompt or "")
    best, best_score, best_pos = None, 0, len(ws)
    for name, keys in KEYWORDS.items():
        hits = [i for i, w in enumerate(ws) if w in keys]
        if hits and (len(hits) > best_score or (len(hits) == best_score and hits[0] < best_pos)):
            best, best_score, best_pos = name, len(hits), hits[0]
    theme = THEMES[best] if best else _hue_theme(seed)
    particles = [PARTICLE_WORDS[w] for w in ws if w in PARTICLE_WORDS]
    if particles:
        theme = replace(theme, particles=particles[0])
    colours = [COLOR_WORDS[w] for w in ws if w in COLOR_WORDS]
    if colours:
        c0 = colours[0]
        c1 = colours[1] if len(colours) > 1 else _mix(c0, (255, 255, 255), 0.4)
        theme = replace(
            theme,
            accents=(c0, c1, _mix(c0, (0, 0, 0), 0.4)),
            sky=(_mix(theme.sky[0], c0, 0.35), _mix(theme.sky[1], c1, 0.3)),
            ground=(_mix(theme.ground[0], c0, 0.25), _mix(theme.ground[1], c0, 0.2)),
        )
    if re.search(r"\b(night|dark|midnight)\b", " ".join(ws)) and theme.name not in (
        "space",
        "city",
    ):
        theme = replace(
            theme,
            sky=(_mix(theme.sky[0], (0, 0, 10), 0.7), _mix(theme.sky[1], (10, 10, 40), 0.6)),
            ground=(_mix(theme.ground[0], (0, 0, 0), 0.6), _mix(theme.ground[1], (0, 0, 0), 0.6)),
            hero="moon" if theme.hero == "sun" else theme.hero,
        )
    return theme


def prompt_motion(prompt: str | None) -> str | None:
    """A camera move named by the prompt's words, if any (first match in table order)."""
    text = " ".join(words(prompt or ""))
    for pattern, motion in MOTION_WORDS:
        if re.search(pattern, text):
            return motion
    return None


def camera_motion(theme: Theme, motion: str | None = None, prompt: str | None = None) -> str:
    """The request's camera_motion, else the prompt's movement words, else the theme's."""
    return motion or prompt_motion(prompt) or theme.motion
