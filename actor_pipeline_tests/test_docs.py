"""The documentation against the code.

- ``docs/configuration.md`` holds each settings table exactly as ``settings_table`` renders it
  from the field definitions (type, default, description; a field without a description gives
  its trailing comment), so a changed default or description cannot go undocumented. On a
  mismatch the test prints the table to paste; ``python -m actor_pipeline_tests.test_docs``
  rewrites every generated table in place.
- Its table of environment variables names every variable the code reads, no other, with the
  default the code applies where the code has one.
- ``docs/architecture.md``'s "Layout of the code" names every module and package of
  ``actor_pipeline`` (and nothing that is not there), in the order of the import layers.
- Every ``docs/`` page is linked from the README, and every relative link (and ``#anchor``) in
  the README and ``docs/`` resolves.
"""

import ast
import enum
import inspect
import io
import re
import sys
import textwrap
import tokenize
import tomllib
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from actor_pipeline.defs.assets.bundle import LoraBundleConfig
from actor_pipeline.defs.assets.images import TrainingImageConfig
from actor_pipeline.defs.assets.portrait import NewActorConfig
from actor_pipeline.defs.assets.training import TrainLoraConfig
from actor_pipeline.defs.inbox_resource import DEFAULT_INBOX, InboxResource
from actor_pipeline.defs.resources import DebugResource, ImageGeneratorResource, StorageResource, TrainerResource
from actor_pipeline.generation.replicate.settings import ReplicateSettings
from actor_pipeline.portrait.limits import DEFAULT_LIMITS
from actor_pipeline.settings import EnvSettings
from actor_pipeline.storage.s3_settings import DEFAULT_MAX_ATTEMPTS
from actor_pipeline.training import TrainingSettings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
ARCHITECTURE = DOCS / "architecture.md"
PACKAGE = ROOT / "actor_pipeline"

# Each table's name in docs/configuration.md (its markers) and the class it is rendered from.
TABLES: dict[str, type[BaseModel]] = {
    "generator": ImageGeneratorResource,
    "generator.replicate": ReplicateSettings,
    "storage": StorageResource,
    "inbox": InboxResource,
    "debug": DebugResource,
    "normalized_portrait": NewActorConfig,
    "training_image": TrainingImageConfig,
    "lora_bundle": LoraBundleConfig,
    "trainer": TrainerResource,
    "trainer.training": TrainingSettings,
    "trained_lora": TrainLoraConfig,
}


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def table_heading(name: str) -> str:
    """The heading each table sits under in docs/configuration.md."""
    return f"{name} ({TABLES[name].__name__})"


# Variables the code reads besides EnvSettings' own: the replicate client's, and Dagster's.
STANDARD_VARIABLES = {"REPLICATE_BASE_URL", "SSL_CERT_FILE", "DAGSTER_HOME"}


def _flag(value: bool) -> str:
    return "`1`" if value else "`0`"


def _number(value: float) -> str:
    return f"`{value:g}`"


# The default the code applies when a variable is unset, where it has one (the others say "unset").
ENV_DEFAULTS = {
    "ACTOR_PIPELINE_OUTPUT_DIR": f"`{StorageResource.model_fields['local_dir'].default}`",
    "ACTOR_PIPELINE_INBOX": f"`{DEFAULT_INBOX}`",
    "ACTOR_PIPELINE_SHOT_TIMEOUT_S": _number(ImageGeneratorResource.model_fields["shot_timeout_s"].default),
    "ACTOR_PIPELINE_STORAGE_OUTAGE_S": _number(ImageGeneratorResource.model_fields["storage_outage_s"].default),
    "ACTOR_PIPELINE_OUTAGE_WAIT_S": _number(ReplicateSettings.model_fields["outage_wait_s"].default),
    "ACTOR_PIPELINE_CREATE_SETTLE_S": _number(ReplicateSettings.model_fields["create_settle_s"].default),
    "ACTOR_PIPELINE_TRAINING_POLL_S": _number(TrainingSettings.model_fields["poll_interval_s"].default),
    "ACTOR_PIPELINE_PORTRAIT_MAX_SIDE": _number(DEFAULT_LIMITS.max_side),
    "ACTOR_PIPELINE_QC_IDENTITY": _flag(EnvSettings.model_fields["qc_identity"].default),
    "ACTOR_PIPELINE_ALLOW_PRIVATE_URLS": _flag(EnvSettings.model_fields["allow_private_urls"].default),
    "ACTOR_PIPELINE_S3_PREFIX": f'`"{EnvSettings.model_fields["s3_prefix"].default}"`',
    "AWS_MAX_ATTEMPTS": _number(DEFAULT_MAX_ATTEMPTS),
}


# --- Rendering ------------------------------------------------------------------------------------


def settings_table(cls: type[BaseModel]) -> str:
    """The class's first docstring paragraph (if it has one), then one row per field: setting,
    type, default, description."""
    comments = _trailing_comments(cls)
    rows = ["| setting | type | default | description |", "|---|---|---|---|"]
    for name, info in cls.model_fields.items():
        description = info.description or comments.get(name, "")
        rows.append(f"| `{name}` | {_type(info.annotation)} | {_default(info)} | {_cell(description)} |")
    summary = _summary(cls)
    return "\n\n".join([summary, "\n".join(rows)] if summary else ["\n".join(rows)])


def _summary(cls: type) -> str:
    doc = cls.__dict__.get("__doc__") or ""
    paragraph = inspect.cleandoc(doc).split("\n\n", 1)[0]
    return " ".join(paragraph.split()).replace("``", "`")


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " / ".join(f"`{arg}`" for arg in args)
    if origin in (Union, types.UnionType):
        return " / ".join(_type(arg) for arg in args if arg is not type(None))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " / ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a link to its own table
        name = next(name for name, cls in TABLES.items() if issubclass(annotation, cls))
        return f"[{TABLES[name].__name__}](#{heading_anchor(table_heading(name))})"
    return f"`{annotation.__name__}`"


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "its defaults"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return _number(value)
    if value == "":
        return '`""`'
    return f"`{value}`"


