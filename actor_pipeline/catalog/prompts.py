"""The prompt set: the catalog's shots rendered for one actor, each with its seed."""

import hashlib

from pydantic import BaseModel, ConfigDict

from actor_pipeline.catalog.model import Catalog, Category, load_catalog

_SEED_SPACE = 2**31 - 1  # flux-kontext-pro takes a non-negative 32-bit seed


def derive_seed(actor_id: str, shot_id: str, variant: int = 0) -> int:
    """Deterministic per actor, shot and variant, so a rerun reproduces an image and
    ``--reseed`` (a new variant) makes a new one."""
    digest = hashlib.sha256(f"{actor_id}\x00{shot_id}\x00{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_SPACE


class Wording(BaseModel):
    """A prompt and its seed: what one attempt at a shot sends."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    seed: int


class PlannedShot(BaseModel):
    model_config = ConfigDict(frozen=True)

    shot_id: str
    index: int
    category: Category
    label: str
    prompt: str
    seed: int
    # Tried in order when the safety filter flags the shot: other words, a new seed each.
    rewordings: tuple[Wording, ...] = ()

    def wording(self, number: int) -> Wording:
        """Wording 0 is the shot's own prompt and seed; 1, 2, ... its rewordings. Past the last
        rewording (a quality regeneration), its prompt again with a new seed each time."""
        if number <= len(self.rewordings):
            return self.rewordings[number - 1] if number else Wording(prompt=self.prompt, seed=self.seed)
        last = self.wording(len(self.rewordings))
        return Wording(prompt=last.prompt, seed=derive_seed(str(last.seed), self.shot_id, number))

    def possible_wordings(self, qc_attempts: int, reached: int = 0) -> list[Wording]:
        """Every wording the shot may have been sent with, having reached wording ``reached``:
        its own, its rewordings, and ``qc_attempts`` quality regenerations past the furthest (what
        the provider's list is searched for when our records cannot say which)."""
        return [self.wording(n) for n in range(max(reached, len(self.rewordings)) + qc_attempts + 1)]


class PromptSet(BaseModel):
    """What the ``prompt_set`` asset stores: everything needed to make each image."""

    model_config = ConfigDict(frozen=True)

    actor_id: str
    descriptor: str
    variant: int
    catalog: str
    shots: tuple[PlannedShot, ...]

    def shot(self, shot_id: str) -> PlannedShot:
        for planned in self.shots:
            if planned.shot_id == shot_id:
                return planned
        raise KeyError(f"shot {shot_id!r} is not in the prompt set of actor {self.actor_id!r}")


def build_prompt_set(catalog: Catalog, actor_id: str, descriptor: str, variant: int = 0) -> PromptSet:
    return PromptSet(
        actor_id=actor_id,
        descriptor=descriptor,
        variant=variant,
        catalog=catalog.source,
        shots=tuple(
            PlannedShot(
                shot_id=shot.id,
                index=shot.index,
                category=shot.category,
                label=shot.label,
                prompt=shot.prompt(descriptor),
                seed=derive_seed(actor_id, shot.id, variant),
                rewordings=tuple(
                    Wording(prompt=shot.prompt(descriptor, n), seed=derive_seed(actor_id, f"{shot.id}~{n}", variant))
                    for n in range(1, len(shot.rewordings) + 1)
                ),
            )
            for shot in catalog.shots
        ),
    )


def get_actor_training_prompts(descriptor: str, catalog: Catalog | None = None) -> list[str]:
    """All training prompts for an actor noun, in catalog order (seed API)."""
    return [shot.prompt(descriptor) for shot in (catalog or load_catalog()).shots]
