"""Every ``-o json`` has a declared shape, and every key of it says what it means.

The shapes are what docs/cli.md lists under "JSON output" and what the handlers are
type-checked against; test_json_outputs.py holds actual outputs to them.
"""

from __future__ import annotations

import argparse

import pytest

from dbkeeper.backup.manifest import BackupManifest
from dbkeeper.cli import build_parser
from dbkeeper.cli.reference import _commands
from dbkeeper.json_shapes import JsonShape
from dbkeeper.json_shapes.backup import BackupManifestJson, UnreadableBackupJson
from dbkeeper.json_shapes.fields import fields_of, is_shape, shape_name, shapes_within
from tests.cli_output import shape_problems


def _takes_output(parser: argparse.ArgumentParser) -> bool:
    return any("--output" in action.option_strings for action in parser._actions)


COMMANDS = [(" ".join(path), parser) for path, parser, _ in _commands(build_parser())]
DECLARED: list[JsonShape] = [
    shape for _, parser in COMMANDS for shape in parser.get_default("json_shapes") or ()
]
SHAPES = shapes_within(DECLARED)


def test_every_command_that_prints_json_declares_its_shape_and_only_those() -> None:
    with_output = [name for name, parser in COMMANDS if _takes_output(parser)]
    with_shapes = [name for name, parser in COMMANDS if parser.get_default("json_shapes")]

    assert len(with_output) >= 18
    assert with_shapes == with_output


@pytest.mark.parametrize("name", [name for name, parser in COMMANDS if _takes_output(parser)])
def test_a_declared_shape_is_a_typed_dict(name: str) -> None:
    shapes = dict(COMMANDS)[name].get_default("json_shapes")

    assert isinstance(shapes, tuple)
    assert shapes
    assert all(is_shape(shape) for shape in shapes), shapes


@pytest.mark.parametrize("shape", SHAPES, ids=shape_name)
def test_every_key_says_what_it_means_in_one_line(shape: JsonShape) -> None:
    fields = fields_of(shape)

    assert fields, f"{shape_name(shape)} has no keys"
    for field in fields:
        assert field.doc, f"{shape_name(shape)}.{field.name} has no description"
        assert "\n" not in field.doc, f"{shape_name(shape)}.{field.name}: one line"


@pytest.mark.parametrize("shape", SHAPES, ids=shape_name)
def test_every_shape_says_what_it_is(shape: JsonShape) -> None:
    assert (shape.__doc__ or "").strip(), f"{shape_name(shape)} has no docstring"


def test_no_two_shapes_share_a_name() -> None:
    names = [shape_name(shape) for shape in SHAPES]

    assert len(names) == len(set(names))


def test_the_manifest_shape_has_the_manifest_models_fields() -> None:
    # The model writes the object itself (model_dump), so mypy cannot hold it to the shape.
    assert [field.name for field in fields_of(BackupManifestJson)] == list(
        BackupManifest.model_fields
    )


def test_the_shape_check_names_a_missing_an_undeclared_and_a_mistyped_key() -> None:
    problems = shape_problems({"id": 7, "extra": True}, UnreadableBackupJson)

    assert sorted(problems) == [
        "$ has no key 'problem'",
        "$ has the undeclared key 'extra'",
        "$.id is 7, not <class 'str'>",
    ]
