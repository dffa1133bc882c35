"""Model page: architecture, training settings, layer summary, reference accuracy."""
import pandas as pd
import streamlit as st

from alcore.config import EMBEDDING_MODELS
from dashboard.data import dataset
from dashboard.display import plain, show_problems, show_table
from dashboard.embeddings import embedding_upload, show_embedding
from dashboard.limits import deployment_limits, one_call_within_labels
from dashboard.state import REFERENCE_ACCURACY, config, trainer_cache
from dashboard.widgets import bind, choice, commit, help_text, label, number, optional_float, optional_int, slider, toggle

st.title("Model")
st.write("Each round the model is trained again on the labels so far: `softmax` is fitted to its optimum "
         "(a convex problem: no epochs, no validation labels), the networks are re-initialised (unless warm "
         "start is on) and trained. Only labels ever shape a model; the test set just reports accuracy.")

cfg = config()
c1, c2, c3 = st.columns(3)
values = {}
with c1:
    st.subheader("Architecture")
    values["model"] = choice("model")
    values["embedding"] = choice("embedding") if values["model"] in EMBEDDING_MODELS else "pixels"
    if values["embedding"] == "self_supervised":
        values["encoder_steps"] = number("encoder_steps", step=100)
        values["embedding_dim"] = number("embedding_dim", step=16)
    if values["embedding"] == "file":
        embedding_upload(cfg, values)
    if values["model"] == "transfer" or values["embedding"] == "pretrained":
        values["backbone"] = choice("backbone")
        values["backbone_weights"] = choice("backbone_weights")
        values["backbone_size"] = number("backbone_size")
    if values["model"] == "transfer":
        st.caption("The backbone turns every image into features once per dataset (the first round "
                   "waits for it); each round then trains only the head below.")
    if values["model"] in ("mlp", "transfer"):
        values["hidden_units"] = st.text_input(label("hidden_units"),
                                               key=bind("hidden_units", lambda v: ",".join(map(str, v))),
                                               help=help_text("hidden_units"))
        values["activation"] = choice("activation")
    if values["model"] == "cnn":
        values["filters"] = number("filters")
        values["kernel_size"] = number("kernel_size")
    if values["model"] in ("mlp", "cnn", "transfer"):
        values["dropout"] = slider("dropout")
    if values["model"] == "cnn":
        values["dense_dropout"] = optional_float("dense_dropout", "same as dropout", max_value=0.9)
    # reported accuracy from MC-dropout passes: only models with dropout have them
    values["mc_evaluation"] = toggle("mc_evaluation") if values["model"] in ("mlp", "cnn") else False
    if values["model"] == "cnn" or (values["model"] == "mlp" and values["embedding"] == "pixels"):
        st.caption("Augmentation (training only)")
        for field in ("augment_shift", "augment_rotation", "augment_zoom"):
            values[field] = slider(field)
if values["model"] == "softmax":
    with c2:
        st.subheader("Penalty")
        values["penalty_c"] = number("penalty_c", min_value=1e-6, format="%.4f")
        values["penalty_cv"] = toggle("penalty_cv")
    c3.subheader("Fitting")
    c3.caption("Multinomial logistic regression, minimised to convergence every round by L-BFGS "
               "(scikit-learn): the same labels always give the same model, so the curve moves only "
               "when the labels do.")
else:
    with c2:
        st.subheader("Optimizer")
        values["optimizer"] = choice("optimizer")
        values["learning_rate"] = number("learning_rate", format="%.5f")
        if values["optimizer"] == "sgd":
            values["momentum"] = slider("momentum")
        values["train_batch_size"] = number("train_batch_size")
        values["l2"] = number("l2", format="%.6f")
        values["weight_decay"] = number("weight_decay", format="%.4f")
        values["warm_start"] = toggle("warm_start")
    with c3:
        st.subheader("Stopping")
        values["validation"] = choice("validation")
        if values["validation"] == "split":
            values["validation_fraction"] = slider("validation_fraction")
        if values["validation"] == "fixed":
            values["validation_size"] = number("validation_size")
        if values["validation"] != "none":
            values["patience"] = number("patience")
            values["refit"] = toggle("refit")
        values["max_epochs"] = number("max_epochs")
        if values["validation"] == "none":
            values["min_steps"] = number("min_steps")
            values["max_steps"] = optional_int("max_steps", "no cap", max_value=1_000_000)
ok = commit(values)
cfg = config()
ds = dataset(cfg)
if not ok or ds is None:
    st.stop()
if cfg.embedding != "pixels" and cfg.model != "transfer":
    ds = show_embedding(cfg, ds)
    if ds is None:
        st.stop()


@st.cache_data(max_entries=16, show_spinner=False)
def layer_table(spec_key: tuple, _spec):
    from alcore.engine.models import build_model, summary_rows

    model = build_model(_spec)
    return summary_rows(model), int(model.count_params())


from alcore.engine.models import ModelSpec  # noqa: E402  (no TensorFlow import: builders import it lazily)

from alcore.engine.transfer import FEATURE_DIMS  # noqa: E402

spec = ModelSpec.from_config(cfg, (FEATURE_DIMS[cfg.backbone],) if cfg.model == "transfer" else
                             ds.inputs_pool.shape[1:], ds.n_classes)
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
ref_key = (cfg.data_key(), cfg.seed, spec, ds.features_of, cfg.optimizer, cfg.learning_rate, cfg.train_batch_size, cfg.max_epochs,
           cfg.validation, cfg.patience, cfg.l2, cfg.weight_decay, cfg.min_steps, cfg.max_steps, cfg.penalty_c,
           cfg.penalty_cv, cfg.mc_evaluation, cfg.mc_passes)
if st.button("Train on every pool label", type="primary"):
    from alcore.engine.loop import Experiment

    n_val = cfg.validation_labels()
    full = cfg.replace(initial=len(ds.y_pool) - n_val, rounds=0, label_budget=None, target_accuracy=None,
                       strategy="random", candidates=None)
    with one_call_within_labels(len(ds.y_pool), f"Training on every pool label ({len(ds.y_pool):,} labels)",
                                "choose a pool_size of at most {cap} on the Dataset page") as ok:
        if ok:
            from alcore.data.datasets import DatasetUnavailableError

            try:
                with st.spinner(f"Training {cfg.model} on {len(ds.y_pool):,} labels..."):
                    r = Experiment(full, dataset=ds, cache=trainer_cache()).step()
                refs[ref_key] = (r.test_accuracy, r.train_seconds, r.epochs)
            except DatasetUnavailableError as e:  # the backbone's ImageNet weights, offline
                st.error(f"**The {cfg.backbone_weights} weights are not available here.** {plain(e)}",
                         icon=":material/cloud_off:")
if ref_key in refs:
    acc, secs, epochs = refs[ref_key]
    st.metric("Test accuracy with every pool label", f"{acc:.2%}",
              help=f"{epochs} {'L-BFGS iterations' if cfg.model == 'softmax' else 'epochs'}, {secs:.1f} s of training")
    st.session_state[REFERENCE_ACCURACY] = acc
