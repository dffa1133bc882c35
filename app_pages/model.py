"""Model page: architecture, training settings, layer summary, reference accuracy."""
import pandas as pd
import streamlit as st

from app_pages.common import (bind, commit, config, dataset, deployment_limits, help_text, label, one_call_within_labels,
                               optional_float, optional_int, plain, show_problems, show_table, trainer_cache)

st.title("Model")
st.write("Each round the model is trained again on the labels so far: `softmax` is fitted to its optimum "
         "(a convex problem: no epochs, no validation labels), the networks are re-initialised (unless warm "
         "start is on) and trained. Only labels ever shape a model; the test set just reports accuracy.")

cfg = config()
c1, c2, c3 = st.columns(3)
values = {}
with c1:
    st.subheader("Architecture")
    values["model"] = st.selectbox(label("model"), ["softmax", "mlp", "cnn", "transfer"], key=bind("model"),
                                   help=help_text("model"))
    if values["model"] == "transfer":
        values["backbone_weights"] = st.selectbox(label("backbone_weights"), ["imagenet", "random"],
                                                  key=bind("backbone_weights"), help=help_text("backbone_weights"))
        values["backbone_size"] = st.number_input(label("backbone_size"), 32, 224, key=bind("backbone_size"),
                                                  help=help_text("backbone_size"))
        st.caption("MobileNetV2 turns every image into 1280 features once per dataset (the first round "
                   "waits for it); each round then trains only the head below.")
    if values["model"] in ("mlp", "transfer"):
        units = st.text_input(label("hidden_units"), key=bind("hidden_units", lambda v: ",".join(map(str, v))),
                              help=help_text("hidden_units"))
        values["hidden_units"] = units
        values["activation"] = st.selectbox(label("activation"), ["relu", "sigmoid", "tanh"],
                                            key=bind("activation"), help=help_text("activation"))
    if values["model"] == "cnn":
        values["filters"] = st.number_input(label("filters"), 1, 512, key=bind("filters"), help=help_text("filters"))
        values["kernel_size"] = st.number_input(label("kernel_size"), 1, 15, key=bind("kernel_size"),
                                                help=help_text("kernel_size"))
    if values["model"] in ("mlp", "cnn", "transfer"):
        values["dropout"] = st.slider(label("dropout"), 0.0, 0.9, key=bind("dropout"), help=help_text("dropout"))
    if values["model"] == "cnn":
        values["dense_dropout"] = optional_float("dense_dropout", "same as dropout", max_value=0.9)
    if values["model"] in ("mlp", "cnn"):
        st.caption("Augmentation (training only)")
        values["augment_shift"] = st.slider(label("augment_shift"), 0.0, 0.5, key=bind("augment_shift"),
                                            help=help_text("augment_shift"))
        values["augment_rotation"] = st.slider(label("augment_rotation"), 0.0, 180.0, key=bind("augment_rotation"),
                                               help=help_text("augment_rotation"))
        values["augment_zoom"] = st.slider(label("augment_zoom"), 0.0, 0.5, key=bind("augment_zoom"),
                                           help=help_text("augment_zoom"))
if values["model"] == "softmax":
    with c2:
        st.subheader("Penalty")
        values["penalty_c"] = st.number_input(label("penalty_c"), min_value=1e-6, max_value=1e6, format="%.4f",
                                              key=bind("penalty_c"), help=help_text("penalty_c"))
        values["penalty_cv"] = st.toggle(label("penalty_cv"), key=bind("penalty_cv"), help=help_text("penalty_cv"))
    c3.subheader("Fitting")
    c3.caption("Multinomial logistic regression, minimised to convergence every round by L-BFGS "
               "(scikit-learn): the same labels always give the same model, so the curve moves only "
               "when the labels do.")
