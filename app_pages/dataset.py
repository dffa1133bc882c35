"""Dataset page: choose the data and the pool; look at it."""
import numpy as np
import streamlit as st

from alcore.figures import label_distribution_figure
from alcore.analysis.pitfalls import batch_pitfalls, tiny_test_set
from alcore.engine.embeddings import features_of
from dashboard.data import dataset, embedding_if_here, refused_switch
from dashboard.display import caption_names, plain, sentence, show_figure, show_gallery, show_pitfalls
from dashboard.limits import deployment_limits
from dashboard.state import REFERENCE_ACCURACY, config
from dashboard.uploads import image_zip_upload, keep_upload, show_image_report, upload_limits_caption, upload_mb
from dashboard.widgets import bind, choice, commit, help_text, label, number, optional_int

st.title("Dataset")
st.write("Active learning starts from an **unlabeled pool**: the model is trained on a few labels, "
         "scores the pool, and asks for the labels it expects to learn most from. "
         "The **test set** only measures accuracy; training never sees it.")

SAMPLE_PX = 84  # samples per class: a row per class, so smaller than a gallery's images (8x8 digits 11x)
NAMES = {"digits": "scikit-learn digits (8x8, offline)", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
         "cifar10": "CIFAR-10", "idx": "Folder of idx files", "npz": "Upload a .npz",
         "images": "Upload a .zip of images"}

@st.cache_data(max_entries=8, show_spinner="Clustering the pool...")
def centroids(data_key: tuple, k: int, _ds, what: str = "pixels", _features=None):
    from alcore.engine.inspect import pool_centroids

    c = pool_centroids(_ds.x_pool, k, seed=0, labels=_ds.y_pool, features=_features)
    return _ds.display_images(c.images), c.sizes, c.majority, c.purity


def file_upload(source: str, cfg, values: dict):
    """The uploader of a dataset read from the user's file: (whether there is a file to load, the
    placeholder for the images' report or None). Fills ``values``."""
    if source == "images":
        return image_zip_upload(cfg, values)
    if source == "npz":
        up = st.file_uploader("Your .npz (x_train, y_train, optional x_test, y_test, class_names)",
                              type=["npz"], max_upload_size=upload_mb("npz"), help=upload_limits_caption("npz"))
        if up is not None:
            values["data_file"] = keep_upload(up, ".npz")  # checked before it is written
            if values["data_file"] is None:
                return False, None
        elif cfg.data_file is None or not cfg.data_file.endswith(".npz"):
            st.info("Upload a .npz file to use your own images.")
            return False, None
    return True, None