def _cell(text: str) -> str:
    """``text`` as one table cell: pipes and angle brackets escaped, on one line."""
    return re.sub(r"([|<>])", r"\\\1", text).replace("\n", " ")


def _trailing_comments(cls: type) -> dict[str, str]:
    """The comment at the end of each field's definition in the class's source."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    (body,) = ast.parse(source).body
    assert isinstance(body, ast.ClassDef)
    return {
        node.target.id: comments[node.end_lineno]
        for node in body.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.end_lineno in comments
    }


def _marked(name: str) -> tuple[str, str]:
    return f"<!-- generated from the code: {name} -->", f"<!-- end: {name} -->"


def generated_block(name: str) -> str:
    start, end = _marked(name)
    return f"{start}\n{settings_table(TABLES[name])}\n{end}"


def regenerate(text: str) -> str:
    """``text`` with every generated block rendered again (each must be present, markers and all)."""
    for name in TABLES:
        start, end = _marked(name)
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
        text, count = pattern.subn(lambda _: generated_block(name), text)
        if count != 1:
            raise SystemExit(f"{CONFIGURATION}: put the markers {start} ... {end} where the {name} table goes")
    return text


# --- Settings tables ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TABLES))
def test_each_settings_table_is_documented_as_the_code_defines_it(name: str) -> None:
    expected = generated_block(name)
    text = CONFIGURATION.read_text()
    assert f"### {table_heading(name)}\n" in text, f"docs/configuration.md needs the heading ### {table_heading(name)}"
    if expected not in text:
        pytest.fail(
            f"docs/configuration.md does not hold the {name} table as the code defines it "
            f"({TABLES[name].__module__}.{TABLES[name].__qualname__}). Run `.venv/bin/python -m "
            f"actor_pipeline_tests.test_docs` to rewrite it, or paste:\n\n{expected}\n",
            pytrace=False,
        )


def test_every_resource_of_the_code_location_has_a_table() -> None:
    from actor_pipeline.definitions import defs

    kinds = {key: type(resource) for key, resource in defs.resources.items()}
    assert kinds, "the code location has no resources?"
    tabled = tuple(TABLES.values())
    undocumented = sorted(key for key, kind in kinds.items() if not issubclass(kind, tabled))
    assert not undocumented, f"resources without a table in docs/configuration.md (add them to TABLES): {undocumented}"


def documented_variables() -> dict[str, str]:
    """Each variable in the first column of docs/configuration.md's variable table, with its default cell."""
    rows: dict[str, str] = {}
    for line in CONFIGURATION.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) == 3:
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                rows[name] = cells[1]
    return rows


def code_variables() -> set[str]:
    """EnvSettings' variables (each alias of a field that has several), and the standard ones."""
    names = set(STANDARD_VARIABLES)
    for field, info in EnvSettings.model_fields.items():
        alias = info.validation_alias
        if alias is None:
            names.add(f"{EnvSettings.model_config['env_prefix']}{field.upper()}")
        else:
            names.update(str(choice) for choice in getattr(alias, "choices", [alias]))
    return names


def test_the_variable_table_names_every_variable_the_code_reads() -> None:
    documented, read = set(documented_variables()), code_variables()
    assert not read - documented, f"undocumented in docs/configuration.md: {sorted(read - documented)}"
    assert not documented - read, f"documented but not read by the code: {sorted(documented - read)}"


@pytest.mark.parametrize("variable", sorted(ENV_DEFAULTS))
def test_the_variable_table_gives_the_default_the_code_applies(variable: str) -> None:
    documented = documented_variables()[variable]
    assert documented == ENV_DEFAULTS[variable], (
        f"docs/configuration.md gives {variable} the default {documented}; the code applies {ENV_DEFAULTS[variable]}"
    )


# --- The layout of the code -----------------------------------------------------------------------


def listed_modules() -> list[str]:
    text = ARCHITECTURE.read_text()
    block = text.split("## Layout of the code", 1)[1].split("```", 2)[1]
    lines = block.split("actor_pipeline/\n", 1)[1].split("\ndeploy/", 1)[0].splitlines()
    # A name starts a line two spaces in; descriptions continue further in.
    names = [name for line in lines if (m := re.match(r"  (\S.*?)\s{2,}", line)) for name in m[1].split(", ")]
    return [name.rstrip("/").removesuffix(".py") for name in names]


def test_the_layout_lists_exactly_the_package_contents() -> None:
    present = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert sorted(listed_modules()) == sorted(present)


def test_the_layout_follows_the_import_layers() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    rank = {name.removeprefix("actor_pipeline."): i for i, layer in enumerate(layers) for name in layer.split(" | ")}
    ranks = [rank[name] for name in listed_modules()]
    assert ranks == sorted(ranks)


# --- Links ----------------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    return [target for target in _LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {heading_anchor(heading) for heading in re.findall(r"^#+\s+(.*?)\s*$", text, re.MULTILINE)}


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README)}
    unlinked = [page.relative_to(ROOT).as_posix() for page in DOCS.glob("*.md") if page.resolve() not in linked]
    assert not unlinked, f"not linked from README.md: {unlinked}"


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT).as_posix()}")
    assert not broken, broken


if __name__ == "__main__":
    CONFIGURATION.write_text(regenerate(CONFIGURATION.read_text()))
    print(f"rewrote the generated tables in {CONFIGURATION}", file=sys.stderr)