else:
    with c2:
        st.subheader("Optimizer")
        values["optimizer"] = st.selectbox(label("optimizer"), ["adam", "sgd"], key=bind("optimizer"),
                                           help=help_text("optimizer"))
        values["learning_rate"] = st.number_input(label("learning_rate"), min_value=1e-6, max_value=10.0,
                                                  format="%.5f", key=bind("learning_rate"), help=help_text("learning_rate"))
        if values["optimizer"] == "sgd":
            values["momentum"] = st.slider(label("momentum"), 0.0, 0.99, key=bind("momentum"), help=help_text("momentum"))
        values["train_batch_size"] = st.number_input(label("train_batch_size"), 1, 8192, key=bind("train_batch_size"),
                                                     help=help_text("train_batch_size"))
        values["l2"] = st.number_input(label("l2"), min_value=0.0, format="%.6f", key=bind("l2"), help=help_text("l2"))
        if values["model"] != "softmax":
            values["weight_decay"] = st.number_input(label("weight_decay"), 0.0, 100.0, format="%.4f",
                                                     key=bind("weight_decay"), help=help_text("weight_decay"))
        values["warm_start"] = st.toggle(label("warm_start"), key=bind("warm_start"), help=help_text("warm_start"))
    with c3:
        st.subheader("Stopping")
        values["validation"] = st.selectbox(label("validation"), ["split", "fixed", "none"], key=bind("validation"),
                                            help=help_text("validation"))
        if values["validation"] == "split":
            values["validation_fraction"] = st.slider(label("validation_fraction"), 0.05, 0.5,
                                                      key=bind("validation_fraction"), help=help_text("validation_fraction"))
        if values["validation"] == "fixed":
            values["validation_size"] = st.number_input(label("validation_size"), 1, key=bind("validation_size"),
                                                        help=help_text("validation_size"))
        if values["validation"] != "none":
            values["patience"] = st.number_input(label("patience"), 1, 1000, key=bind("patience"), help=help_text("patience"))
            values["refit"] = st.toggle(label("refit"), key=bind("refit"), help=help_text("refit"))
        values["max_epochs"] = st.number_input(label("max_epochs"), 1, 10_000, key=bind("max_epochs"),
                                               help=help_text("max_epochs"))
        if values["validation"] == "none" and values["model"] != "softmax":
            values["min_steps"] = st.number_input(label("min_steps"), 0, 100_000, key=bind("min_steps"),
                                                  help=help_text("min_steps"))
            values["max_steps"] = optional_int("max_steps", "no cap", max_value=1_000_000)
ok = commit(values)
cfg = config()
ds = dataset(cfg)
if not ok or ds is None:
    st.stop()


@st.cache_data(max_entries=16, show_spinner=False)
def layer_table(spec_key: tuple, _spec):
    from alcore.engine.models import build_model, summary_rows

    model = build_model(_spec)
    return summary_rows(model), int(model.count_params())


from alcore.engine.models import ModelSpec  # noqa: E402  (no TensorFlow import: builders import it lazily)

from alcore.engine.transfer import FEATURE_DIMS  # noqa: E402

spec = ModelSpec.from_config(cfg, (FEATURE_DIMS["mobilenet_v2"],) if cfg.model == "transfer" else ds.image_shape,
                             ds.n_classes)
st.subheader("Layers")
if too_big := deployment_limits().model_problems(cfg, ds.image_shape, ds.n_classes):
    show_problems(too_big)  # counted, not built: building it is what would take the memory
    st.stop()
try:
    with st.spinner("Building the model (TensorFlow loads on first use)..."):
        rows, n_params = layer_table(tuple(vars(spec).items()), spec)
except ValueError as e:
    st.error(plain(e))
    st.stop()
left, right = st.columns([3, 1])
show_table(pd.DataFrame(rows), f"layers_{cfg.model}", where=left)
right.metric("Parameters", f"{n_params:,}")

st.subheader("Reference accuracy")
st.write("The ceiling the learning curves are heading for: the same model trained on **every** pool "
         f"label ({len(ds.y_pool):,} images), the same way.")
refs = st.session_state.setdefault("reference", {})
ref_key = (cfg.data_key(), cfg.seed, spec, cfg.optimizer, cfg.learning_rate, cfg.train_batch_size, cfg.max_epochs,
           cfg.validation, cfg.patience, cfg.l2, cfg.weight_decay, cfg.min_steps, cfg.max_steps, cfg.penalty_c,
           cfg.penalty_cv)
if st.button("Train on every pool label", type="primary"):
    from alcore.engine.loop import Experiment

    n_val = cfg.validation_size if cfg.validation == "fixed" else 0
    full = cfg.replace(initial=len(ds.y_pool) - n_val, rounds=0, label_budget=None, target_accuracy=None,
                       strategy="random", candidates=None)
    with one_call_within_labels(len(ds.y_pool), f"Training on every pool label ({len(ds.y_pool):,} labels)",
                                "choose a pool_size of at most {cap} on the Dataset page") as ok:
        if ok:
            with st.spinner(f"Training {cfg.model} on {len(ds.y_pool):,} labels..."):
                r = Experiment(full, dataset=ds, cache=trainer_cache()).step()
            refs[ref_key] = (r.test_accuracy, r.train_seconds, r.epochs)
if ref_key in refs:
    acc, secs, epochs = refs[ref_key]
    st.metric("Test accuracy with every pool label", f"{acc:.2%}",
              help=f"{epochs} {'L-BFGS iterations' if cfg.model == 'softmax' else 'epochs'}, {secs:.1f} s of training")
    st.session_state["reference_accuracy"] = acc
