import pytest

from actor_pipeline import get_actor_descriptor, get_actor_training_prompts
from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.catalog.prompts import build_prompt_set, derive_seed
from actor_pipeline.errors import InputError


@pytest.mark.parametrize(
    ("actor_type", "actor_sex", "descriptor"),
    [
        ("human", "male", "man"),
        ("human", "female", "woman"),
        ("human", None, "person"),
        ("Human", " Female ", "woman"),
        ("creature", None, "creature"),
        ("robotic", "male", "robotic character"),
        ("anthropomorphic", None, "anthropomorphic character"),
        ("mythical", "female", "mythical character"),
    ],
)
def test_descriptors(actor_type: str, actor_sex: str | None, descriptor: str) -> None:
    assert get_actor_descriptor(actor_type, actor_sex) == descriptor


def test_unknown_type_and_sex_name_the_valid_values() -> None:
    with pytest.raises(InputError, match="human, creature, robotic, anthropomorphic, mythical"):
        get_actor_descriptor("alien")
    with pytest.raises(InputError, match="male, female"):
        get_actor_descriptor("human", "robot")


def test_training_prompts_follow_the_catalog() -> None:
    prompts = get_actor_training_prompts("creature")
    assert len(prompts) == 17 and all("creature" in p for p in prompts) and len(set(prompts)) == 17
    assert "{descriptor}" not in " ".join(prompts)


def test_seeds_are_deterministic_per_actor_shot_and_variant() -> None:
    assert derive_seed("alice", "pen_ink") == derive_seed("alice", "pen_ink")
    assert derive_seed("alice", "pen_ink") != derive_seed("bob", "pen_ink")
    assert derive_seed("alice", "pen_ink") != derive_seed("alice", "woodcut")
    assert derive_seed("alice", "pen_ink", 1) != derive_seed("alice", "pen_ink", 0)
    assert 0 <= derive_seed("x", "y") < 2**31


def test_prompt_set_records_prompts_and_seeds() -> None:
    prompt_set = build_prompt_set(load_catalog(), "alice", "woman", variant=2)
    assert len(prompt_set.shots) == 17 and prompt_set.variant == 2
    shot = prompt_set.shot("charcoal")
    assert shot.seed == derive_seed("alice", "charcoal", 2) and "woman" in shot.prompt


def test_possible_wordings_cover_rewordings_and_regenerations_past_the_furthest_reached() -> None:
    shot = build_prompt_set(load_catalog(), "alice", get_actor_descriptor("human", "female")).shots[0]
    known = len(shot.rewordings)
    assert shot.possible_wordings(2) == [shot.wording(n) for n in range(known + 3)]
    # A shot that went further (regenerations past its rewordings) is searched past where it got.
    assert shot.possible_wordings(2, reached=known + 4)[-1] == shot.wording(known + 6)
    assert len({(w.prompt, w.seed) for w in shot.possible_wordings(2)}) == known + 3  # no two alike
