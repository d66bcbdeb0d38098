"""Limits that keep a hostile or broken portrait from exhausting memory, time or the network."""

from dataclasses import dataclass

from actor_pipeline.errors import ConfigurationError
from actor_pipeline.settings import EnvSettings


@dataclass(frozen=True)
class PortraitLimits:
    """Bounds applied while fetching and normalizing a portrait.

    The defaults accept any photo a current phone or camera produces and refuse what could only
    be an accident or an attack.
    """

    max_bytes: int = 30_000_000
    """Largest accepted file or download (30 MB). A full-resolution phone JPEG is 3-15 MB; a file
    larger than this is almost always an uncompressed export that should be a JPEG."""

    max_pixels: int = 50_000_000
    """Largest accepted width x height (50 MP), read from the header before any pixel is decoded,
    so a decompression bomb (a small file declaring a huge canvas) is refused without allocating
    it. 50 MP admits the full-resolution mode of 50 MP phone cameras and costs at most 200 MB as
    RGBA while decoding. Pillow's own guard (``PIL.Image.MAX_IMAGE_PIXELS``, ~179 MP) still runs
    first; its refusal is reported the same way."""

    max_side: int = 2048
    """Normalized portraits are downscaled to fit in a ``max_side`` square. The model works at
    about 1 MP (1024x1024) and resizes its input to that anyway; 2048 keeps a 2x margin per side
    for crops and future models while keeping the upload near 1 MB."""

    min_short_side: int = 256
    """Smallest accepted short side, both as given and after the downscale to ``max_side``.
    Below this a face has too few pixels for the model to keep a likeness."""

    connect_timeout_s: float = 5.0
    """Seconds to open a connection (per address tried)."""

    read_timeout_s: float = 30.0
    """Seconds the server may stay silent between two reads."""

    fetch_deadline_s: float = 120.0
    """Seconds for the whole download, redirects included. The read timeout alone would let a
    server trickle one byte every 29 s for days; the deadline is checked between reads, so it
    can be overshot by at most one read timeout."""

    max_redirects: int = 5
    """Redirects followed before giving up; every hop is checked like the first URL."""

    allow_private_addresses: bool = False
    """Allow URLs whose host resolves to a loopback, private, link-local (e.g. the cloud metadata
    service at 169.254.169.254), multicast or reserved address. Off in production so a portrait
    URL cannot be used to reach internal services; tests turn it on to use 127.0.0.1."""

    @classmethod
    def from_env(cls) -> "PortraitLimits":
        """The defaults, with ``ACTOR_PIPELINE_PORTRAIT_MAX_SIDE`` (pixels) and
        ``ACTOR_PIPELINE_ALLOW_PRIVATE_URLS`` (``1``/``true``) applied (``EnvSettings``)."""
        env = EnvSettings.load()
        side = {} if env.portrait_max_side is None else {"max_side": env.portrait_max_side}
        return cls(allow_private_addresses=env.allow_private_urls, **side)

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            value = getattr(self, name)
            if not value > 0:  # also catches NaN
                raise ConfigurationError(f"portrait limit {name} is {value!r}: use a value above 0")
        if self.max_redirects < 0:
            raise ConfigurationError(f"portrait limit max_redirects is {self.max_redirects}: use 0 or more")
        if self.max_side < self.min_short_side:
            raise ConfigurationError(
                f"portrait limit max_side ({self.max_side}) is below min_short_side "
                f"({self.min_short_side}), so every portrait would be refused: raise max_side"
            )


_POSITIVE = (
    "max_bytes",
    "max_pixels",
    "max_side",
    "min_short_side",
    "connect_timeout_s",
    "read_timeout_s",
    "fetch_deadline_s",
)


DEFAULT_LIMITS = PortraitLimits()
"""The documented defaults (frozen, so safe to share as an argument default)."""
