"""Benchmark cache folders are named by what shapes a run, not by how a number was written."""

from __future__ import annotations

import pytest

from benchmarks.driver import Benchmark
from benchmarks.method_training import fingerprint


def test_ints_and_whole_floats_name_the_same_run() -> None:
    preset = {"train": {"p_flip": 0.0, "lr": 2e-3, "weights": {"length": 0.1}}, "seed": 0}
    command_line = {"seed": 0, "train": {"weights": {"length": 0.1}, "lr": 0.002, "p_flip": 0}}
    assert fingerprint(preset) == fingerprint(command_line)
    # Values that differ still differ, booleans stay booleans, and lists keep their order.
    assert fingerprint({"p_flip": 0.5}) != fingerprint({"p_flip": 0})
    assert fingerprint({"augment": True}) != fingerprint({"augment": 1})
    assert fingerprint({"betas": [0.9, 0.99]}) != fingerprint({"betas": [0.99, 0.9]})


def acdc_bench() -> Benchmark:
    """The ACDC benchmark's per-method settings, without data (cache keys only)."""
    from benchmarks import acdc

    return Benchmark(
        key="acdc",
        title="",
        classes=acdc.CLASSES,
        num_classes=acdc.NUM_CLASSES,
        build_samples=lambda _m: [],
        evaluate=lambda _c, _p: None,  # type: ignore[arg-type,return-value]
        facts={},
        notes=[],
        hd95_unit="mm",
        dice_kind="",
        method_train=acdc.acdc_method_train,
    )


def test_acdc_mask_methods_train_the_papers_loss_and_set_fields_win() -> None:
    from benchmarks import acdc
    from benchmarks.driver import _method_key
    from models.config import TrainConfig

    bench = acdc_bench()
    cpu = acdc.PRESETS["cpu"]

    def entropy(method: str, preset: acdc.Preset) -> float:
        return TrainConfig.from_dict(_method_key(bench, method, preset, 0)["train"]).entropy_weight

    # The paper's loss (bounds alone) for the mask-derived methods; the hint methods and the
    # product's recipe keep the CPU recipe's entropy term, full its cross-entropy only.
    assert {m: entropy(m, cpu) for m in sorted(acdc.MASK_METHODS)} == dict.fromkeys(
        sorted(acdc.MASK_METHODS), 0.0
    )
    assert entropy("ellipse", cpu) == entropy("ellipse+sure", cpu) == 1.0
    assert entropy("full", cpu) == 0.0
    # A command's --set fields win over a method's own settings, and later ones over earlier.
    with_term = cpu.with_overrides({"entropy_weight": 0.5}, None, None)
    assert entropy("paper", with_term) == entropy("full", with_term) == 0.5
    assert entropy("paper", with_term.with_overrides({"entropy_weight": 2.0}, None, None)) == 2.0
    # Without --set the key is what it was: cached runs of earlier sessions still match.
    assert _method_key(bench, "ellipse", cpu, 0)["train"] == cpu.train


def test_cpu_presets_end_the_mask_methods_barrier_lower_and_set_fields_win() -> None:
    from benchmarks import acdc
    from benchmarks.driver import _method_key
    from models.config import TrainConfig

    bench = acdc_bench()

    def barrier(method: str, preset: acdc.Preset) -> tuple[float, float, int]:
        cfg = TrainConfig.from_dict(_method_key(bench, method, preset, 0)["train"])
        return cfg.t_max, cfg.mu, cfg.epochs

    for name in ("cpu", "cpu-short"):
        preset = acdc.PRESETS[name]
        for method in sorted(acdc.MASK_METHODS):
            t_max, mu, epochs = barrier(method, preset)
            # t still reaches its (lower) ceiling after 70 % of the epochs.
            assert t_max == acdc.MASK_T_MAX
            assert mu ** int(0.7 * epochs) == pytest.approx(t_max, rel=1e-3)
        for method in ("full", "ellipse", "sparse", "ellipse+sure"):
            assert barrier(method, preset)[0] == 50.0
    # The GPU preset keeps the paper's own schedule; --set still wins over the preset.
    paper_gpu = TrainConfig.from_dict(
        _method_key(bench, "paper", acdc.PRESETS["paper"], 0)["train"]
    )
    assert paper_gpu.t_max == 1e4
    changed = acdc.PRESETS["cpu"].with_overrides({"t_max": 50.0, "mu": 1.2048}, None, None)
    assert barrier("paper", changed)[:2] == (50.0, 1.2048)
    assert changed.per_method == acdc.PRESETS["cpu"].per_method


def test_a_changed_schedule_rederives_the_presets_mu_unless_mu_is_given() -> None:
    from benchmarks import acdc
    from benchmarks.driver import _method_key
    from models.config import TrainConfig

    bench = acdc_bench()
    cpu = acdc.PRESETS["cpu"]

    def barrier(method: str, preset: acdc.Preset) -> TrainConfig:
        return TrainConfig.from_dict(_method_key(bench, method, preset, 0)["train"])

    # Twice the epochs: every method's t still reaches its own ceiling after 70 % of them
    # (the preset's mu would have reached it after 21 of 60 epochs).
    longer = cpu.with_overrides({"epochs": 60}, None, None)
    for method, ceiling in (("paper", acdc.MASK_T_MAX), ("ellipse", 50.0), ("full", 50.0)):
        cfg = barrier(method, longer)
        assert (cfg.epochs, cfg.t_max) == (60, ceiling)
        assert cfg.mu**42 == pytest.approx(ceiling, rel=5e-3)  # mu kept to 4 digits
        if ceiling > cfg.t0:
            assert cfg.mu < barrier(method, cpu).mu
    # The recorded preset settings say the same.
    assert longer.train["mu"] ** 42 == pytest.approx(50.0, rel=1e-3)
    # A lower ceiling, or a later start, for one run: mu follows it over the preset's 30 epochs.
    assert barrier("paper", cpu.with_overrides({"t_max": 2.0}, None, None)).mu ** 21 == (
        pytest.approx(2.0, rel=1e-3)
    )
    late = barrier("ellipse", cpu.with_overrides({"t0": 5.0}, None, None))
    assert late.t0 * late.mu**21 == pytest.approx(50.0, rel=1e-3)
    # A given mu wins; other fields leave the preset's mu alone; the GPU preset, whose mu is
    # the paper's own (not derived), keeps it.
    assert barrier("paper", cpu.with_overrides({"epochs": 60, "mu": 1.1}, None, None)).mu == 1.1
    assert barrier("paper", cpu.with_overrides({"lr": 1e-3}, None, None)).mu == (
        barrier("paper", cpu).mu
    )
    gpu = acdc.PRESETS["paper"]
    assert barrier("paper", gpu.with_overrides({"epochs": 10}, None, None)).mu == (
        barrier("paper", gpu).mu
    )
