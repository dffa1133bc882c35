"""alcore.serve.share: a setup as query parameters, and back, with every bad parameter refused by name."""
from urllib.parse import parse_qs

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alcore import ExperimentConfig
from alcore.serve.share import (LINK_FIELDS, MAX_VALUE_CHARS, OWNED, decode, encode, left_out, query_string,
                          share_url)

RANGES = {"batch_size": (1, 100_000), "dropout": (0.0, 0.9), "seeds": (1, 20)}


def read(query: str) -> dict:
    """A query string as st.query_params.get_all gives it (what the pages pass to decode)."""
    return parse_qs(query, keep_blank_values=True)


SETUPS = [
    (ExperimentConfig(), ["margin", "random"], 1),
    (ExperimentConfig(batch_size=20, rounds=None, label_budget=200), ["entropy", "random"], 3),
    (ExperimentConfig(model="mlp", hidden_units=(256, 128), dropout=0.5, activation="tanh", warm_start=True,
                      learning_rate=0.1 + 0.2, l2=1e-05), ["margin"], 1),
    (ExperimentConfig(dataset="mnist", pool_size=4000, test_size=1000, normalization="standardize",
                      initial_strategy="kmeans", validation="fixed", validation_size=30, refit=False, seed=7,
                      target_accuracy=0.9, plateau_rounds=3, uncertainty_threshold=0.05, candidates=500),
     ["hybrid", "bald", "random"], 5),
    (ExperimentConfig(model="transfer", backbone_weights="random", backbone_size=64, optimizer="sgd",
                      momentum=0.5, hybrid_fraction=0.3, hybrid_measure="entropy"), ["hybrid", "random"], 2),
]


@pytest.mark.parametrize("cfg, strategies, seeds", SETUPS)
def test_a_setup_reads_back_exactly_from_its_link(cfg, strategies, seeds):
    params = encode(cfg, strategies, seeds)
    back = decode(read(query_string(params)))
    assert back.config == cfg and not back.problems
    assert (back.strategies or ["margin", "random"]) == strategies
    assert (back.seeds or 1) == seeds


def test_only_what_differs_from_the_defaults_is_in_the_link_by_its_field_name():
    assert encode(ExperimentConfig()) == {}
    assert share_url("http://host/strategy", {}) == "http://host/strategy"
    assert share_url("http://host:8501", {"seeds": "2"}) == "http://host:8501/?seeds=2"
    assert share_url(None, {"seeds": "2"}) == "?seeds=2"
    cfg = ExperimentConfig(batch_size=20, rounds=None, label_budget=200, hidden_units=(64, 32))
    params = encode(cfg, ["margin", "entropy", "random"], 3)
    assert query_string(params) == ("strategies=margin&strategies=entropy&strategies=random&seeds=3&"
                                    "hidden_units=64&hidden_units=32&batch_size=20&rounds=none&label_budget=200")
    assert set(params) <= OWNED and set(LINK_FIELDS) <= set(ExperimentConfig.model_fields)


def test_paths_never_go_into_a_link():
    cfg = ExperimentConfig(dataset="npz", data_file="/srv/secret/x.npz", pool_size=100)
    params = encode(cfg)
    assert params == {"pool_size": "100"}
    assert "npz" in left_out(cfg)[0]
    cfg = ExperimentConfig(dataset="mnist", data_dir="/home/me/data")
    assert encode(cfg) == {"dataset": "mnist"} and "data_dir" in left_out(cfg)[0]
    assert left_out(ExperimentConfig()) == []


def test_lists_may_be_comma_separated_as_typed_by_hand():
    back = decode({"hidden_units": "256,128", "strategies": "margin, entropy,margin", "model": "mlp"})
    assert back.config.hidden_units == (256, 128) and back.strategies == ["margin", "entropy"]


def test_settings_valid_only_together_apply_in_either_order():
    for order in (["rounds", "label_budget"], ["label_budget", "rounds"]):
        params = {k: {"rounds": "none", "label_budget": "200"}[k] for k in order}
        back = decode(params)
        assert not back.problems and back.config.rounds is None and back.config.label_budget == 200


