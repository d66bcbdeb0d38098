"""``docs/architecture.md``'s "Layout of the code" names every module and package of
``actor_pipeline`` (and nothing that is not there), in the order of the import layers."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "actor_pipeline"


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
