"""Download buttons for the labels a run has (alcore.results.labels): a CSV of every label and
a .zip of the labelled images, one folder per class. Both are built when clicked (deferred downloads)."""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import streamlit as st

from alcore.data.datasets import Dataset
from alcore.results.labels import label_rows, labels_csv, labels_zip
from alcore.results.records import RunResult
from dashboard.display import plain

ZIP_HELP = ("PNG files of the labelled images as the dataset holds them (scaled to its image size), in one "
            "folder per class: `keras.utils.image_dataset_from_directory` reads it back, and so does the Dataset "
            "page's upload.")
CSV_HELP = ("One row per labelled pool image: pool index, file name (for your own images), label, source "
            "(person, simulated, or auto for pseudo-labels), kind, round, and when and in how many seconds a "
            "person gave it.")


def export_buttons(result: RunResult, dataset: Dataset, stem: str, key: str,
                   pseudo: Optional[tuple[Sequence[int], Sequence[int]]] = None) -> None:
    """Two download buttons side by side: the labels as CSV, the labelled images as a zip."""
    try:
        rows = label_rows(result, dataset, pseudo)
    except ValueError as e:
        st.caption(f"The labels cannot be exported: {plain(e)}")
        return
    with st.container(horizontal=True, gap="small", key=f"{key}_export"):
        st.download_button(f"Labels (CSV, {len(rows):,} rows)", functools.partial(labels_csv, rows),
                           f"{stem}_labels.csv", "text/csv",
                           on_click="ignore", key=f"{key}_csv", icon=":material/table:", help=CSV_HELP)
        st.download_button("Labelled images (.zip, a folder per class)", functools.partial(labels_zip, rows, dataset),
                           f"{stem}_labels.zip", "application/zip", on_click="ignore", key=f"{key}_zip",
                           icon=":material/folder_zip:", help=ZIP_HELP)
