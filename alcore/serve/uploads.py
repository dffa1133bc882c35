"""Data files visitors upload to a server (a ``.npz``, a ``.zip`` of images): checked in memory
before anything is written, kept in a folder of the browser session's own, and removed again.

Layout: ``<root>/<session id>/<sha256 of the file>/<the file's name>``. The session id is a
random token that lives only in that session's state, so no other session can name the
folder; the content hash names the file in result files instead of its path (see
:func:`alcore.results.records.without_server_paths`), and the file's own name keeps the
dataset's source readable ("npz file pets.npz").

Nothing is written before :func:`check_upload` passes: a refused upload leaves nothing on disk.
A file is removed when its session replaces it, when the session ends (:class:`SessionUploads`
removes its folder when Streamlit drops the session's state, a few minutes after its tab
closes), when its session has not used it for ``max_age_s`` (:meth:`UploadStore.sweep`, at
start and at every upload), and, least recently used first, when all uploads together would
pass the store's byte cap. Temporary files of writes that were killed go after an hour.

No Streamlit here: the dashboard keeps a :class:`SessionUploads` in each session's state.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import threading
import time
import weakref
from pathlib import Path
from typing import Optional

from alcore.results.records import STALE_TEMP_S, TEMP_SUFFIX, atomic_write
from alcore.serve.limits import MB, DeploymentLimits

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_AGE_S = 12 * 3600.0  # an upload its session has not used for this long is removed
SUFFIXES = (".npz", ".zip")
_NAME_CHARS = re.compile(r"[^\w .,()+@=-]")  # what a kept file's name may hold (\w: letters, digits, _)
MAX_NAME = 100


class UploadRefused(ValueError):
    """An upload this server does not keep; the message names the file and the problem."""


def check_upload(data: bytes, name: str, suffix: str, limits: DeploymentLimits, what: str = "data") -> None:
    """Refuse (:class:`UploadRefused`) what can be known to be unusable from the bytes alone,
    before they are written anywhere: a ``.npz`` that is not one (its .npy headers), or whose
    arrays unpack over ``max_file_mb`` or hold more than ``max_classes`` classes; a ``.zip``
    that is not a zip, is over the image loader's limits or holds no image file; either over
    ``max_uploads_mb``. ``what``: "data" (a dataset), or "embeddings" (a ``.npz`` of embeddings:
    its ``train`` / ``test`` headers, unpacking to at most ``max_file_mb``)."""
    from alcore.data.datasets import EMBEDDING_NPZ_KINDS, DatasetFileError, npz_headers
    from alcore.data.images import check_image_zip
    from alcore.serve.resources import npz_file_bytes, npz_shape

    where = shown_name(name)
    if suffix not in SUFFIXES or (what == "embeddings" and suffix != ".npz"):
        raise UploadRefused(f"{where}: " + ("embeddings are a .npz file" if what == "embeddings"
                                            else "a data file is a .npz or a .zip of images"))
    if limits.max_uploads_mb is not None and len(data) > limits.max_uploads_mb * MB:
        raise UploadRefused(f"{where} is {len(data) / MB:,.0f} MB; this server keeps at most "
                            f"{limits.max_uploads_mb:,} MB of uploads")
    try:
        if what == "embeddings":
            nbytes = npz_file_bytes(npz_headers(data, where, kinds=EMBEDDING_NPZ_KINDS, required=("train",)))
            if limits.max_file_mb is not None and nbytes > limits.max_file_mb * MB:
                raise UploadRefused(f"{where}: its arrays unpack to {nbytes / MB:,.0f} MB; this server allows "
                                    f"at most {limits.max_file_mb:,} MB")
        elif suffix == ".npz":
            problems = limits.file_problems(npz_shape(data, where))
            if problems:
                raise UploadRefused(f"{where}: {problems[0]}")
        else:
            check_image_zip(data, where, limits=limits.image_limits())
    except DatasetFileError as e:
        raise UploadRefused(str(e)) from e


def shown_name(name: str) -> str:
    """An uploaded file's name as it is kept and shown: no folders, only plain characters."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _NAME_CHARS.sub("_", base).strip(" .")
    return base[-MAX_NAME:] or "upload"


def kept_name(name: str, suffix: str) -> str:
    base = shown_name(name)
    return base if base.lower().endswith(suffix) else base + suffix


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint_in_path(path: Optional[str], root: Path) -> Optional[str]:
    """The SHA-256 a kept upload's path names (``<root>/<session>/<sha256>/<name>``), else None."""
    if not path:
        return None
    p = Path(path)
    try:
        inside = p.parent.parent.parent.resolve() == Path(root).resolve()
    except (OSError, ValueError):
        return None
    return p.parent.name if inside and SHA256.fullmatch(p.parent.name) else None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass


def _size(folder: Path) -> int:
    total = 0
    for base, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(base, f)).st_size
            except OSError:
                continue
    return total


