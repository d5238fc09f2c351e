"""Benchmark cache folders are named by what shapes a run, not by how a number was written."""

from __future__ import annotations

from benchmarks.method_training import fingerprint


def test_ints_and_whole_floats_name_the_same_run() -> None:
    preset = {"train": {"p_flip": 0.0, "lr": 2e-3, "weights": {"length": 0.1}}, "seed": 0}
    command_line = {"seed": 0, "train": {"weights": {"length": 0.1}, "lr": 0.002, "p_flip": 0}}
    assert fingerprint(preset) == fingerprint(command_line)
    # Values that differ still differ, booleans stay booleans, and lists keep their order.
    assert fingerprint({"p_flip": 0.5}) != fingerprint({"p_flip": 0})
    assert fingerprint({"augment": True}) != fingerprint({"augment": 1})
    assert fingerprint({"betas": [0.9, 0.99]}) != fingerprint({"betas": [0.99, 0.9]})
