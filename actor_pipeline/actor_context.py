"""One actor as a run sees it: its registration read once at the boundary, its prompt set read (or
planned) once, its key layout and shot journal, handed down to every stage of the run."""

from dataclasses import dataclass, field
from functools import cached_property

from actor_pipeline.catalog.model import Catalog
from actor_pipeline.catalog.prompts import PromptSet, build_prompt_set
from actor_pipeline.errors import NotMadeYet
from actor_pipeline.generation.journal import ShotJournal, ShotRecord
from actor_pipeline.registry import Registration, load_registration
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout


@dataclass
class ActorContext:
    """A registered actor in ``storage``. Build it with ``load`` (or ``registry.register_actor``'s
    registration) once per run, and pass it down rather than the actor id."""

    storage: Storage
    registration: Registration
    _prompt_set: PromptSet | None = field(default=None, repr=False)

    @classmethod
    def load(cls, storage: Storage, actor_id: str) -> "ActorContext":
        """The registered actor (``InputError`` if it is not, ``StateError`` if its registration
        is unreadable)."""
        return cls(storage, load_registration(storage, actor_id))

    @property
    def actor_id(self) -> str:
        return self.registration.actor_id

    @property
    def layout(self) -> ActorLayout:
        return self.registration.layout

    @cached_property
    def journal(self) -> ShotJournal:
        return ShotJournal(self.storage, self.layout)

    @property
    def prompt_set(self) -> PromptSet:
        """The stored prompt set, read on first use (``NotMadeYet`` before ``plan_prompts``)."""
        if self._prompt_set is None:
            try:
                raw = self.storage.get(self.layout.prompt_set)
            except FileNotFoundError:
                raise NotMadeYet(
                    f"actor {self.actor_id!r} has no prompt set yet: materialize prompt_set first"
                ) from None
            self._prompt_set = PromptSet.model_validate_json(raw)
        return self._prompt_set

    def word_prompts(self, catalog: Catalog) -> PromptSet:
        """Every shot of ``catalog`` worded for this actor, storing nothing."""
        registration = self.registration
        return build_prompt_set(catalog, self.actor_id, registration.descriptor, registration.seed_variant)

    def plan_prompts(self, catalog: Catalog) -> PromptSet:
        """Word every shot of ``catalog`` for this actor, store the prompt set and keep it."""
        prompts = self.word_prompts(catalog)
        self.storage.put(self.layout.prompt_set, prompts.model_dump_json(indent=2).encode(), "application/json")
        self._prompt_set = prompts
        return prompts

    def records(self) -> dict[str, ShotRecord]:
        """The journal's record of each planned shot that has one; none before the prompts are planned."""
        try:
            shots = self.prompt_set.shots
        except NotMadeYet:
            return {}
        return {shot.shot_id: record for shot in shots if (record := self.journal.load(shot)) is not None}