def page():
    cfg = config()
    limits = deployment_limits()
    # Without server paths a visitor can neither pick a folder nor type a path: nothing
    # on this page reads the server's files (mnist / fashion_mnist use the deployer's
    # $ALCORE_DATA_DIR or the Keras download).
    offered = [d for d in NAMES if limits.allow_server_paths or d != "idx"]
    if st.session_state.get("w_dataset", cfg.dataset) not in offered:
        st.session_state["w_dataset"] = "digits"
        st.warning("This server does not read folders on its disk, so the idx dataset is not available; "
                   "switched to digits.", icon=":material/block:")
    left, right = st.columns([1, 2])
    with left:
        source = choice("dataset", offered, format_func=NAMES.get)
        values = {"dataset": source}
        if not limits.allow_server_paths:
            if cfg.data_dir:
                st.warning("Data dir was cleared: this server does not read folders on its disk.",
                           icon=":material/block:")
            values["data_dir"] = None
        elif source in ("mnist", "fashion_mnist", "idx"):
            values["data_dir"] = st.text_input(
                label("data_dir"), key=bind("data_dir", lambda v: v or ""), help=help_text("data_dir"),
                placeholder="empty: download with keras.datasets" if source != "idx" else "/path/to/idx/folder") or None
        loadable, report_slot = file_upload(source, cfg, values)
        if not loadable:
            return
        why_not = st.container()  # why the data cannot be used: right under where it was chosen (issue 18)
        if kept := refused_switch(cfg, values):  # a dataset that cannot be had here: the setup stays
            why_not.error(kept, icon=":material/cloud_off:")
            return
        values["pool_size"] = optional_int("pool_size", "whole training split", max_value=limits.max_pool_size)
        if limits.max_pool_size is not None:
            st.caption(f"This server allows pools of up to {limits.max_pool_size:,} images.")
        values["test_size"] = optional_int("test_size", "whole test split")
        values["normalization"] = choice("normalization")
        values["initial"] = number("initial", label("initial") + " labels", step=1)
        values["initial_strategy"] = choice("initial_strategy")
        values["seed"] = number("seed", step=1)
        ok = commit(values)

    cfg = config()
    ds = dataset(cfg, where=why_not) if ok else None
    show_image_report(cfg, report_slot)
    with right:
        if ds is None:
            st.warning("Choose another dataset, or fix the settings on the left.")
            return
        for note in ds.notes:
            st.warning(sentence(plain(note)), icon=":material/info:")
        a, b, c, d = st.columns(4)
        a.metric("Pool images", f"{len(ds.y_pool):,}")
        b.metric("Test images", f"{len(ds.y_test):,}")
        c.metric("Classes", ds.n_classes)
        d.metric("Image size", "x".join(str(s) for s in ds.image_shape))
        st.caption(f"Source: {plain(ds.source)}")
        # the Model page's reference accuracy, where trained, is what the runs head for
        tiny = tiny_test_set(len(ds.y_test), st.session_state.get(REFERENCE_ACCURACY), test_size=cfg.test_size,
                             dataset=cfg.dataset)
        show_pitfalls(([tiny] if tiny else []) + batch_pitfalls(cfg, len(ds.y_pool)))
        show_figure(label_distribution_figure(ds.y_pool, ds.class_names), "label_distribution", key="label_dist")

    st.subheader("Samples per class")
    per_class = st.slider("Images per class", 1, 12, 6)
    rng = np.random.default_rng(cfg.seed)
    for k, name in enumerate(ds.class_names[:20]):
        members = np.flatnonzero(ds.y_pool == k)
        if len(members) == 0:
            continue
        pick = rng.choice(members, min(per_class, len(members)), replace=False)
        cols = st.columns([1, 8])
        cols[0].markdown(f"**{plain(name)}**")
        show_gallery(ds.display_images(ds.x_pool[pick]), where=cols[1], size=SAMPLE_PX)
    if ds.n_classes > 20:
        st.caption(f"First 20 of {ds.n_classes} classes shown.")

    st.subheader("k-means centroids of the pool")
    st.write("k-means groups the pool into clusters; each centre drawn as an image shows "
             "what a typical member looks like. Clusters that mix classes are where labels help most.")
    top = min(30, len(ds.y_pool))  # k-means needs at least k images (a link may set pool_size=1)
    if top < 3:
        st.info(f"A pool of {len(ds.y_pool)} image(s) is too small to cluster.")
        return
    # within the pool, also where it was made smaller since (the slider would refuse to draw)
    st.session_state["centroid_k"] = min(st.session_state.get("centroid_k", min(10, max(2, ds.n_classes))), top)
    k = st.slider("Clusters (k)", 2, top, key="centroid_k")


    features, what = embedding_if_here(cfg, ds)
    if what != "pixels" and st.toggle(f"Cluster the {what} (Model page)", value=True, key="centroids_on_embedding",
                                      help="k-means on the embedding the model reads; each cluster is drawn as "
                                           "its image nearest the centre."):
        st.caption(f"Clusters of the {what}: each drawn as its member nearest the centre.")
        images, sizes, majority, purity = centroids(cfg.data_key(), k, ds, features_of(cfg), features)
    else:
        images, sizes, majority, purity = centroids(cfg.data_key(), k, ds)
    short = caption_names(ds.class_names)
    show_gallery(images, [f"{n} images, mostly\u00a0{short[m]}\u00a0({p:.0%})" for n, m, p in zip(sizes, majority, purity)])


page()
