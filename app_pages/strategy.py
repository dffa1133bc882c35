"""Strategy page: what to race, how big each batch is, when to stop."""
import streamlit as st

from alcore.analysis.pitfalls import batch_pitfalls, stops_on_test_data
from alcore.strategies.base import STRATEGIES, Need
from dashboard.data import dataset_sizes
from dashboard.display import show_pitfalls
from dashboard.limits import deployment_limits
from dashboard.state import config, race_settings, race_setup
from dashboard.widgets import (WIDGET_RANGES, bind, ceiling_settings, choice, commit, number, optional_float, optional_int,
                               optional_percent, slider)

st.title("Strategy")
st.write("Pick the strategies to **race** on the same seeds: every strategy starts from the same "
         "initial labels and the same initial weights, so the curves differ only by what each one picks. "
         "Keep `random` in the race: it is the baseline every strategy has to beat.")

rs = race_settings()
limits = deployment_limits()
left, right = st.columns([1, 1])
with left:
    chosen = st.multiselect("Strategies to race", list(STRATEGIES), default=rs["strategies"],
                            help="Each strategy runs once per seed.")
    seeds = st.number_input("Seeds per strategy", *WIDGET_RANGES["seeds"], value=rs["seeds"],
                            help="Repeat the race with different initial labels and weights; "
                                 "the Run and Compare pages show the mean and a 95% band.")
    if chosen:
        rs["strategies"], rs["seeds"] = chosen, int(seeds)
    else:
        st.warning("Choose at least one strategy.")
    ceiling_settings(chosen)
    values = {
        "batch_size": number("batch_size"),
        "rounds": optional_int("rounds", "no round limit", max_value=limits.max_rounds),
        "label_budget": optional_int("label_budget", "no budget", max_value=limits.max_labels),
        "target_accuracy": optional_percent("target_accuracy", "no target"),
        "candidates": optional_int("candidates", "score the whole unlabeled pool"),
    }
    reads = {f for name in chosen for f in STRATEGIES[name].config_fields}  # the settings the chosen ones read
    if "hybrid_fraction" in reads:
        values["hybrid_fraction"] = slider("hybrid_fraction", step=0.05)
        values["hybrid_measure"] = choice("hybrid_measure", ["margin", "least_confidence", "ratio", "entropy"])
    if "margin_cluster_factor" in reads:
        values["margin_cluster_factor"] = number("margin_cluster_factor")
    if "typiclust_neighbors" in reads:
        values["typiclust_neighbors"] = number("typiclust_neighbors", step=1)
    if "probcover_radius" in reads:
        values["probcover_radius"] = optional_float("probcover_radius", "chosen by the purity rule", max_value=2.0,
                                                    step=0.01, format="%.2f")
        values["probcover_purity"] = slider("probcover_purity", step=0.01)
    if "herding_bandwidth" in reads:
        values["herding_bandwidth"] = optional_float("herding_bandwidth", "each strategy's default",
                                                     max_value=10.0, step=0.05, format="%.2f")
    if "uherding_measure" in reads:
        values["uherding_measure"] = choice("uherding_measure", ["margin", "least_confidence", "ratio", "entropy"])
        values["uherding_temperature"] = optional_float("uherding_temperature", "calibrated each round",
                                                        max_value=100.0, step=0.1, format="%.2f")
    if "mc_passes" in reads:
        top = min(200, limits.max_mc_passes or 200)
        key = bind("mc_passes")
        st.session_state[key] = min(st.session_state[key], top)  # a cap lowered mid-session
        values["mc_passes"] = number("mc_passes", max_value=top)
        if any(Need.MC_PASSES in STRATEGIES[name].needs for name in chosen) and (
                config().model == "softmax" or config().dropout == 0):
            st.warning("Bayesian strategies need a model with dropout: choose mlp or cnn with "
                       "dropout > 0 on the Model page.")
    with st.expander("Stop early: plateau and label-free signals"):
        values["plateau_rounds"] = optional_int("plateau_rounds", "off")
        values["plateau_delta"] = number("plateau_delta", format="%.4f")
        values["uncertainty_threshold"] = optional_float("uncertainty_threshold", "off", max_value=0.99,
                                                         format="%.3f")
        values["changed_threshold"] = optional_float("changed_threshold", "off", max_value=0.99, format="%.4f")
    commit(values)
    cfg = config()
    for problem in limits.run_problems(cfg, rs["strategies"], len(rs["strategies"]) * rs["seeds"],
                                       **race_setup(cfg).ceiling_costs()):
        st.warning(f"This server would refuse the race: {problem}.", icon=":material/block:")
    if cfg.max_labels():
        st.info(f"Each run ends with at most **{cfg.max_labels()} labels**: {cfg.initial} initial "
                f"+ up to {cfg.rounds if cfg.rounds is not None else '...'} rounds of {cfg.batch_size}.")
    n_pool, _ = dataset_sizes(cfg)  # None where the data cannot be had (the Dataset page says why)
    show_pitfalls(batch_pitfalls(cfg, n_pool) + stops_on_test_data(cfg))
with right:
    st.subheader("How they choose")
    st.caption("p(c|x) is the model's probability of class c for image x; ŷ1 and ŷ2 are its two most "
               "likely classes. Each strategy labels the images with the highest score s(x).")
    for name, strategy in STRATEGIES.items():
        with st.container(border=True):
            st.markdown(f"**{name}**" + (" :material/check_circle: racing" if name in chosen else ""))
            st.write(strategy.description)
            # a formula's parts (", \quad" between them) one under the other: bald and var_ratios on one
            # line were wider than this column at 1400 px and cut off
            st.latex(r"\begin{gathered}" + strategy.formula.replace(r",\quad", r",\\") + r"\end{gathered}")
