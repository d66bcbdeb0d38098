"""The likeness's one line: the figures when measured, else why not."""

from actor_pipeline.training.validation import Likeness, ValidationImage


def likeness(*images: ValidationImage) -> Likeness:
    return Likeness(training_id="t1", images=list(images), measured=0, passed=0, max_distance=0.6)


def test_a_likeness_not_measured_says_why_once_per_reason() -> None:
    faceless = ValidationImage(prompt="p", seed=1, key="k1", note="no face found on the shot")
    again = ValidationImage(prompt="p", seed=2, key="k2", note="no face found on the shot")
    refused = ValidationImage(prompt="p", seed=3, note="the validation image failed: flagged")
    assert likeness(faceless, again, refused).summary() == (
        "likeness not measured (3 image(s): no face found on the shot; the validation image failed: flagged)"
    )
    assert likeness(ValidationImage(prompt="p", seed=1)).summary() == "likeness not measured (1 image(s): no reason recorded)"


def test_a_measured_likeness_gives_its_figures() -> None:
    close = ValidationImage(prompt="p", seed=1, key="k1", distance=0.31, passed=True)
    found = Likeness(training_id="t1", images=[close], measured=1, passed=1, median_distance=0.31, max_distance=0.6)
    assert found.summary() == "likeness: 1/1 image(s) within 0.6, median identity distance 0.31"
