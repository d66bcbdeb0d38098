"""The photographic lights: what scene each suggests and how it grades the frame."""

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Light:
    """How a light looks: the scene it suggests and the grade it puts on the whole frame."""

    setting: str  # background layout: "street", "room", "office" or "open"
    sky: tuple[RGB, RGB]  # top and horizon colours of the sky or back wall
    ground: RGB
    glow: RGB  # lamps, windows, tubes, the sun
    accents: tuple[RGB, ...]  # lit windows, signs and out-of-focus highlights
    key: tuple[RGB, RGB]  # light falling on the frame from the left and from the right
    gain: tuple[float, float, float]  # colour balance per channel
    gamma: float  # > 1 darkens the mid tones
    lift: RGB  # colour of the blacks


# Every light by name, in the order the catalog documents them.
LIGHTING = {
    "daylight": Light(
        setting="open",
        sky=((140, 185, 235), (228, 236, 240)),
        ground=(104, 122, 88),
        glow=(255, 255, 240),
        accents=((190, 215, 160), (245, 248, 230), (140, 175, 110)),
        key=((255, 255, 250), (238, 238, 236)),
        gain=(1.0, 1.0, 1.0),
        gamma=0.95,
        lift=(0, 0, 0),
    ),
    "night_blue": Light(
        setting="street",
        sky=((18, 30, 78), (56, 86, 156)),
        ground=(30, 40, 72),
        glow=(190, 215, 255),
        accents=((90, 130, 255), (170, 195, 255), (60, 90, 210)),
        key=((220, 232, 255), (110, 130, 210)),
        gain=(0.7, 0.88, 1.15),
        gamma=1.0,
        lift=(0, 8, 26),
    ),
    "warm_window": Light(
        setting="room",
        sky=((84, 54, 36), (120, 78, 48)),
        ground=(52, 34, 22),
        glow=(255, 205, 130),
        accents=((255, 180, 90), (255, 140, 60)),
        key=((255, 226, 170), (110, 76, 60)),
        gain=(1.12, 0.88, 0.6),
        gamma=1.0,
        lift=(14, 6, 0),
    ),
    "fluorescent": Light(
        setting="office",
        sky=((146, 172, 158), (186, 206, 192)),
        ground=(96, 104, 94),
        glow=(235, 255, 245),
        accents=((205, 255, 232),),
        key=((216, 240, 226), (204, 230, 218)),
        gain=(0.82, 1.0, 0.9),
        gamma=0.85,
        lift=(10, 24, 18),
    ),
    "sodium": Light(
        setting="street",
        sky=((40, 24, 12), (118, 70, 30)),
        ground=(70, 48, 26),
        glow=(255, 170, 60),
        accents=((255, 150, 40), (255, 195, 95), (220, 110, 30)),
        key=((255, 210, 140), (180, 120, 70)),
        gain=(1.15, 0.8, 0.4),
        gamma=1.0,
        lift=(10, 4, 0),
    ),
    "neon": Light(
        setting="street",
        sky=((40, 14, 62), (92, 30, 112)),
        ground=(40, 20, 52),
        glow=(255, 70, 210),
        accents=((255, 50, 190), (40, 230, 255), (150, 60, 255)),
        key=((255, 90, 220), (50, 225, 255)),
        gain=(1.05, 0.78, 1.1),
        gamma=1.0,
        lift=(14, 0, 24),
    ),
    "dusk": Light(
        setting="open",
        sky=((78, 56, 132), (255, 150, 92)),
        ground=(52, 36, 62),
        glow=(255, 196, 126),
        accents=((255, 170, 110), (232, 120, 142)),
        key=((255, 204, 170), (204, 150, 206)),
        gain=(1.05, 0.82, 0.94),
        gamma=1.05,
        lift=(12, 0, 16),
    ),
}


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Colour ``t`` of the way from ``a`` to ``b``."""
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))
