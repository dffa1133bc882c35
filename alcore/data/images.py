"""A user's own images: a ``.zip`` of image files (or, where the deployment allows server
paths, a folder of them) turned into :class:`alcore.data.datasets.RawData`.

Three layouts, detected from the names and stated in :attr:`ImageSet.layout`:

- **one folder per class** (what ``keras.utils.image_dataset_from_directory`` reads):
  ``cat/1.jpg``, ``dog/2.png``; the class names are the folder names, sorted;
- **a labels CSV**: the images anywhere and one ``.csv`` at the top with a file name and a
  label per row (a header row such as ``filename,label`` is optional); the class names are
  the labels, sorted (numerically when they are all whole numbers);
- **no labels**: the images alone; every label is -1 and :attr:`ImageSet.labeled` is False.
  A simulated run needs labels and refuses such a set (:func:`require_labels`).

A single folder holding everything (``flowers/daisy/1.jpg``) is looked through. A top-level
``test`` folder is the test split; ``train``, ``val``, ``valid`` and ``validation`` folders are
the training split. Without a ``test`` folder, :func:`alcore.data.datasets.prepare` holds out a
test split drawn from the seed, as for every dataset without one.

Images (JPEG, PNG, BMP, WebP; grayscale or colour; any size) are decoded with Pillow, turned
upright by their EXIF orientation, scaled so their longer side is ``image_size`` pixels
(keeping the aspect ratio) and centred on a square filled with their border colour (the median
colour of the scaled image's outermost pixels): nothing is cropped, and an object on a plain
background keeps its background. Transparent pixels become white. The set is colour (RGB)
when any image is colour, grayscale images converted to RGB then; else one channel.

Safety: nothing is extracted to disk. Members are read into memory one at a time after the
limits below were checked against what the archive declares: the number of members and the
total unpacked bytes are checked before any is read (a zip bomb is refused by its declared
sizes or its compression ratio, and zipfile never unpacks more than a member declares);
an image's pixel count is read from its header before it is decoded. A member that is a
symbolic link, has an absolute or ``..`` path, is encrypted, is not an image or cannot be
decoded is skipped and listed (:attr:`ImageSet.skipped`); the other images still load.
Only the four formats above are ever handed to a decoder.
"""
from __future__ import annotations

import csv
import io
import os
import stat
import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

import numpy as np

from alcore.data.datasets import (MAX_ELEMENTS, DatasetFileError, RawData, check_class_names, regular_file,
                                   sha256_of_file)

# -- limits (each named in the message that refuses something over it) -------------------
MAX_MEMBERS = 60_000  # files in the archive or folder: CIFAR-10 as PNG files is 60 000
MAX_TOTAL_BYTES = 2 * 1024**3  # what all members unpack to together (declared sizes)
MAX_MEMBER_BYTES = 64 * 1024**2  # one member unpacked
MAX_COMPRESSION_RATIO = 200  # unpacked / packed size of one member over MIN_RATIO_CHECK_BYTES
MIN_RATIO_CHECK_BYTES = 1024**2  # smaller members may compress as well as they like
MAX_IMAGE_PIXELS = 50_000_000  # one image (width x height) as its header declares: a 50 MP photo
MAX_TOTAL_PIXELS = 2_000_000_000  # all images together before scaling: bounds decoding time
MAX_CSV_BYTES = 16 * 1024**2  # the labels CSV
MAX_SKIPPED_NAMED = 20  # skipped files named one by one; the rest are counted

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
PIL_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")  # the only decoders Pillow may use
TEST_FOLDERS = ("test",)
TRAIN_FOLDERS = ("train", "training", "val", "valid", "validation")
# What operating systems add to archives and folders: ignored without a word.
_JUNK_DIRS = ("__MACOSX",)
_JUNK_FILES = (".ds_store", "thumbs.db", "desktop.ini")
_UNLABELED = -1
# What zipfile raises on a damaged, forged or encrypted member, and a file that vanished from a folder.
_READ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class ImageLimits:
    """The limits a load is held to (the module constants by default; a deployment may lower them)."""

    max_members: int = MAX_MEMBERS
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_member_bytes: int = MAX_MEMBER_BYTES
    max_compression_ratio: float = MAX_COMPRESSION_RATIO
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_total_pixels: int = MAX_TOTAL_PIXELS

    def describe(self) -> list[str]:
        unpacked = (f"{self.max_total_bytes / 2**30:g} GiB" if self.max_total_bytes >= 2**30
                    else f"{self.max_total_bytes / 2**20:g} MiB")
        return [f"{self.max_members:,} files", f"{unpacked} unpacked in all",
                f"{self.max_member_bytes / 2**20:g} MiB per file",
                f"compression ratio {self.max_compression_ratio:g} per file",
                f"{self.max_image_pixels:,} pixels per image", f"{self.max_total_pixels:,} pixels in all"]


