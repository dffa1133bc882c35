"""Uploads: a dataset's .npz or .zip of images, checked in memory and then kept in this
session's own folder on the server (alcore.serve.uploads), the data file a result file was made
on asked for again by its fingerprint, and result files loaded or refused.

Every page that takes result files (Run, Be the oracle, Replay, Compare) draws its uploader
with result_uploads(): each file is loaded with alcore.results.records.load_result (which
checks everything and names the file in its message), and a file that cannot be used is
refused in one wording, right under the uploader.

A result file never leads the dashboard to a path: one made on a user's file names it by its
name and SHA-256 (alcore.results.records.without_server_paths, what every download goes
through), and local_data() finds this session's upload with that fingerprint or asks for it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import streamlit as st

from alcore import ExperimentConfig
from alcore.config import FILE_DATASETS
from alcore.results.records import ResultFileError, RunResult, load_result, to_json, without_server_paths
from alcore.serve.uploads import SessionUploads, UploadRefused, UploadStore, fingerprint_in_path, sha256_of, shown_name
from dashboard.display import plain

UPLOADS = "uploads"  # st.session_state: this session's SessionUploads
UPLOAD_MEMO = "upload_memo"  # st.session_state: {uploader file id: its sha256, or why it was refused}
# the roles of a session's uploads (one file each)
DATASET, RESULT_DATA, EMBEDDINGS = "dataset", "result data", "embeddings"


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


def upload_root() -> Path:
    return Path(tempfile.gettempdir()) / "alcore-uploads"


@st.cache_resource(show_spinner=False)
def _store(root: str, max_mb: int | None) -> UploadStore:
    # One store for every session of this process (it holds the lock they sweep and evict
    # under); made on the server's first upload-related call, which sweeps what earlier
    # processes left.
    store = UploadStore(root, max_bytes=None if max_mb is None else max_mb * 2**20)
    store.sweep()
    return store


def upload_store() -> UploadStore:
    from dashboard.limits import deployment_limits

    return _store(str(upload_root()), deployment_limits().max_uploads_mb)


def session_uploads() -> SessionUploads:
    """This browser session's uploads (made on first use; removed with the session's state)."""
    mine = st.session_state.get(UPLOADS)
    if mine is None or mine.store.root != upload_root():
        mine = st.session_state[UPLOADS] = SessionUploads(upload_store())
    return mine


def session_folder() -> Path:
    """The one folder this session's configs may name a data_file in without server paths."""
    return session_uploads().folder


def keep_upload(up, suffix: str, role: str = DATASET, where=None, expect: str | None = None,
                what: str = "data") -> str | None:
    """Keep a file the uploader holds (checked first, once per upload: nothing is written for a
    refused one) as this session's ``role`` file; its path, or None after refusing it right
    under the uploader (in ``where``). ``expect``: the SHA-256 it must have; ``what``: "data", or
    "embeddings" for a .npz of embeddings."""
    from dashboard.limits import deployment_limits

    memo = st.session_state.setdefault(UPLOAD_MEMO, {})
    known = memo.get(up.file_id)
    if known is not None and not known.startswith("sha256:"):
        refuse(known, where)
        return None
    data = up.getvalue()
    digest = known[7:] if known else sha256_of(data)
    try:
        if expect and digest != expect:
            raise UploadRefused(f"{shown_name(up.name)} is not the file that was asked for: its SHA-256 differs "
                                f"({digest[:12]}... against {expect[:12]}...)")
        path = session_uploads().keep(data, up.name, suffix, role, deployment_limits(), sha256=digest,
                                      checked=known is not None, what=what)
    except UploadRefused as e:
        if not expect:  # a file refused for this request may be another request's
            memo[up.file_id] = str(e)
        refuse(e, where)
        return None
    memo[up.file_id] = "sha256:" + digest
    while len(memo) > 8:
        memo.pop(next(iter(memo)))
    return str(path)


