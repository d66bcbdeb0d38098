"""The prompt catalog: the single source of truth for the shot list.

Partitions, prompts, grid labels and the manifest all derive from the ``Catalog`` returned by
``load_catalog``. The default catalog ships as ``default_shots.toml``; a user can point
``ACTOR_PIPELINE_CATALOG`` (or ``--catalog``) at their own TOML or YAML file with the same shape.
"""

import string
import tomllib
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from actor_pipeline.errors import CatalogError
from actor_pipeline.render.preview import PreviewLook
from actor_pipeline.settings import EnvSettings, variable

DEFAULT_CATALOG_PATH = Path(__file__).with_name("default_shots.toml")
CATALOG_ENV_VAR = variable("catalog")


class Category(str, Enum):
    PHOTOREAL = "photoreal"
    BW_STYLIZED = "bw_stylized"
    COLOR_STYLIZED = "color_stylized"


# Shot ids become static partition keys, where '|', ',', '[' and ']' are forbidden.
ShotId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class Shot(BaseModel):
    """One planned training image."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: ShotId
    index: int = Field(ge=1, description="1-based position in the catalog; names the image file")
    category: Category
    label: str = Field(min_length=1, max_length=60)
    template: str = Field(min_length=1, description="prompt text; {descriptor} names the actor")
    rewordings: tuple[str, ...] = Field(
        (), max_length=5, description="tried in order, each with a new seed, when the safety filter flags the prompt"
    )
    preview: PreviewLook = PreviewLook()
    caption: str | None = Field(
        None,
        min_length=1,
        max_length=160,
        pattern=r"^[^\r\n]+$",
        description="LoRA caption words for what varies besides the medium: setting, light, framing",
    )

    @field_validator("template")
    @classmethod
    def _only_descriptor_placeholder(cls, template: str) -> str:
        return _checked_template(template, "template")

    @field_validator("rewordings")
    @classmethod
    def _rewordings_like_templates(cls, rewordings: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_checked_template(text, f"rewording {n}") for n, text in enumerate(rewordings, start=1))

    @field_validator("preview", mode="before")
    @classmethod
    def _preview_from_mapping(cls, value: Any) -> Any:
        return PreviewLook(**value) if isinstance(value, dict) else value

    def prompt(self, descriptor: str, wording: int = 0) -> str:
        """The prompt with the template (``wording`` 0) or one of its rewordings (1, 2, ...)."""
        return (self.rewordings[wording - 1] if wording else self.template).format(descriptor=descriptor)


def _checked_template(template: str, what: str) -> str:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{what} has unbalanced braces ({exc}); write literal braces as {{{{ }}}}") from exc
    if fields != {"descriptor"}:
        raise ValueError(f"{what} must use exactly the placeholder {{descriptor}}, found {sorted(fields) or 'none'}")
    return template


class Catalog(BaseModel):
    """An ordered, validated shot list."""

    model_config = ConfigDict(frozen=True)

    shots: tuple[Shot, ...] = Field(min_length=1, max_length=200)
    source: str = "default"

    @field_validator("shots")
    @classmethod
    def _unique_ids(cls, shots: tuple[Shot, ...]) -> tuple[Shot, ...]:
        ids = [shot.id for shot in shots]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"shot ids must be unique; repeated: {', '.join(duplicates)}")
        return shots

    @cached_property
    def ids(self) -> list[str]:
        return [shot.id for shot in self.shots]

    def shot(self, shot_id: str) -> Shot:
        for shot in self.shots:
            if shot.id == shot_id:
                return shot
        raise KeyError(f"shot {shot_id!r} is not in the catalog ({self.source})")

    def count(self, category: Category) -> int:
        return sum(shot.category is category for shot in self.shots)


def parse_catalog(data: dict[str, Any], source: str) -> Catalog:
    """Validate a parsed catalog document (``{"shots": [...]}``); indexes follow file order."""
    raw_shots = data.get("shots") if isinstance(data, dict) else None
    if not isinstance(raw_shots, list):
        raise CatalogError(f"catalog {source} has no 'shots' list: add [[shots]] entries (see default_shots.toml)")
    shots = []
    for number, raw in enumerate(raw_shots, start=1):
        if not isinstance(raw, dict):
            raise CatalogError(f"catalog {source}: shot {number} must be a table of fields, got {raw!r}")
        shots.append(_validated(Shot, f"catalog {source}: shot {number}", **{**raw, "index": number}))
    return _validated(Catalog, f"catalog {source}", shots=tuple(shots), source=source)


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(model: type[_Model], where: str, **fields: Any) -> _Model:
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise CatalogError(f"{where} is invalid: {problems}") from None


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load a catalog from ``path``, else from ``$ACTOR_PIPELINE_CATALOG``, else the default."""
    chosen = path or EnvSettings.load().catalog or DEFAULT_CATALOG_PATH
    file = Path(chosen)
    source = "default" if file == DEFAULT_CATALOG_PATH else str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {file}: {exc.strerror}; check the path given by --catalog or ${CATALOG_ENV_VAR}") from None
    try:
        if file.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif file.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise CatalogError(f"catalog {file} must be a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"catalog {file} is not valid {file.suffix[1:].upper()}: {exc}") from None
    return parse_catalog(data, source)