@dataclass(frozen=True)
class ImageSet:
    """What :func:`load_images` read: the arrays, the layout it found, what it skipped."""

    raw: RawData
    layout: str  # "folders", "csv" or "unlabeled"
    layout_text: str  # the layout in words
    labeled: bool
    colour: bool
    test_folder: bool  # the test split came from a 'test' folder
    skipped: tuple[str, ...] = ()  # "name: why", at most MAX_SKIPPED_NAMED
    n_skipped: int = 0

    def skipped_text(self) -> list[str]:
        """The skipped files, the first ones named, then how many more."""
        more = self.n_skipped - len(self.skipped)
        return list(self.skipped) + ([f"... and {more} more file(s)"] if more > 0 else [])


@dataclass
class _Member:
    name: str  # as stored (for messages)
    parts: tuple[str, ...]  # the path inside the archive, split
    size: int
    read: Callable[[], bytes] = field(repr=False)


class _Skips:
    def __init__(self):
        self.named: list[str] = []
        self.count = 0

    def add(self, name: str, why: str) -> None:
        self.count += 1
        if len(self.named) < MAX_SKIPPED_NAMED:
            self.named.append(f"{_short(name)}: {why}")


def _short(name: str, n: int = 120) -> str:
    name = "".join(c if c.isprintable() else "?" for c in name)
    return name if len(name) <= n else name[: n - 3] + "..."


# ----------------------------------------------------------------------- members: zip

