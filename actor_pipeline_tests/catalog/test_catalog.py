import re
from pathlib import Path

import pytest

from actor_pipeline.catalog.model import Category, load_catalog
from actor_pipeline.errors import CatalogError

# Hue words only: "black-and-white", "grey" and "monochrome" are the point of these shots.
COLOR_WORDS = re.compile(
    r"\b(red|orange|yellow|green|greenish|blue|purple|violet|pink|magenta|cyan|teal|amber|golden|gold|"
    r"crimson|scarlet|neon|colou?r(ed|ful|s)?|sepia|warm|cool)\b",
    re.IGNORECASE,
)


def test_default_catalog_has_the_seed_shot_mix() -> None:
    catalog = load_catalog()
    assert len(catalog.shots) == 17
    assert [catalog.count(c) for c in Category] == [7, 6, 4]
    assert [s.index for s in catalog.shots] == list(range(1, 18))
    assert len(set(catalog.ids)) == 17
    assert all(re.fullmatch(r"[a-z0-9_-]+", shot_id) for shot_id in catalog.ids)


def test_bw_prompts_contain_no_color_words() -> None:
    for shot in load_catalog().shots:
        if shot.category is Category.BW_STYLIZED:
            assert not COLOR_WORDS.search(shot.template), shot.id


def test_photoreal_closeups_ask_to_preserve_defining_details() -> None:
    closeups = [s for s in load_catalog().shots if s.category is Category.PHOTOREAL and "close-up" in s.template]
    assert len(closeups) >= 2
    for shot in closeups:
        assert "Preserve all defining details" in shot.template and "scars" in shot.template


def test_prompts_vary_angles_and_lighting() -> None:
    text = " ".join(s.template.lower() for s in load_catalog().shots)
    for angle in ("profile", "three-quarter", "close-up", "from behind"):
        assert angle in text
    for light in ("night", "window light", "neon", "sodium", "dusk"):
        assert light in text


def test_custom_toml_catalog_replaces_the_shot_list(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'version = 1\n[[shots]]\nid = "one"\ncategory = "photoreal"\nlabel = "One"\n'
        'template = "The {descriptor} waves."\npreview = { style = "photo", framing = "close_up" }\n'
        '[[shots]]\nid = "two"\ncategory = "color_stylized"\nlabel = "Two"\n'
        'template = "A gouache {descriptor}."\npreview = { style = "gouache" }\n'
    )
    catalog = load_catalog(path)
    assert catalog.ids == ["one", "two"] and catalog.source == str(path)
    assert catalog.shot("two").prompt("robotic character") == "A gouache robotic character."


def test_custom_yaml_catalog_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("shots:\n  - id: solo\n    category: bw_stylized\n    label: Solo\n"
                    "    template: 'A charcoal {descriptor}.'\n    preview: {style: charcoal}\n")
    monkeypatch.setenv("ACTOR_PIPELINE_CATALOG", str(path))
    assert load_catalog().ids == ["solo"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[shots]]\nid = "Bad|Id"\ncategory = "photoreal"\nlabel = "x"\ntemplate = "{descriptor}"', "shot 1 is invalid: id"),
        ('[[shots]]\nid = "a"\ncategory = "sepia"\nlabel = "x"\ntemplate = "{descriptor}"', "category"),
        ('[[shots]]\nid = "a"\ncategory = "photoreal"\nlabel = "x"\ntemplate = "no placeholder"', "{descriptor}"),
        ('[[shots]]\nid = "a"\ncategory = "photoreal"\nlabel = "x"\ntemplate = "{descriptor} {name}"', "name"),
        ('[[shots]]\nid = "a"\ncategory = "photoreal"\nlabel = "x"\ntemplate = "{descriptor}"\n'
         '[[shots]]\nid = "a"\ncategory = "photoreal"\nlabel = "y"\ntemplate = "{descriptor}"', "unique"),
        ('[[shots]]\nid = "a"\ncategory = "photoreal"\nlabel = "x"\ntemplate = "{descriptor}"\n'
         'preview = { style = "cubism" }', "cubism"),
        ("title = 'no shots'", "no 'shots' list"),
        ("shots = [", "not valid TOML"),
    ],
)
def test_invalid_catalogs_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(path)


def test_missing_or_unknown_catalog_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(tmp_path / "absent.toml")
    (tmp_path / "shots.json").write_text("{}")
    with pytest.raises(CatalogError, match=r"\.toml, \.yaml or \.yml"):
        load_catalog(tmp_path / "shots.json")