def download_json(result: RunResult) -> str:
    """A result file as a visitor downloads it: no path of the server in it."""
    return to_json(without_server_paths(result))


def local_data(config: ExperimentConfig, sha256: str | None, key: str, what: str) -> ExperimentConfig | None:
    """``config`` with the data it was made on as this session may read it, where that is a
    user's file: this session's upload with the fingerprint ``sha256``, else (after asking for
    it) none. A path in ``config`` is never read unless this server allows server paths.
    ``what``: the run or race, for the request ("margin (seed 0)")."""
    from dashboard.limits import deployment_limits

    if config.data_dir and not deployment_limits().allow_server_paths:
        config = config.replace(data_dir=None)  # a folder of the machine that made it: this server's data instead
    if config.dataset not in FILE_DATASETS or not config.data_file:
        return config
    mine = session_uploads()
    sha256 = sha256 or fingerprint_in_path(config.data_file, upload_root())
    held = mine.find(sha256)
    if held is not None:
        return config.replace(data_file=str(held))
    if deployment_limits().allow_server_paths and os.path.exists(config.data_file) \
            and not Path(config.data_file).resolve().is_relative_to(upload_root().resolve()):
        return config  # a local run reads the user's own files (their fingerprints are compared on use)
    suffix = ".npz" if config.dataset == "npz" else ".zip"
    name = shown_name(config.data_file)
    with st.container(border=True):
        if sha256:
            st.info(f"{plain(what)} was made on the file **{plain(name)}**, which this session has not uploaded. "
                    f"Upload it to see its images: it is checked to be that file by its SHA-256 ({sha256[:12]}...).",
                    icon=":material/upload_file:")
        else:
            st.info(f"{plain(what)} was made on **{plain(name)}**, named by a path on the machine that made it, "
                    f"which the dashboard does not read. Upload the file to see its images (this older result "
                    f"file has no fingerprint to check it against).", icon=":material/upload_file:")
        up = st.file_uploader(f"{name}", type=[suffix[1:]], key=key, max_upload_size=upload_mb(suffix[1:]))
        path = None if up is None else keep_upload(up, suffix, RESULT_DATA, expect=sha256)
    return None if path is None else config.replace(data_file=path)


def results_on_local_data(results: list[RunResult], key: str) -> list[RunResult] | None:
    """The runs of result files of one race, each with the data it was made on as this session
    may read it (:func:`local_data`, asked for once for all); None while that is missing, or
    (said) when the files were made on different data files."""
    if not results:
        return []
    first = results[0]
    if len({r.dataset.file_sha256 for r in results}) > 1:
        refuse(f"{first.label} and the other files were made on different data files: open the files of one race")
        return None
    here = local_data(first.config, first.dataset.file_sha256, key, first.label)
    if here is None:
        return None
    return [r if r.config.data_file == here.data_file and r.config.data_dir == here.data_dir else
            r.model_copy(update={"config": r.config.replace(data_file=here.data_file, data_dir=here.data_dir)})
            for r in results]


def image_zip_upload(cfg, values: dict):
    """The .zip-of-images uploader and the image size: (whether there is a zip to load, a
    placeholder right under the uploader for :func:`show_image_report`). Fills ``values``."""
    from dashboard.limits import deployment_limits
    from dashboard.widgets import number

    up = st.file_uploader("Your images: a .zip with one folder per class, or the images and a labels.csv "
                          "(file name, label)", type=["zip"], max_upload_size=upload_mb("zip"))
    slot = st.empty()
    st.caption(upload_limits_caption("zip") + " Inside it: " + ", ".join(deployment_limits().image_limits().describe()) + ".")
    values["image_size"] = number("image_size", step=8)
    if up is not None:
        path = keep_upload(up, ".zip", where=slot)
        if path is None:
            return False, slot
        values["data_file"] = path
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
        digest = sha256_of(data)
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