def _zip_declared_entries(f) -> Optional[int]:
    """The entry count a zip's end-of-central-directory record declares (zip64 too), read
    before :mod:`zipfile` parses a central directory that may list millions of entries."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count = struct.unpack("<H", tail[at + 10: at + 12])[0]
    if count != 0xFFFF or at < 20 or tail[at - 20: at - 16] != b"PK\x06\x07":
        return count
    offset = struct.unpack("<Q", tail[at - 12: at - 4])[0]  # zip64 end record
    if offset + 56 > size:
        return None
    f.seek(offset)
    record = f.read(56)
    return struct.unpack("<Q", record[32:40])[0] if record[:4] == b"PK\x06\x06" else None


def _zip_problem(info: zipfile.ZipInfo, lim: ImageLimits) -> Optional[str]:
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        return "a symbolic link, not read"
    if info.flag_bits & 0x1:
        return "encrypted, not read"
    if info.file_size > lim.max_member_bytes:
        return (f"unpacks to {info.file_size:,} bytes, over the limit of {lim.max_member_bytes:,} "
                f"per file (MAX_MEMBER_BYTES)")
    if (info.file_size > MIN_RATIO_CHECK_BYTES
            and info.file_size > lim.max_compression_ratio * max(info.compress_size, 1)):
        return (f"unpacks to {info.file_size:,} bytes from {info.compress_size:,}, a compression ratio "
                f"over the limit of {lim.max_compression_ratio:g} (MAX_COMPRESSION_RATIO): a zip bomb?")
    return None


def _zip_members(zf: zipfile.ZipFile, where: str, lim: ImageLimits, skips: _Skips) -> list[_Member]:
    infos = zf.infolist()
    if len(infos) > lim.max_members:
        raise DatasetFileError(f"{where}: {len(infos):,} files, over the limit of {lim.max_members:,} "
                               f"files per upload")
    total = sum(i.file_size for i in infos if not i.is_dir())
    if total > lim.max_total_bytes:
        raise DatasetFileError(f"{where}: its files unpack to {total:,} bytes in all, over the limit of "
                               f"{lim.max_total_bytes:,}")
    out = []
    for info in infos:
        if info.is_dir():
            continue
        parts = _safe_parts(info.filename, skips)
        if parts is None:
            continue
        why = _zip_problem(info, lim)
        if why:
            skips.add(info.filename, why)
            continue
        out.append(_Member(info.filename, parts, info.file_size, lambda info=info: _read_zip_member(zf, info)))
    return out


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with zf.open(info) as f:  # zipfile never unpacks more than info.file_size
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ValueError(f"holds {len(data):,} bytes where the archive declares {info.file_size:,}")
    return data


def _safe_parts(name: str, skips: _Skips) -> Optional[tuple[str, ...]]:
    """The path's parts, or None (skipped, or an operating system's clutter) when it may not be used."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        skips.add(name, "an absolute path, not read")
        return None
    parts = tuple(p for p in PurePosixPath(text).parts if p not in ("", "."))
    if ".." in parts:
        skips.add(name, "a path with '..' that leaves the archive, not read")
        return None
    if not parts or parts[0] in _JUNK_DIRS or parts[-1].lower() in _JUNK_FILES or parts[-1].startswith("._"):
        return None
    return parts


# -------------------------------------------------------------------- members: folder