class UploadStore:
    """Every session's uploads under one folder, within an age and a byte cap (see the module)."""

    def __init__(self, root: str | os.PathLike, *, max_age_s: float = MAX_AGE_S, max_bytes: Optional[int] = None):
        self.root = Path(root)
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # one store per server process: sessions sweep and evict in turn

    def folder(self, session: str) -> Path:
        if not SESSION_ID.fullmatch(session):
            raise ValueError("not an upload session id")
        return self.root / session

    def total_bytes(self) -> int:
        return _size(self.root) if self.root.is_dir() else 0

    def sweep(self, now: Optional[float] = None, keep: Optional[str] = None) -> list[str]:
        """Remove sessions' folders not used for ``max_age_s``, temporary files of killed writes
        older than an hour, and anything else at the top of the store an hour old (the files of
        versions that kept every upload there). Returns the names removed."""
        now = time.time() if now is None else now
        removed = []
        with self._lock:
            try:
                entries = list(self.root.iterdir())
            except OSError:
                return removed
            for entry in entries:
                try:
                    age = now - entry.lstat().st_mtime
                except OSError:
                    continue
                session = entry.is_dir() and not entry.is_symlink() and SESSION_ID.fullmatch(entry.name)
                if entry.name == keep:
                    continue
                if (age > self.max_age_s) if session else (age > STALE_TEMP_S):
                    _remove(entry)
                    removed.append(entry.name)
                elif session:
                    removed += [p.name for p in self._clean_temp(entry, now)]
        return removed

    @staticmethod
    def _clean_temp(folder: Path, now: float) -> list[Path]:
        gone = []
        for base, _, files in os.walk(folder):
            for f in files:
                path = Path(base) / f
                try:
                    if f.endswith(TEMP_SUFFIX) and now - path.lstat().st_mtime > STALE_TEMP_S:
                        path.unlink()
                        gone.append(path)
                except OSError:
                    continue
        return gone

    def make_room(self, nbytes: int, keep: str) -> bool:
        """Remove the least recently used other sessions' folders until ``nbytes`` more fit
        under the cap; False when they cannot (the file alone is over it)."""
        if self.max_bytes is None:
            return True
        if nbytes > self.max_bytes:
            return False
        with self._lock:
            others = []
            try:
                entries = list(self.root.iterdir())
            except OSError:
                entries = []
            total = 0
            for entry in entries:
                size = _size(entry) if entry.is_dir() else (entry.lstat().st_size if entry.exists() else 0)
                total += size
                if entry.name != keep:
                    try:
                        others.append((entry.lstat().st_mtime, size, entry))
                    except OSError:
                        continue
            for _, size, entry in sorted(others, key=lambda t: t[0]):
                if total + nbytes <= self.max_bytes:
                    break
                _remove(entry)
                total -= size
            return total + nbytes <= self.max_bytes


class SessionUploads:
    """One browser session's uploads: a folder named by a fresh random id, a file per role (the
    Dataset page's dataset, the data a result file was made on), and the folder's removal when
    this object is dropped with the session's state or :meth:`close` is called."""

    def __init__(self, store: UploadStore):
        self.store = store
        self.session = secrets.token_urlsafe(16)
        self.folder = store.folder(self.session)
        self.roles: dict[str, str] = {}  # role -> sha256 of the file it holds
        self._end = weakref.finalize(self, shutil.rmtree, str(self.folder), True)

    def close(self) -> None:
        self._end()

    def touch(self) -> None:
        """Mark the folder used now (the sweep removes folders by their last use)."""
        try:
            os.utime(self.folder)
        except OSError:
            pass

    def find(self, sha256: Optional[str]) -> Optional[Path]:
        """The kept file with this content, if this session has it."""
        if not sha256 or not SHA256.fullmatch(sha256):
            return None
        folder = self.folder / sha256
        try:
            files = [p for p in folder.iterdir() if p.is_file() and not p.name.endswith(TEMP_SUFFIX)]
        except OSError:
            return None
        if files:
            self.touch()
        return files[0] if files else None

    def holds(self, path: Optional[str]) -> bool:
        """Whether ``path`` is one of this session's kept files."""
        sha = fingerprint_in_path(path, self.store.root)
        return sha is not None and Path(path).parent.parent == self.folder and self.find(sha) == Path(path)

    def keep(self, data: bytes, name: str, suffix: str, role: str, limits: DeploymentLimits,
             sha256: Optional[str] = None, checked: bool = False, what: str = "data") -> Path:
        """Check the upload (unless ``checked``; ``what``: as for :func:`check_upload`), then keep
        it as ``role``'s file: the file that role held before is removed (where no other role
        holds it). Raises :class:`UploadRefused`."""
        sha256 = sha256 or sha256_of(data)
        path = self.find(sha256)
        if path is None:
            if not checked:
                check_upload(data, name, suffix, limits, what)
            self.store.sweep(keep=self.session)
            if not self.store.make_room(len(data), keep=self.session):
                raise UploadRefused(f"{shown_name(name)} is {len(data) / MB:,.0f} MB; this server keeps at most "
                                    f"{self.store.max_bytes / MB:,.0f} MB of uploads")
            path = atomic_write(self.folder / sha256 / kept_name(name, suffix), data)
            self.touch()
        self._hold(role, sha256)
        return path

    def _hold(self, role: str, sha256: str) -> None:
        old = self.roles.get(role)
        self.roles[role] = sha256
        if old and old != sha256 and old not in self.roles.values():
            _remove(self.folder / old)
