"""The oracle ceiling (alcore.engine.ceiling) on sklearn digits with the convex softmax: what it
may read and pick, that it keeps the best candidate, determinism, continuing, stopping part way,
its place in races, result files and limits, and the share of its gain Compare reports."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alcore.analysis.ceiling import gain_captured, share_of_gain
from alcore.config import ExperimentConfig, RaceConfig
from alcore.data.datasets import load_dataset
from alcore.engine import cancel
from alcore.engine.ceiling import OracleCeiling
from alcore.engine.loop import Experiment, round_rng
from alcore.engine.race import Race
from alcore.engine.softmax import SoftmaxLearner
from alcore.results.records import CEILING, ResultFileError, load_result, to_json
from alcore.serve.limits import DeploymentLimits
from alcore.strategies.base import StrategyInput, make_strategy

CFG = ExperimentConfig(rounds=4)  # digits, softmax, 10 initial labels, batches of 10
STRATEGIES = ["random", "margin", "typiclust"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset(CFG)


@pytest.fixture(scope="module")
def ceiling(digits):
    c = OracleCeiling(CFG, STRATEGIES, dataset=digits, validation=150)
    list(c.run())
    return c


def picks(run) -> list[list[int]]:
    return [r.selected for r in run.rounds]


def test_the_ceiling_never_picks_its_validation_images_nor_a_label_twice(ceiling):
    val = set(ceiling.ceiling_indices.tolist())
    assert len(val) == 150
    chosen = [i for r in ceiling.rounds for i in r.selected]
    assert len(chosen) == 4 * 10 and len(set(chosen)) == len(chosen)
    assert not val & set(chosen)
    assert not val & set(ceiling.initial_indices.tolist())  # drawn after the initial labels


def test_the_ceiling_starts_from_the_initial_labels_of_the_raced_runs(ceiling, digits):
    margin = Experiment(CFG.replace(strategy="margin"), dataset=digits)
    first = margin.step()
    assert ceiling.initial_indices.tolist() == margin.initial_indices.tolist()
    assert ceiling.rounds[0].test_accuracy == first.test_accuracy  # the same model on the same labels


def test_it_asks_every_raced_strategy_and_random_for_k_batches(ceiling):
    for r in ceiling.rounds[:-1]:
        assert r.ceiling.proposers == ["random", "margin", "typiclust", "random 1", "random 2"]
        assert r.selected  # the kept batch is the round's pick
    assert ceiling.rounds[-1].ceiling is None and ceiling.done


def test_the_kept_batch_is_at_least_as_good_on_validation_as_every_candidate(ceiling, digits):
    val = ceiling.ceiling_indices
    for r in ceiling.rounds[:-1]:
        acc = r.ceiling.validation_accuracy
        assert acc[r.ceiling.chosen] == max(acc)

    def fitted(batch):
        learner = SoftmaxLearner(64, 10, CFG.penalty_c)
        lab = np.concatenate([ceiling.initial_indices, batch]).astype(np.int64)
        learner.fit(digits.inputs_pool[lab], digits.y_pool[lab])
        return learner

    def validation_accuracy(batch):
        p = fitted(batch).predict_proba(digits.inputs_pool[val])
        return float((p.argmax(1) == digits.y_pool[val]).mean())

    # independently: margin's first batch among what the ceiling may pick (the pool less its initial
    # labels and validation images), from the model on the initial labels, with margin's generator
    free = np.setdiff1d(np.arange(len(digits.y_pool)), np.concatenate([ceiling.initial_indices, val]))
    probs = fitted(np.empty(0, dtype=np.int64)).predict_proba(digits.inputs_pool[free])
    sel = make_strategy("margin").select(StrategyInput(probs=probs), 10, round_rng(0, 0, 3))
    margin_batch = free[sel.indices]
    kept = ceiling.rounds[0]
    assert validation_accuracy(kept.selected) == pytest.approx(kept.ceiling.validation_accuracy[kept.ceiling.chosen])
    assert kept.ceiling.validation_accuracy[kept.ceiling.proposers.index("margin")] == \
        pytest.approx(validation_accuracy(margin_batch))
    assert validation_accuracy(kept.selected) >= validation_accuracy(margin_batch)


def test_same_seed_same_picks_and_another_seed_other_picks(ceiling, digits):
    again = OracleCeiling(CFG, STRATEGIES, dataset=digits, validation=150)
    list(again.run())
    assert picks(again) == picks(ceiling)
    other = OracleCeiling(CFG.replace(seed=1), STRATEGIES, validation=150)
    list(other.run())
    assert picks(other) != picks(ceiling)


def test_the_test_labels_never_choose(ceiling, digits):
    rng = np.random.default_rng(0)
    shuffled = dataclasses.replace(digits, y_test=rng.permutation(digits.y_test))
    blind = OracleCeiling(CFG, STRATEGIES, dataset=shuffled, validation=150)
    list(blind.run())
    assert picks(blind) == picks(ceiling)
    assert [r.test_accuracy for r in blind.rounds] != [r.test_accuracy for r in ceiling.rounds]


def test_a_continued_ceiling_picks_what_an_uninterrupted_one_does(ceiling, digits):
    c = OracleCeiling(CFG, STRATEGIES, dataset=digits, validation=150)
    list(c.run(max_rounds=2))
    saved = load_result(to_json(c.result()).encode())
    assert saved.label == f"{CEILING} (seed 0)" and saved.ceiling.candidates == 5
    resumed = Experiment.resume(saved, dataset=digits)  # a ceiling's file continues as a ceiling
    assert isinstance(resumed, OracleCeiling)
    list(resumed.run())
    assert picks(resumed) == picks(ceiling)


def test_a_round_stopped_part_way_is_dropped_whole(ceiling, digits):
    c = OracleCeiling(CFG, STRATEGIES, dataset=digits, validation=150)
    c.step()
    calls = []

    def stop_after_a_few():
        calls.append(1)
        if len(calls) > 3:  # among the candidates' trainings
            raise cancel.Cancelled("stopped")

    with cancel.stop_when(stop_after_a_few), pytest.raises(cancel.Cancelled):
        c.step()
    assert len(c.rounds) == 1 and len(c.labeled_indices) == CFG.initial + CFG.batch_size  # round 0 and its batch
    assert len(calls) > 3  # it was stopped among the candidates, not before
    list(c.run())
    assert picks(c) == picks(ceiling)


def test_a_forged_file_whose_ceiling_picks_a_validation_image_is_refused(ceiling):
    data = ceiling.result().model_dump(mode="json")
    data["ceiling"]["validation_indices"][0] = data["rounds"][1]["selected"][0]
    import json

    with pytest.raises(ResultFileError, match="picks one of its own validation images"):
        load_result(json.dumps(data).encode())


def test_ceiling_settings_are_checked_by_name(digits):
    with pytest.raises(ValueError, match="ceiling_candidates 2 is below the 3 strategies raced"):
        RaceConfig(base=CFG, strategies=STRATEGIES, seeds=[0], ceiling=True, ceiling_candidates=2)
    with pytest.raises(ValueError, match="ceiling_validation 5000 does not fit"):
        OracleCeiling(CFG, STRATEGIES, dataset=digits, validation=5000)


def test_a_race_with_the_ceiling_steps_it_saves_it_and_continues_it(digits):
    cfg = CFG.replace(rounds=3)
    race = Race(cfg, ["random", "margin"], [0], ceiling=True, ceiling_validation=100, dataset_for=lambda c: digits)
    assert len(race.experiments) == 2 and len(race.ceilings) == 1
    for _ in range(5):
        race.step()
    rows = race.curve_rows()
    assert {r["group"] for r in rows} == {"random", "margin", CEILING}
    saved = {i: load_result(to_json(e.result()).encode()) for i, e in enumerate(race.runs) if e.rounds}
    assert saved[2].ceiling is not None  # numbered after the strategies' runs
    continued = Race.of(race.setup, saved=saved, dataset_for=lambda c: digits)
    while not race.done:
        race.step()
    while not continued.done:
        continued.step()
    assert picks(continued.ceilings[0]) == picks(race.ceilings[0])
    assert [r.label for r in race.ceiling_results()] == [f"{CEILING} (seed 0)"]
    assert all(r.ceiling is None for r in race.results())


def test_limits_count_the_ceiling():
    limits = DeploymentLimits(max_runs_per_race=6)
    assert not limits.run_problems(CFG, STRATEGIES, 6)
    problems = limits.run_problems(CFG, STRATEGIES, 6, ceiling_candidates=5, ceiling_validation=200)
    assert any("8 runs" in p and "oracle ceiling" in p for p in problems)
    # a deep model's ceiling round trains K + 1 models: 6 x 650 steps (50 epochs of 13 batches at 400
    # labels) is over 3000 steps a round, 650 is not
    mlp = CFG.replace(model="mlp", rounds=39)
    steps = DeploymentLimits(max_steps_per_round=3000)
    assert not steps.run_problems(mlp, STRATEGIES, 3)
    assert any("trains 6 models" in p for p in steps.run_problems(mlp, STRATEGIES, 3, ceiling_candidates=5,
                                                                  ceiling_validation=200))
    assert not steps.run_problems(CFG, STRATEGIES, 3, ceiling_candidates=5, ceiling_validation=200)  # softmax
    scored = DeploymentLimits(max_scored_per_round=2000)
    assert any("ceiling_validation" in p for p in scored.run_problems(
        CFG, STRATEGIES, 3, ceiling_candidates=5, ceiling_validation=200))
    assert RaceConfig(base=CFG, strategies=STRATEGIES, seeds=[0, 1], ceiling=True).ceiling_costs() == \
        {"ceiling_candidates": 5, "ceiling_validation": 200}


def test_the_share_of_gain_is_the_ratio_of_areas_between_curves():
    labels = [10, 20, 30]
    random = (labels, [0.5, 0.5, 0.5])
    ceiling = (labels, [0.5, 0.9, 0.9])
    half = (labels, [0.5, 0.7, 0.7])
    assert share_of_gain(half, random, ceiling) == pytest.approx(0.5)
    assert share_of_gain(ceiling, random, ceiling) == pytest.approx(1.0)
    assert share_of_gain(random, random, ceiling) == pytest.approx(0.0)
    assert share_of_gain((labels, [0.5, 0.3, 0.3]), random, ceiling) == pytest.approx(-0.5)
    # only the labels all three reached count: the strategy's extra round is left out
    longer = ([10, 20, 30, 40], [0.5, 0.7, 0.7, 1.0])
    assert share_of_gain(longer, random, ceiling) == pytest.approx(0.5)
    assert share_of_gain(half, random, random) is None  # no gain to share


def test_gain_captured_per_strategy_with_an_interval_over_seeds(digits):
    cfg = CFG.replace(rounds=3)
    race = Race(cfg, ["random", "margin"], [0, 1], ceiling=True, ceiling_validation=100)
    while not race.done:
        race.step()
    table = gain_captured(race.results() + race.ceiling_results())
    assert table["group"].tolist() == ["margin"]
    row = table.iloc[0]
    assert row["seeds"] + row["note"].count("gained nothing") == 2
    if row["seeds"] == 2:
        assert row["share_low"] <= row["share_mean"] <= row["share_high"]
    assert gain_captured(race.results()).empty  # no ceiling: no table
    without_random = gain_captured([r for r in race.results() if r.config.strategy != "random"]
                                   + race.ceiling_results())
    assert without_random.iloc[0]["seeds"] == 0 and "no random run" in without_random.iloc[0]["note"]


def test_the_curves_figure_draws_the_ceiling_dashed_grey(digits):
    from alcore.figures import CEILING_COLOR, learning_curve_figure

    race = Race(CFG.replace(rounds=2), ["random", "margin"], [0], ceiling=True, ceiling_validation=100,
                dataset_for=lambda c: digits)
    while not race.done:
        race.step()
    fig = learning_curve_figure(race.curve_frame(), aggregate=False)
    ceiling = [t for t in fig.data if t.name.startswith(CEILING)]
    assert len(ceiling) == 1 and ceiling[0].line.color == CEILING_COLOR and ceiling[0].line.dash == "longdash"
    assert {t.line.dash for t in fig.data if not t.name.startswith(CEILING)} <= {"solid", "dash"}


def test_the_race_command_writes_the_ceiling_and_prints_the_share_of_gain(tmp_path, capsys):
    from alcore.cli import main

    code = main(["race", "--strategies", "random", "margin", "--seeds", "0", "1", "--rounds", "2", "--ceiling",
                 "--ceiling-validation", "100", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ceiling-seed0.json", "ceiling-seed1.json", "margin-seed0.json", "margin-seed1.json",
        "random-seed0.json", "random-seed1.json"]
    ceiling = load_result(tmp_path / "ceiling-seed1.json")
    assert ceiling.label == f"{CEILING} (seed 1)" and len(ceiling.ceiling.validation_indices) == 100
    assert "share of the oracle's gain over random captured" in out and "margin" in out.split("captured")[1]
    assert main(["race", "--strategies", "random", "margin", "typiclust", "--ceiling", "--ceiling-candidates",
                 "2"]) == 2
    assert "ceiling_candidates 2 is below the 3 strategies raced" in capsys.readouterr().err


def test_a_link_carries_the_ceiling_by_its_field_names():
    from alcore.serve.share import decode, encode

    params = encode(CFG, ["random", "margin"], 2, {"ceiling": True, "ceiling_candidates": None,
                                                   "ceiling_validation": 300})
    assert params["ceiling"] == "true" and params["ceiling_validation"] == "300"
    assert "ceiling_candidates" not in params  # the default: left out
    back = decode(params)
    assert back.ceiling == {"ceiling": True, "ceiling_validation": 300} and not back.problems
    bad = decode({"ceiling": "true", "ceiling_validation": "3"})
    assert bad.ceiling == {"ceiling": True}
    assert any("ceiling_validation=3 was not applied" in p for p in bad.problems)
    assert "ceiling" not in encode(CFG, ["random"], 1, {"ceiling": False})


def test_summarize_and_csv_keep_the_ceiling_apart_from_random(tmp_path, capsys):
    from alcore.cli import main

    main(["race", "--strategies", "random", "margin", "--rounds", "2", "--ceiling", "--ceiling-validation", "100",
          "--out", str(tmp_path)])
    capsys.readouterr()
    files = sorted(str(p) for p in tmp_path.iterdir())
    assert main(["summarize", *files]) == 0
    rows = {line.split()[0] if not line.startswith(CEILING) else CEILING: line
            for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"random", "margin", CEILING}
    assert all(row.split()[-4] == "1" for row in rows.values())  # one run each: the ceiling is not random's
    assert main(["csv", *files]) == 0
    assert {line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]} == {"random", "margin", CEILING}


def test_the_time_left_counts_a_ceiling_round_as_k_plus_one_trainings(digits, monkeypatch):
    """A round of the oracle ceiling trains K + 1 models (its last, which picks nothing, one): the
    Run page's "about N s left" weighs its rounds by their own time, not by the mean over every
    round of the race (which the strategies' cheap rounds pull down, and which swung with the
    order the runs were stepped in)."""
    import types

    import alcore.engine.race as race_module

    clock = [0.0]
    monkeypatch.setattr(race_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    race = Race(CFG.replace(rounds=3), ["random", "margin"], [0], ceiling=True, ceiling_validation=100,
                dataset_for=lambda c: digits)
    k1 = race.setup.ceiling_batches + 1  # 4 candidates (the 2 strategies + 2, the default) + its own model
    assert k1 == 5

    def cost(e, r) -> float:  # on the fake clock: a strategy's round 1 s, a ceiling's K + 1 s (its last 1 s)
        return float(k1) if e in race.ceilings and r < 3 else 1.0

    for e in race.runs:
        def step(e=e, step=e.step):
            clock[0] += cost(e, len(e.rounds))
            return step()
        e.step = step

    def truth() -> float:  # what the rounds still to come will take
        return sum(cost(e, r) for e in race.runs for r in range(len(e.rounds), 4))

    seen = []
    while not race.done:
        race.step()
        p = race.progress()
        seen.append((p.rounds_done, p.seconds_left, truth()))
        assert p.seconds_left == pytest.approx(truth()), seen
    # the old estimate, seconds so far / rounds so far x rounds left, after the 2 strategies' first rounds:
    # 2 s / 2 x 10 = 10 s left, where the ceiling alone still needs 3 x 5 s + 1 s
    assert seen[1][:2] == (2, pytest.approx(6 + 3 * k1 + 1))
    assert seen[-1][1] == 0


def test_a_runs_pace_leaves_out_its_first_round_and_follows_its_trend_not_a_spike():
    from alcore.engine.race import run_seconds_left

    assert run_seconds_left([5.3, 0.4, 0.4, 0.4], 10) == pytest.approx(4.0)  # a model's first build: once
    assert run_seconds_left([0.5], 4) == pytest.approx(2.0)
    growing = [0.1 + 0.01 * r for r in range(12)]  # a round trains on more labels than the one before
    assert run_seconds_left(growing, 3) == pytest.approx(0.22 + 0.23 + 0.24)
    spiky = [0.4, 0.4, 0.4, 0.4, 0.4, 3.0, 0.4, 0.4]  # a busy moment of the machine
    assert run_seconds_left(spiky, 10) == pytest.approx(4.0)


def test_a_link_that_turns_the_ceiling_on_is_checked_against_the_limits_when_it_opens():
    """A link's ceiling that the server's limits refuse is refused by name when the link opens (with
    the limit's own sentence: its value and the cap), the rest of the link applies, and what applies
    is what Start (RaceConfig, then run_problems with its ceiling_costs) lets start."""
    from alcore.serve.share import decode

    def start_refuses(setup, limits) -> list[str]:
        strategies, seeds = setup.strategies or ["margin", "random"], setup.seeds or 1  # the session's defaults
        rs = RaceConfig.counted(setup.config, strategies, seeds, **setup.ceiling)
        return limits.run_problems(setup.config, strategies, rs.n_runs, **rs.ceiling_costs())

    runs = DeploymentLimits(max_runs_per_race=15)
    link = {"strategies": ["random", "margin", "typiclust"], "seeds": "5", "ceiling": "true", "rounds": "7"}
    setup = decode(link, limits=runs)
    assert setup.problems == ["The link's ceiling=true was not applied: the race has 20 runs (strategies x seeds "
                              "and an oracle ceiling per seed), over this server's limit of 15 runs per race: race "
                              "fewer strategies or seeds, or turn the oracle ceiling off."]
    assert setup.refused == ["ceiling"] and not setup.ceiling.get("ceiling")
    assert (setup.strategies, setup.seeds, setup.config.rounds) == (STRATEGIES, 5, 7)  # the rest applies
    assert not start_refuses(setup, runs)
    setup = decode({**link, "seeds": "3"}, limits=runs)  # 9 runs + 3 ceilings: within
    assert setup.ceiling == {"ceiling": True} and not setup.problems and not start_refuses(setup, runs)

    # too many candidates for the steps a round may take: the link's ceiling_candidates goes, the
    # ceiling stays on with the default K (the strategies + 2)
    steps = DeploymentLimits(max_steps_per_round=4000)  # 650 steps a model: K = 4 (5 x 650) fits, 9 does not
    deep = {"model": "mlp", "rounds": "39", "strategies": ["random", "margin"], "ceiling": "true",
            "ceiling_candidates": "9"}
    setup = decode(deep, limits=steps)
    assert setup.refused == ["ceiling_candidates"] and setup.ceiling == {"ceiling": True}
    assert setup.problems[0].startswith("The link's ceiling_candidates=9 was not applied: a round of the oracle "
                                        "ceiling trains 10 models (ceiling_candidates 9 + its own)")
    assert setup.config.model == "mlp" and not start_refuses(setup, steps)
    # where even the default K is over (4 strategies: 7 x 650), the ceiling itself is refused
    setup = decode({**deep, "strategies": ["random", "margin", "typiclust", "entropy"]}, limits=steps)
    assert "ceiling" in setup.refused and not setup.ceiling.get("ceiling") and not start_refuses(setup, steps)

    # ceiling_validation x K images scored over the cap: ceiling_validation goes
    scored = DeploymentLimits(max_scored_per_round=2500)  # 1 438 candidates + 4 x 200 fit, + 4 x 300 do not
    setup = decode({"ceiling": "true", "ceiling_validation": "300", "strategies": ["random", "margin"]},
                   limits=scored)
    assert setup.refused == ["ceiling_validation"] and "scores" in setup.problems[0] \
        and "ceiling_validation=300" in setup.problems[0]
    # fewer candidates than strategies raced: refused when it opens, not when Start is pressed
    setup = decode({"ceiling": "true", "ceiling_candidates": "2", "strategies": STRATEGIES})
    assert setup.refused == ["ceiling_candidates"] and setup.ceiling == {"ceiling": True}
    assert "ceiling_candidates 2 is below the 3 strategies raced" in setup.problems[0]
