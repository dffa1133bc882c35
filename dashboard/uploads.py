"""Uploads: a dataset's .npz or .zip of images kept on disk (the zip's uploader, with what its
loader found and skipped), and result files loaded or refused.

Every page that takes result files (Run, Be the oracle, Replay, Compare) draws its uploader
with result_uploads(): each file is loaded with alcore.results.records.load_result (which
checks everything and names the file in its message), and a file that cannot be used is
refused in one wording, right under the uploader.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import streamlit as st

from alcore.results.records import ResultFileError, RunResult, load_result
from dashboard.display import plain



# What each uploader says it takes ("16MB per file") is what this server takes. Streamlit refuses
# any upload over server.maxUploadSize (.streamlit/config.toml) whatever a widget says, so no
# widget states more than that; below it, each kind has this deployment's own limit.
def server_upload_mb() -> int:
    return int(st.get_option("server.maxUploadSize"))


def upload_mb(kind: str) -> int:
    """The most megabytes an uploader of ``kind`` ("result", "npz", "zip") takes on this server."""
    from dashboard.limits import deployment_limits

    limits, top = deployment_limits(), server_upload_mb()
    own = {"result": limits.max_result_mb, "npz": limits.max_file_mb, "zip": None}[kind]
    return top if own is None else max(1, min(own, top))


def upload_limits_caption(kind: str) -> str:
    """The limits an upload of ``kind`` is held to on this server, in a sentence."""
    from dashboard.limits import deployment_limits

    limits, mb = deployment_limits(), upload_mb(kind)
    if kind == "result":
        return (f"At most {mb:,} MB of result files at once on this server." if limits.max_result_mb is not None
                else f"At most {mb:,} MB per file on this server.")
    if kind == "npz":
        return f"At most {mb:,} MB per file" + (f", with arrays that unpack to at most {limits.max_file_mb:,} MB"
                                                  if limits.max_file_mb is not None else "") + ", on this server."
    return f"At most {mb:,} MB per .zip on this server."


def upload_dir() -> Path:
    return Path(tempfile.gettempdir()) / "alcore-uploads"


def save_upload(data: bytes, name: str, suffix: str = ".npz") -> str:
    """Keep an uploaded .npz (or .zip of images) under a name derived from its content, so identical
    uploads share one cache entry. A .npz is only ever read with allow_pickle=False."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = upload_dir()
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}-{Path(name).stem[:40]}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def image_zip_upload(cfg, values: dict):
    """The .zip-of-images uploader and the image size: (whether there is a zip to load, a
    placeholder right under the uploader for :func:`show_image_report`). Fills ``values``."""
    from alcore.data.images import ImageLimits
    from dashboard.widgets import number

    up = st.file_uploader("Your images: a .zip with one folder per class, or the images and a labels.csv "
                          "(file name, label)", type=["zip"], max_upload_size=upload_mb("zip"))
    slot = st.empty()
    st.caption(upload_limits_caption("zip") + " Inside it: " + ", ".join(ImageLimits().describe()) + ".")
    values["image_size"] = number("image_size", step=8)
    if up is not None:
        values["data_file"] = save_upload(up.getvalue(), up.name, ".zip")
    elif cfg.data_file is None or not cfg.data_file.endswith(".zip"):
        st.info("Upload a .zip of JPEG, PNG, BMP or WebP images.")
        return False, slot
    return True, slot


def show_image_report(cfg, slot) -> None:
    """In ``slot``: the layout the images loader found and the files it skipped, from the load
    just made (remembered by alcore.data.images, so the zip is not decoded a second time)."""
    from alcore.data.images import load_report

    report = load_report(cfg.data_file, cfg.image_size) if cfg.dataset == "images" and cfg.data_file else None
    if slot is None or report is None:
        return
    layout, skipped = report
    with slot.container():
        st.caption(f"Layout: {plain(layout)}")
        if skipped:
            st.warning("**Files skipped** (the other images loaded):\n\n"
                       + "\n".join(f"- {plain(s)}" for s in skipped), icon=":material/warning:")


def refuse(reason, where=None) -> None:
    """Why a file (or what was asked of it) cannot be used, as every upload says it."""
    (where or st).error(f"Refused: {plain(reason)}", icon=":material/block:")


class ResultUploads(NamedTuple):
    runs: list[RunResult]  # the files that loaded, in upload order
    names: list[str]  # their file names
    refused: int  # how many were refused (each said why under the uploader)
    uploaded: int  # how many files the uploader holds, duplicates included


def result_uploads(label: str, key: str, *, multiple: bool = True,
                   check: Callable[[RunResult, str], None] | None = None,
                   on_change: Callable[[], None] | None = None) -> ResultUploads:
    """A result-file uploader and what it holds: each file loaded, checked by ``check(run,
    file name)`` where given (it raises ResultFileError to refuse), or refused right under the
    uploader. A file uploaded twice loads once."""
    got = st.file_uploader(label, type=["json"], accept_multiple_files=multiple, max_upload_size=upload_mb("result"),
                           key=key, on_change=on_change, help=upload_limits_caption("result"))
    files = list(got or []) if multiple else [got] if got is not None else []
    out, seen = ResultUploads([], [], 0, len(files)), {}
    refused = 0
    from dashboard.limits import deployment_limits

    too_big = deployment_limits().upload_problems([(up.name, up.size) for up in files])
    for up, refusal in zip(files, too_big):
        if refusal:  # by its size, before parsing: parsing costs many times a file's size
            refuse(refusal + ".")
            refused += 1
            continue
        data = up.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            st.warning(f"{plain(up.name)} is the same file as {plain(seen[digest])}: loaded once.")
            continue
        seen[digest] = up.name
        try:
            run = load_result(data, name=up.name)
            if check is not None:
                check(run, up.name)
        except ResultFileError as e:
            refuse(e)
            refused += 1
            continue
        out.runs.append(run)
        out.names.append(up.name)
    return out._replace(refused=refused)
