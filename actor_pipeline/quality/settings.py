"""The quality thresholds: defaults calibrated by ``benchmarks/calibrate_quality.py`` (figures in
``CALIBRATION.md`` beside this file)."""

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from actor_pipeline.quality.model import CheckName


class QualityThresholds(BaseModel):
    """Every threshold of the checks, and which checks block (trigger a regeneration)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # flux-kontext-pro's 16:9 size; its ratio (1.851) is 4% off 16/9, so compare with the size
    # that was requested, not with the nominal ratio.
    expected_size: tuple[PositiveInt, PositiveInt] = (1392, 752)
    size_tolerance: float = Field(default=0.02, ge=0, lt=1, description="relative, per side and for the ratio")

    # Standard deviation of luminance 0-255: the flattest preview (a night street) has 16, a sparse
    # 1 px line drawing 12, flat and near-black frames under 1.3.
    min_luma_std: float = Field(default=5.0, ge=0)

    # Edge sharpness: per tile, sqrt(var(Laplacian) / mean |gradient|^2), a contrast-free measure
    # of edge width (a step edge blurred by sigma scores about 1/sigma). Only tiles whose gradient
    # RMS reaches the floor count, so the flat paper of a line drawing or the flat fills of vector
    # art neither pass nor fail a shot.
    sharpness_tile: PositiveInt = 48
    sharpness_edge_floor: float = Field(default=5.0, gt=0, description="gradient RMS, grey levels per pixel")
    sharpness_percentile: float = Field(default=90.0, gt=0, le=100)
    min_sharpness: float = Field(default=1.0, ge=0)

    # CIELAB chroma sqrt(a*^2 + b*^2). 12 lets cream paper (about 10) and a faint cool or warm
    # cast count as black and white; a red tint or the actor's red shirt leaking through does not.
    chroma_threshold: float = Field(default=12.0, gt=0)
    max_color_leak: float = Field(default=0.005, ge=0, le=1, description="fraction of pixels above chroma_threshold")
    min_color_fraction: float = Field(default=0.03, ge=0, le=1, description="fraction of pixels above chroma_threshold")

    # Near-duplicates need both the same structure (pHash + dHash, 128 bits) and the same colours:
    # the preview's two close-ups differ only in lighting and share their structure (distance 6).
    max_hash_distance: int = Field(default=8, ge=0, le=128)
    max_duplicate_color_difference: float = Field(default=12.0, ge=0, description="mean delta E of 32x18 thumbnails")

    # dlib ResNet descriptor distance to the portrait's face. Photoreal: dlib's same-person
    # threshold. Stylized faces sit as far from the portrait as another person's photo does, so
    # theirs is informative only: looser, and it never blocks.
    identity_max_distance_photoreal: float = Field(default=0.6, gt=0)
    identity_max_distance_stylized: float = Field(default=0.75, gt=0)

    # Checks whose failure should trigger a regeneration. A missing face is shown but does not
    # block: HOG finds frontal faces only, and the catalog asks for profiles, back views and a
    # silhouette. Identity blocks on photoreal shots only (see identity_max_distance_*).
    blocking: frozenset[CheckName] = frozenset(
        {
            CheckName.SIZE,
            CheckName.BLANK,
            CheckName.SHARPNESS,
            CheckName.MONOCHROME,
            CheckName.COLOR,
            CheckName.NEAR_DUPLICATE,
            CheckName.IDENTITY,
        }
    )


DEFAULT_THRESHOLDS = QualityThresholds()