def _folder_members(folder: Path, lim: ImageLimits, skips: _Skips) -> list[_Member]:
    out, total, seen = [], 0, 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for d in [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            skips.add(os.path.relpath(os.path.join(root, d), folder), "a symbolic link, not read")
            dirs.remove(d)
        for name in sorted(files):
            seen += 1
            if seen > lim.max_members:
                raise DatasetFileError(f"{folder}: more than {lim.max_members:,} files, over the limit "
                                       f"(MAX_MEMBERS)")
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            parts = _safe_parts(rel, skips)
            if parts is None:
                continue
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                skips.add(rel, "a symbolic link, not read" if stat.S_ISLNK(st.st_mode) else "not a regular file")
                continue
            if st.st_size > lim.max_member_bytes:
                skips.add(rel, f"{st.st_size:,} bytes, over the limit of {lim.max_member_bytes:,} per file "
                               f"(MAX_MEMBER_BYTES)")
                continue
            total += st.st_size
            if total > lim.max_total_bytes:
                raise DatasetFileError(f"{folder}: its files hold more than {lim.max_total_bytes:,} bytes, over "
                                       f"the limit (MAX_TOTAL_BYTES)")
            out.append(_Member(rel, parts, st.st_size, lambda path=path: Path(path).read_bytes()))
    return out


# ------------------------------------------------------------------------------ layout

def _strip_common_root(members: list[_Member]) -> list[_Member]:
    """Look through folders that hold everything (``flowers/daisy/1.jpg`` -> ``daisy/1.jpg``)."""
    while members and all(len(m.parts) > 1 for m in members) and len({m.parts[0] for m in members}) == 1:
        for m in members:
            m.parts = m.parts[1:]
    return members


def _split_of(parts: tuple[str, ...], has_test: bool) -> tuple[str, tuple[str, ...]]:
    """('train' | 'test', the path within its split)."""
    if len(parts) > 1 and has_test:
        top = parts[0].lower()
        if top in TEST_FOLDERS:
            return "test", parts[1:]
        if top in TRAIN_FOLDERS:
            return "train", parts[1:]
    return "train", parts


def _is_image(parts: tuple[str, ...]) -> bool:
    return parts[-1].lower().endswith(IMAGE_EXTENSIONS)


def _pick_csv(csvs: list[_Member], where: str) -> Optional[_Member]:
    top = [m for m in csvs if len(m.parts) == 1]
    if not top:
        return None
    if len(top) == 1:
        return top[0]
    named = [m for m in top if m.parts[0].lower() == "labels.csv"]
    if len(named) == 1:
        return named[0]
    raise DatasetFileError(f"{where}: {len(top)} CSV files at the top ({', '.join(_short(m.name, 40) for m in top[:5])}); "
                           f"keep one, or name the labels file labels.csv")


_NAME_HEADERS = {"filename", "file_name", "file", "image", "image_name", "path", "name", "id", "filepath"}
_LABEL_HEADERS = {"label", "labels", "class", "class_name", "category", "target", "y"}


def _read_labels_csv(member: _Member, where: str) -> dict[str, str]:
    """file name (as written, '/' separators) -> label, from a CSV of name, label rows."""
    if member.size > MAX_CSV_BYTES:
        raise DatasetFileError(f"{where}: {member.name} is {member.size:,} bytes, over the limit of "
                               f"{MAX_CSV_BYTES:,} for a labels CSV (MAX_CSV_BYTES)")
    try:
        text = member.read().decode("utf-8-sig", errors="replace")
    except _READ_ERRORS as e:
        raise DatasetFileError(f"{where}: {_short(member.name)} cannot be read from the archive "
                               f"({type(e).__name__}: {str(e)[:120]})") from e
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    if rows and (rows[0][0].strip().lower() in _NAME_HEADERS
                 or (len(rows[0]) > 1 and rows[0][1].strip().lower() in _LABEL_HEADERS)):
        rows = rows[1:]  # a header row
    labels = {}
    for no, row in enumerate(rows, 1):
        if len(row) < 2:
            raise DatasetFileError(f"{where}: {member.name}: row {no} has {len(row)} column(s); each row needs "
                                   f"a file name and a label")
        name = row[0].strip().replace("\\", "/")
        labels[name[2:] if name.startswith("./") else name] = row[1].strip()
    if not labels:
        raise DatasetFileError(f"{where}: {member.name} has no rows of file name and label")
    return labels


def _csv_label(labels: dict[str, str], rel: tuple[str, ...], full: tuple[str, ...],
               by_base: dict[str, Optional[str]]) -> Optional[str]:
    """The label of an image: its path in the CSV (from the top, or within its split), else its file
    name alone or without its extension (``id,label`` rows), when no other row has that name."""
    for key in ("/".join(full), "/".join(rel)):
        if key in labels:
            return labels[key]
    base = full[-1]
    return by_base.get(base) or by_base.get(base.rsplit(".", 1)[0])


def _class_order(labels) -> list[str]:
    names = sorted(set(labels))
    if all(n.isdigit() for n in names):
        names.sort(key=int)
    return names


# ------------------------------------------------------------------------------ pixels

def _to_rgb(im) -> np.ndarray:
    """A decoded Pillow image as (H, W, 3) uint8; transparency over white, 16-bit scaled down."""
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.asarray(im.convert("RGB"))


def _fit(im, size: int):
    """Scale so the longer side is ``size`` (aspect kept), centred on a square of the border colour."""
    from PIL import Image

    w, h = im.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    im = im.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0)
    if nw == nh:
        return np.asarray(im)
    a = np.asarray(im)
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).astype(np.float64)
    border = tuple(int(v) for v in np.median(edge, axis=0))
    canvas = Image.new("RGB", (size, size), border)
    canvas.paste(im, ((size - nw) // 2, (size - nh) // 2))
    return np.asarray(canvas)


class _Decoder:
    """Decodes members one at a time into a preallocated array, keeping the pixel totals."""

    def __init__(self, n: int, size: int, lim: ImageLimits, where: str):
        if n * size * size * 3 > MAX_ELEMENTS:
            raise DatasetFileError(f"{where}: {n:,} images of {size}x{size} colour pixels make "
                                   f"{n * size * size * 3:,} values, over the limit of {MAX_ELEMENTS:,} "
                                   f"(MAX_ELEMENTS): choose a smaller image_size")
        self.x = np.zeros((n, size, size, 3), np.uint8)
        self.colour = np.zeros(n, bool)
        self.size, self.lim, self.where = size, lim, where
        self.n = 0
        self.pixels = 0

    def add(self, member: _Member) -> Optional[str]:
        """Decode ``member`` into the next slot; why not, if it cannot be."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            data = member.read()
        except _READ_ERRORS as e:
            return f"cannot be read from the archive ({type(e).__name__}: {str(e)[:120]})"
        try:
            with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as im:  # reads the header only
                w, h = im.size
                if w * h > self.lim.max_image_pixels:
                    return (f"{w:,} x {h:,} pixels, over the limit of {self.lim.max_image_pixels:,} per image "
                            f"(MAX_IMAGE_PIXELS); not decoded")
                self.pixels += w * h
                if self.pixels > self.lim.max_total_pixels:
                    raise DatasetFileError(
                        f"{self.where}: the images up to {_short(member.name, 60)} hold {self.pixels:,} pixels, over "
                        f"the limit of {self.lim.max_total_pixels:,} in all")
                if im.format == "JPEG":
                    im.draft(None, (self.size, self.size))  # decode at a reduced scale: faster, less memory
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb = _fit(Image.fromarray(_to_rgb(im), "RGB"), self.size)
        except DatasetFileError:  # a ValueError, but about the whole set
            raise
        except Image.DecompressionBombError as e:
            return (f"over the limit of {self.lim.max_image_pixels:,} pixels per image (MAX_IMAGE_PIXELS); "
                    f"not decoded ({str(e)[:100]})")
        except UnidentifiedImageError:
            return "not a JPEG, PNG, BMP or WebP image"
        except (OSError, ValueError, SyntaxError, struct.error, EOFError, MemoryError) as e:
            return f"a damaged image ({type(e).__name__}: {str(e)[:120]})"
        self.x[self.n] = rgb
        self.colour[self.n] = not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))
        self.n += 1
        return None


# -------------------------------------------------------------------------------- load

def _open_members(path: str, lim: ImageLimits, skips: _Skips, stack) -> tuple[list[_Member], str]:
    where = os.path.basename(os.path.normpath(path)) or path
    if os.path.isdir(path):
        return _folder_members(Path(path), lim, skips), where
    where, _ = regular_file(path, "image zip")
    try:
        f = stack.enter_context(open(path, "rb"))
    except OSError as e:
        raise DatasetFileError(f"{where}: cannot be read ({e.strerror or e})") from e
    return _zip_file_members(f, where, lim, skips, stack), where


def _zip_file_members(f, where: str, lim: ImageLimits, skips: _Skips, stack) -> list[_Member]:
    """The members of the zip open as ``f`` (a file or the bytes of an upload), after the
    archive's declared entry count is checked and before its central directory is parsed."""
    try:
        declared = _zip_declared_entries(f)
        if declared is not None and declared > lim.max_members:
            raise DatasetFileError(f"{where}: {declared:,} files, over the limit of {lim.max_members:,} files per upload")
        f.seek(0)
        zf = stack.enter_context(zipfile.ZipFile(f))
    except DatasetFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        raise DatasetFileError(f"{where}: not a readable .zip file ({type(e).__name__}: {str(e)[:200]})") from e
    return _zip_members(zf, where, lim, skips)


def check_image_zip(data: bytes, name: str, *, limits: Optional[ImageLimits] = None) -> None:
    """What can be known of an uploaded zip of images from its directory alone, before it is
    kept anywhere: a readable zip, within the limits on its files and their unpacked bytes,
    holding at least one image file by its name. Raises :class:`DatasetFileError` naming the
    file and the problem. (Whether its images decode is known only once they are loaded.)"""
    import contextlib

    where = os.path.basename(name or "") or "uploaded zip"
    lim = limits or ImageLimits()
    skips = _Skips()
    with contextlib.ExitStack() as stack:
        members = _zip_file_members(io.BytesIO(data), where, lim, skips, stack)
    if not any(_is_image(m.parts) for m in members):
        shown = "; ".join(skips.named[:5])
        raise DatasetFileError(f"{where}: holds no image file (JPEG, PNG, BMP or WebP: {', '.join(IMAGE_EXTENSIONS)})"
                               + (f"; {skips.count} file(s) skipped: {shown}" if skips.count else ""))


def _assign(members: list[_Member], labels_csv: Optional[dict[str, str]], skips: _Skips):
    """[(member, split, label text or None)] and the layout."""
    has_test = any(len(m.parts) > 1 and m.parts[0].lower() in TEST_FOLDERS for m in members)
    placed = [(m, *_split_of(m.parts, has_test)) for m in members]
    if labels_csv is not None:
        bases: dict[str, Optional[str]] = {}
        for name, label in labels_csv.items():
            base = name.rsplit("/", 1)[-1]
            bases[base] = None if base in bases else label  # a base name given twice matches nothing
        out = []
        for m, split, rel in placed:
            label = _csv_label(labels_csv, rel, m.parts, bases)
            if not label:
                skips.add(m.name, "no label in the labels CSV")
                continue
            out.append((m, split, label))
        return out, "csv"
    if any(len(rel) > 1 for _, _, rel in placed):
        out = []
        for m, split, rel in placed:
            if len(rel) == 1:
                skips.add(m.name, "not in a class folder")
                continue
            out.append((m, split, rel[0]))
        return out, "folders"
    return [(m, split, None) for m, split, _ in placed], "unlabeled"


def _checked_class_names(names, where: str) -> tuple[str, ...]:
    try:
        return check_class_names(names, f"{where}: class names")
    except ValueError as e:
        raise DatasetFileError(str(e)) from e


def load_images(path: str | os.PathLike, image_size: int = 32, *, limits: Optional[ImageLimits] = None) -> ImageSet:
    """Read a ``.zip`` of images (or a folder of them) into arrays; see the module's docstring.

    Raises :class:`DatasetUnavailableError` when ``path`` does not exist and
    :class:`DatasetFileError` (naming the file and the limit) when the archive is over a
    limit as a whole or no image in it can be used."""
    import contextlib

    lim = limits or ImageLimits()
    skips = _Skips()
    with contextlib.ExitStack() as stack:
        members, where = _open_members(str(path), lim, skips, stack)
        members = _strip_common_root(sorted(members, key=lambda m: m.parts))
        csv_member = _pick_csv([m for m in members if m.parts[-1].lower().endswith(".csv")], where)
        labels_csv = _read_labels_csv(csv_member, where) if csv_member is not None else None
        images = []
        for m in members:
            if m is csv_member:
                continue
            if _is_image(m.parts):
                images.append(m)
            else:
                skips.add(m.name, f"not an image file (JPEG, PNG, BMP or WebP: {', '.join(IMAGE_EXTENSIONS)})")
        assigned, layout = _assign(images, labels_csv, skips)
        decoder = _Decoder(len(assigned), image_size, lim, where)
        kept = []
        for m, split, label in assigned:
            why = decoder.add(m)
            if why:
                skips.add(m.name, why)
            else:
                kept.append((m.name, split, label))
    folder = os.path.isdir(path)
    source = f"image {'folder' if folder else 'zip'} {where}"
    images = _assemble(decoder, kept, layout, source, where, skips, csv_member,
                       None if folder else sha256_of_file(path))
    _remember(path, image_size, images)
    return images


def _assemble(decoder: _Decoder, kept: list, layout: str, source: str, where: str, skips: _Skips,
              csv_member: Optional[_Member], sha256: Optional[str] = None) -> ImageSet:
    if not kept:
        shown = "; ".join(skips.named[:5])
        raise DatasetFileError(f"{where}: no image could be used" + (f" ({skips.count} file(s) skipped: {shown})"
                                                                     if skips.count else " (it holds no image files)"))
    colour = bool(decoder.colour[: decoder.n].any())
    x = decoder.x[: decoder.n] if colour else decoder.x[: decoder.n, ..., 0]
    splits = np.array([s for _, s, _ in kept])
    files = [name for name, _, _ in kept]  # as stored in the archive or folder
    if layout == "unlabeled":
        names: tuple[str, ...] = ()
        y = np.full(len(kept), _UNLABELED, np.int32)
    else:
        train_labels = [lab for _, s, lab in kept if s == "train"]
        names = _checked_class_names(_class_order(train_labels or [lab for _, _, lab in kept]), where)
        index = {n: i for i, n in enumerate(names)}
        y = np.array([index.get(lab, _UNLABELED) for _, _, lab in kept], np.int32)
        for (name, _, lab), known in zip(kept, y >= 0):
            if not known:
                skips.add(name, f"class {_short(lab, 40)!r} has no training images")
        good = y >= 0
        x, y, splits = x[good], y[good], splits[good]
        files = [f for f, k in zip(files, good) if k]
    is_test = splits == "test"
    test_folder = bool(is_test.any()) and bool((~is_test).any())
    if not test_folder:
        is_test = np.zeros(len(y), bool)
    words = {"folders": f"one folder per class ({len(names)} classes)",
             "csv": f"labels from {csv_member.name if csv_member else 'a CSV'} ({len(names)} classes)",
             "unlabeled": "images without labels"}[layout]
    if test_folder:
        words += ", test split from the 'test' folder"
    raw = RawData(np.ascontiguousarray(x[~is_test]), y[~is_test], x[is_test] if test_folder else None,
                  y[is_test] if test_folder else None, names or None, source,
                  tuple(f for f, t in zip(files, is_test) if not t), sha256)
    return ImageSet(raw, layout, words, layout != "unlabeled", colour, test_folder,
                    tuple(skips.named), skips.count)


# What the latest loads found (layout, skipped files), for a caller that got only the prepared
# arrays from a cache: the dashboard shows them under the upload.
_REPORTS: "OrderedDict[tuple, tuple[str, list[str]]]" = OrderedDict()
_REPORTS_LOCK = threading.Lock()
_REPORTS_KEPT = 32


def _report_key(path, image_size: int) -> Optional[tuple]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.realpath(path), int(image_size), st.st_size, st.st_mtime_ns


def _remember(path, image_size: int, images: ImageSet) -> None:
    key = _report_key(path, image_size)
    if key is not None:
        with _REPORTS_LOCK:
            _REPORTS[key] = (images.layout_text, images.skipped_text())
            _REPORTS.move_to_end(key)
            while len(_REPORTS) > _REPORTS_KEPT:
                _REPORTS.popitem(last=False)


def load_report(path, image_size: int) -> Optional[tuple[str, list[str]]]:
    """(layout in words, skipped files) of the latest load of this file at this size, if remembered."""
    key = _report_key(path, image_size)
    with _REPORTS_LOCK:
        return _REPORTS.get(key) if key is not None else None


def require_labels(images: ImageSet, where: str) -> RawData:
    """The raw arrays of a labeled set; a clear refusal for images without labels."""
    if not images.labeled:
        raise DatasetFileError(
            f"{where}: the images have no labels (no class folders and no labels CSV). A simulated run "
            f"needs a label for every image: put each class's images in a folder named after the class, "
            f"or add a labels.csv of file name and label. Or label them yourself in the loop: "
            f"Be the oracle in the dashboard")
    return images.raw