def test_the_other_parameters_of_the_address_are_left_alone():
    back = decode({"run": "A" * 22, "embed": "true", "batch_size": "20"})
    assert back.applied == ["batch_size"] and not back.problems


# (parameters, the parameter refused, words of the reason); every other parameter still applies.
BAD = [
    ({"batch_size": "-3"}, "batch_size", "greater than or equal to 1"),
    ({"batch_size": "ten"}, "batch_size", "valid integer"),
    ({"batch_size": "200000"}, "batch_size", "takes 1 to 100000"),
    ({"dropout": "0.95"}, "dropout", "takes 0 to 0.9"),
    ({"learning_rate": "nan"}, "learning_rate", "finite number"),
    ({"learning_rate": "-inf"}, "learning_rate", "finite number"),
    ({"warm_start": "maybe"}, "warm_start", "valid boolean"),
    ({"model": "<script>alert(1)</script>"}, "model", "'softmax', 'mlp', 'cnn' or 'transfer'"),
    ({"label_budget": "5"}, "label_budget", "below the labels the first round already uses (10)"),
    ({"rounds": "none"}, "rounds", "or the run would never stop"),
    ({"initial": ["3", "4"]}, "initial", "given 2 times"),
    ({"seed": ""}, "seed", "empty"),
    ({"seed": "9" * (MAX_VALUE_CHARS + 1)}, "seed", f"longer than {MAX_VALUE_CHARS} characters"),
    ({"data_dir": "/etc"}, "data_dir", "never carries a path"),
    ({"data_file": "/etc/passwd"}, "data_file", "never carries a path"),
    ({"dataset": "npz"}, "dataset", "needs a file or folder"),
    ({"dataset": "idx"}, "dataset", "needs a file or folder"),
    ({"strategy": "entropy"}, "strategy", "strategies="),
    ({"bacth_size": "20"}, "bacth_size", "no setting of that name"),
    ({"seeds": "50"}, "seeds", "takes 1 to 20"),
    ({"seeds": "0"}, "seeds", "takes 1 to 20"),
    ({"seeds": "two"}, "seeds", "whole number"),
    ({"strategies": "magic"}, "strategies", "magic is not a strategy"),
    ({"strategies": ""}, "strategies", "empty"),
    ({"hidden_units": "0"}, "hidden_units", "1..16384 units"),
]


@pytest.mark.parametrize("params, name, reason", BAD)
def test_a_bad_parameter_is_refused_by_name_and_the_rest_applies(params, name, reason):
    back = decode({**params, "rounds" if name != "rounds" else "initial": "7"}, ranges=RANGES)
    assert back.refused == [name]
    assert len(back.problems) == 1 and back.problems[0].startswith(f"The link's {name}")
    assert reason in back.problems[0]
    assert back.config.rounds == 7 or back.config.initial == 7  # the good parameter applied
    if name in ExperimentConfig.model_fields:
        assert getattr(back.config, name) == getattr(ExperimentConfig(), name)  # the bad one did not


def test_a_partly_known_strategy_list_races_the_known_ones():
    back = decode({"strategies": ["margin", "nonsense", "random"]})
    assert back.strategies == ["margin", "random"] and back.refused == []
    assert "nonsense is not a strategy" in back.problems[0] and "racing margin, random" in back.problems[0]


def test_a_quoted_value_is_short_and_printable():
    back = decode({"model": "x" * 150 + "\n\x00<b>"})
    quoted = back.problems[0].split("=", 1)[1].split(" was not applied")[0]
    assert quoted == "x" * 40 + "..."
    back = decode({"model": "a\nb\x00"})
    assert "model=a?b? was" in back.problems[0]


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(sorted(OWNED) + ["run", "foo", "data_dir", "strategy", "<b>"]),
                       st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3),
                                 st.sampled_from(["none", "", "0", "-1", "1e309", "nan", "true", "0.5", "3"])),
                       max_size=8))
def test_no_link_makes_decode_raise(params):
    back = decode(params, ranges=RANGES)
    ExperimentConfig(**back.config.model_dump())  # what applies is a valid config
    assert all(isinstance(p, str) and p.startswith("The link's ") for p in back.problems)
    assert set(back.applied).isdisjoint(back.refused)
