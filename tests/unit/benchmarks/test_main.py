"""Choosing benchmarks and options on the command line."""

from __future__ import annotations

import argparse

import pytest
from benchmarks.__main__ import parser, selection


def test_selection_keeps_the_suite_order() -> None:
    assert selection("pooler,latency") == ["latency", "pooler"]


def test_no_selection_means_every_benchmark() -> None:
    assert selection(None) == [
        "cli-startup",
        "latency",
        "pooler",
        "pooler-prepared",
        "engine",
        "audit-cost",
        "backup",
        "object-storage",
        "operator",
        "operator-real-api",
    ]


def test_an_unknown_benchmark_is_named_with_the_choices() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="unknown benchmark nope: choose from"):
        selection("latency,nope")


def test_scale_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--scale", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_defaults_follow_the_issue() -> None:
    args = parser().parse_args([])
    assert args.scale == 100_000
    assert args.operator_latency_count == 50
    assert args.operator_count == 200
