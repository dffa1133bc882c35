"""The Model page's embedding section: what the model reads instead of pixels, uploaded, read
from the cache or computed on a click (a progress bar while the encoder trains), within this
server's limits. Kept in st.session_state per browser session."""
from __future__ import annotations

import streamlit as st

from dashboard.data import embedding_cache, embedding_progress
from dashboard.display import plain, show_problems
from dashboard.limits import deployment_limits, run_slot_for_one_call
from dashboard.uploads import EMBEDDINGS, keep_upload, upload_limits_caption, upload_mb

EMBEDDED = "embedded"  # this session's datasets with their embedding: {features_of: (dataset, report)}


def embedding_upload(cfg, values: dict) -> None:
    """The uploader of a .npz of embeddings (fills ``values['embedding_file']``)."""
    up = st.file_uploader("Your embeddings: a .npz with 'train' (one row per training image, in the "
                          "dataset's order) and 'test' (one row per test image)", type=["npz"],
                          max_upload_size=upload_mb("npz"), help=upload_limits_caption("npz"))
    if up is not None:
        values["embedding_file"] = keep_upload(up, ".npz", role=EMBEDDINGS, what="embeddings")
    elif cfg.embedding_file is None:
        st.info("Upload a .npz of embeddings.")


def show_embedding(cfg, ds):
    """The Embedding section: what the model reads, read from the cache or computed on a click
    (a progress bar while the encoder trains), within this server's limits. The dataset with the
    embedding, or None while it is not computed."""
    from alcore.data.datasets import DatasetUnavailableError
    from alcore.engine.embeddings import cached, compute_embeddings, features_of

    st.subheader("Embedding")
    key = (cfg.data_key(), features_of(cfg))
    done = st.session_state.setdefault(EMBEDDED, {})
    if key in done:
        ds_e, report = done[key]
        st.success(report.text(), icon=":material/check_circle:")
        return ds_e
    if problems := deployment_limits().embedding_problems(cfg, ds.image_shape):
        show_problems(problems)
        return None
    try:
        record = cached(ds, cfg, embedding_cache())
    except OSError:
        record = None
    if cfg.embedding == "self_supervised" and record is None:
        st.write(f"A small CNN is trained on the {len(ds.y_pool):,} unlabeled pool images (SimCLR: two augmented "
                 f"views of each image pulled together, every other image pushed away; no label is read), for "
                 f"{cfg.encoder_steps:,} steps. Its embeddings are kept on this server, so every later race and "
                 f"every other session on this pool reads them at once.")
    elif cfg.embedding == "pretrained" and record is None:
        st.write(f"Every pool and test image goes once through the frozen {cfg.backbone} backbone; the features "
                 f"are kept on this server for every later race.")
    if record is None and cfg.embedding != "file" and not st.button("Compute the embeddings", type="primary"):
        st.caption("The race's first round also computes them (with the same progress bar) where they are not here yet.")
        return None
    progress, bar = embedding_progress()
    with run_slot_for_one_call() as ok:
        if not ok:
            return None
        try:
            with st.spinner("Computing the embeddings..." if record is None else "Reading the embeddings..."):
                ds_e, report = compute_embeddings(ds, cfg, cache=embedding_cache(), progress=progress)
        except DatasetUnavailableError as e:
            st.error(f"**These embeddings are not available here.** {plain(e)}", icon=":material/cloud_off:")
            return None
        except ValueError as e:  # a file of embeddings that does not fit the dataset
            st.error(f"**The embeddings cannot be used:** {plain(e)}", icon=":material/warning:")
            return None
        finally:
            bar.empty()
    done.clear()  # one embedded dataset per session: each holds a copy of the embedding
    done[key] = (ds_e, report)
    st.success(report.text(), icon=":material/check_circle:")
    return ds_e
