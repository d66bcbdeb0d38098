"""Sample inputs shipped with the package."""

from pathlib import Path

# A painted head-and-shoulders portrait (768x1024 JPEG), drawn with Pillow for demos and tests.
SAMPLE_PORTRAIT: Path = Path(__file__).with_name("portrait.jpg")
