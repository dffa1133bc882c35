"""Uploads: a dataset's .npz kept on disk, and result files loaded or refused.

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

MAX_RESULT_MB = 64


def upload_dir() -> Path:
    return Path(tempfile.gettempdir()) / "alcore-uploads"


def save_upload(data: bytes, name: str) -> str:
    """Keep an uploaded .npz under a name derived from its content, so identical
    uploads share one cache entry. The file is only ever read with allow_pickle=False."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = upload_dir()
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}-{Path(name).stem[:40]}.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def refuse(reason, where=None) -> None:
    """Why a file (or what was asked of it) cannot be used, as every upload says it."""
    (where or st).error(f"Refused: {plain(reason)}", icon=":material/block:")


class ResultUploads(NamedTuple):
    runs: list[RunResult]  # the files that loaded, in upload order
    names: list[str]  # their file names
    refused: int  # how many were refused (each said why under the uploader)
    uploaded: int  # how many files the uploader holds, duplicates included


def result_uploads(label: str, key: str, *, multiple: bool = True,
                   check: Callable[[RunResult, str], None] | None = None) -> ResultUploads:
    """A result-file uploader and what it holds: each file loaded, checked by ``check(run,
    file name)`` where given (it raises ResultFileError to refuse), or refused right under the
    uploader. A file uploaded twice loads once."""
    got = st.file_uploader(label, type=["json"], accept_multiple_files=multiple, max_upload_size=MAX_RESULT_MB,
                           key=key)
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
