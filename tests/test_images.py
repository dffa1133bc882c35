"""Dataset 'images': a .zip (or folder) of image files, its three layouts, and what it refuses."""
import io
import json
import os
import stat
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from alcore import ExperimentConfig
from alcore.data import images as im
from alcore.data.datasets import DatasetFileError, DatasetUnavailableError, load_dataset, prepare
from alcore.data.images import ImageLimits, load_images
from alcore.serve.limits import DeploymentLimits
from test_cli import cli

COLOURS = {"ant": (200, 30, 30), "bee": (30, 200, 30), "cat": (30, 30, 200), "dog": (200, 200, 30), "emu": (30, 200, 200)}


def encode(arr, fmt="PNG", **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(np.asarray(arr, np.uint8)).save(b, fmt, **kw)
    return b.getvalue()


def blob(colour, size=(12, 10), seed=0, noise=20) -> np.ndarray:
    """An image of one colour with some noise: (height, width, 3), or (h, w) for a number."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + (() if isinstance(colour, int) else (3,))
    return np.clip(np.array(colour) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)


def make_zip(path, members: dict) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                z.writestr(data, b"../../etc/passwd")
            else:
                z.writestr(name, data)
    return str(path)


def class_zip(tmp_path, per_class=6, root="pets/", fmt="PNG", name="pets.zip", classes=COLOURS):
    ext = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp", "WEBP": "webp"}[fmt]
    members = {f"{root}{c}/{c}{i}.{ext}": encode(blob(col, (10 + 3 * i, 12), seed=i), fmt)
               for c, col in classes.items() for i in range(per_class)}
    return make_zip(tmp_path / name, members)


# ------------------------------------------------------------------------------ layouts

def test_one_folder_per_class_reads_colour_images_of_any_size(tmp_path):
    s = load_images(class_zip(tmp_path), image_size=16)
    assert s.layout == "folders" and s.labeled and s.colour and not s.test_folder
    assert "one folder per class (5 classes)" in s.layout_text
    assert s.raw.class_names == ("ant", "bee", "cat", "dog", "emu")  # sorted folder names, root looked through
    assert s.raw.x_train.shape == (30, 16, 16, 3) and s.raw.x_train.dtype == np.uint8
    assert s.raw.x_test is None and list(np.bincount(s.raw.y_train)) == [6] * 5
    # each class's colour survives decoding and scaling
    for k, c in enumerate(s.raw.class_names):
        mean = s.raw.x_train[s.raw.y_train == k].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, COLOURS[c], atol=12)
    assert s.skipped == () and s.n_skipped == 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP"])
def test_every_format_decodes(tmp_path, fmt):
    s = load_images(class_zip(tmp_path, per_class=2, fmt=fmt), image_size=8)
    assert s.raw.x_train.shape == (10, 8, 8, 3) and s.n_skipped == 0


def test_grayscale_stays_one_channel_and_a_colour_image_makes_all_rgb(tmp_path):
    gray = {f"{c}/{i}.png": encode(blob(60 * k + 20, seed=i)) for k, c in enumerate("ab") for i in range(4)}
    # a grayscale picture saved as RGB (three equal channels) is still grayscale
    gray["a/rgb.jpg"] = encode(np.repeat(blob(40, seed=9)[..., None], 3, axis=2), "PNG")
    s = load_images(make_zip(tmp_path / "g.zip", gray), image_size=10)
    assert not s.colour and s.raw.x_train.shape == (9, 10, 10)
    mixed = dict(gray, **{"b/colour.png": encode(blob((250, 0, 0)))})
    s = load_images(make_zip(tmp_path / "m.zip", mixed), image_size=10)
    assert s.colour and s.raw.x_train.shape == (10, 10, 10, 3)
    # sorted by name, b/colour.png comes last; the grayscale ones became three equal channels
    equal = [np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2]) for x in s.raw.x_train]
    assert equal == [True] * 9 + [False]


def test_transparency_palette_and_16_bit(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[3:7, 3:7] = (0, 0, 0, 255)  # a black square on transparent: white around it
    p = Image.fromarray(blob((10, 120, 240))).convert("P", palette=Image.Palette.ADAPTIVE)
    pb = io.BytesIO()
    p.save(pb, "PNG")
    deep = io.BytesIO()
    Image.fromarray((np.arange(100, dtype=np.uint16).reshape(10, 10) * 600)).save(deep, "PNG")
    s = load_images(make_zip(tmp_path / "t.zip", {"a/alpha.png": encode(rgba), "a/pal.png": pb.getvalue(),
                                                   "b/deep.png": deep.getvalue()}), image_size=10)
    assert s.n_skipped == 0, s.skipped
    alpha, pal, deep16 = s.raw.x_train
    assert alpha[0, 0].tolist() == [255, 255, 255] and alpha[5, 5].tolist() == [0, 0, 0]
    np.testing.assert_allclose(pal.reshape(-1, 3).mean(axis=0), (10, 120, 240), atol=15)
    assert deep16[..., 0].max() > 200 and deep16[0, 0, 0] == 0  # 16 bits scaled to 8, not clipped


def test_aspect_is_kept_by_padding_with_the_border_colour(tmp_path):
    wide = np.full((10, 40, 3), 255, np.uint8)
    wide[:, 18:22] = 0  # a black bar in the middle of a white strip
    flat = np.full((30, 6, 3), (90, 10, 200), np.uint8)  # a tall image of one colour
    s = load_images(make_zip(tmp_path / "w.zip", {"a/wide.png": encode(wide), "b/flat.png": encode(flat)}),
                    image_size=20)
    x_wide, x_flat = s.raw.x_train
    # scaled to 20x5, centred: white rows above and below, the black bar kept whole (nothing cropped)
    assert (x_wide[:6] == 255).all() and (x_wide[-6:] == 255).all()
    assert x_wide[10, 10].max() < 60 and x_wide[10, 0].min() == 255
    assert (x_flat == (90, 10, 200)).all()  # padded with its own colour: indistinguishable


def test_labels_csv_with_header_paths_base_names_and_stems(tmp_path):
    members = {f"img/{i}.png": encode(blob((20 * i, 0, 0), seed=i)) for i in range(8)}
    rows = ["filename,label", "img/0.png,10", "1.png,2", "img/2.png,10", "3,2", "img/4.png,2", "5.png,10",
            "6.png,"]  # 6 has an empty label; 7 is not in the CSV
    members["labels.csv"] = "\n".join(rows) + "\n"
    s = load_images(make_zip(tmp_path / "c.zip", members), image_size=8)
    assert s.layout == "csv" and "labels from labels.csv (2 classes)" in s.layout_text
    assert s.raw.class_names == ("2", "10")  # whole numbers sorted as numbers
    assert s.raw.y_train.tolist() == [1, 0, 1, 0, 0, 1]
    assert sorted(s.skipped) == ["img/6.png: no label in the labels CSV", "img/7.png: no label in the labels CSV"]


def test_csv_without_header_semicolons_and_a_test_folder(tmp_path):
    members = {f"train/{i}.png": encode(blob(10 * i, seed=i)) for i in range(6)}
    members.update({f"test/t{i}.png": encode(blob(10 * i, seed=i)) for i in range(3)})
    members["labels.csv"] = "".join(f"train/{i}.png;{'yes' if i % 2 else 'no'}\n" for i in range(6)) + \
        "".join(f"test/t{i}.png;{'yes' if i % 2 else 'no'}\n" for i in range(3))
    s = load_images(make_zip(tmp_path / "c.zip", members), image_size=8)
    assert s.raw.class_names == ("no", "yes") and s.test_folder
    assert s.raw.y_train.tolist() == [0, 1, 0, 1, 0, 1] and s.raw.y_test.tolist() == [0, 1, 0]


def test_two_csv_files_are_ambiguous(tmp_path):
    members = {"a.png": encode(blob(1)), "x.csv": "a.png,1\n", "y.csv": "a.png,2\n"}
    with pytest.raises(DatasetFileError, match="2 CSV files at the top"):
        load_images(make_zip(tmp_path / "c.zip", members))


def test_unlabeled_images_load_but_a_simulated_run_refuses_them(tmp_path):
    members = {f"photos/{i}.jpg": encode(blob((0, 10 * i, 0), seed=i), "JPEG") for i in range(5)}
    path = make_zip(tmp_path / "u.zip", members)
    s = load_images(path, image_size=8)
    assert s.layout == "unlabeled" and not s.labeled and s.raw.y_train.tolist() == [-1] * 5
    assert "without labels" in s.layout_text
    with pytest.raises(DatasetFileError, match=r"u.zip: the images have no labels .*Be the oracle"):
        load_dataset(ExperimentConfig(dataset="images", data_file=path))


def test_test_folder_is_the_test_split_else_the_seed_holds_one_out(tmp_path):
    members = {f"data/train/{c}/{i}.png": encode(blob(col, seed=i)) for c, col in COLOURS.items() for i in range(4)}
    members.update({f"data/test/{c}/{i}.png": encode(blob(col, seed=9 + i)) for c, col in COLOURS.items() for i in range(2)})
    members["data/test/zebra/0.png"] = encode(blob(0))  # a class the training split lacks
    s = load_images(make_zip(tmp_path / "tt.zip", members), image_size=8)
    assert s.test_folder and "test split from the 'test' folder" in s.layout_text
    assert len(s.raw.y_train) == 20 and len(s.raw.y_test) == 10
    assert s.raw.class_names == tuple(COLOURS)
    assert s.skipped == ("data/test/zebra/0.png: class 'zebra' has no training images",)
    cfg = ExperimentConfig(dataset="images", data_file=str(tmp_path / "tt.zip"), image_size=8)
    ds = load_dataset(cfg)
    assert len(ds.y_pool) == 20 and len(ds.y_test) == 10 and ds.image_shape == (8, 8, 3)
    assert ds.name.startswith("images:image zip tt.zip")
    # no test folder: 20% held out, drawn from the seed
    cfg = cfg.replace(data_file=class_zip(tmp_path, per_class=4))
    a, b, c = load_dataset(cfg), load_dataset(cfg), load_dataset(cfg.replace(seed=3))
    assert len(a.y_pool) == 16 and len(a.y_test) == 4
    np.testing.assert_array_equal(a.pool_origin, b.pool_origin)
    assert not np.array_equal(a.pool_origin, c.pool_origin)


def test_the_same_images_in_another_order_give_the_same_arrays(tmp_path):
    members = {f"{c}/{i}.png": encode(blob(col, (8 + i, 9), seed=i)) for c, col in COLOURS.items() for i in range(3)}
    a = load_images(make_zip(tmp_path / "a.zip", members), 12)
    b = load_images(make_zip(tmp_path / "b.zip", dict(reversed(list(members.items())))), 12)
    np.testing.assert_array_equal(a.raw.x_train, b.raw.x_train)
    np.testing.assert_array_equal(a.raw.y_train, b.raw.y_train)


def test_a_folder_of_images_and_its_symlinks(tmp_path):
    for c, col in list(COLOURS.items())[:2]:
        (tmp_path / "set" / c).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "set" / c / f"{i}.png").write_bytes(encode(blob(col, seed=i)))
    secret = tmp_path / "secret.png"
    secret.write_bytes(encode(blob(0)))
    os.symlink(secret, tmp_path / "set" / "ant" / "link.png")
    os.symlink(tmp_path, tmp_path / "set" / "bee" / "loop")
    s = load_images(tmp_path / "set", 8)
    assert s.raw.class_names == ("ant", "bee") and len(s.raw.y_train) == 6
    assert sorted(s.skipped) == ["ant/link.png: a symbolic link, not read", "bee/loop: a symbolic link, not read"]
    ds = load_dataset(ExperimentConfig(dataset="images", data_file=str(tmp_path / "set"), image_size=8, test_size=2))
    assert ds.name == "images:image folder set" and len(ds.y_pool) == 4 and ds.image_shape == (8, 8, 3)


# ----------------------------------------------------------------------------- hostile

def test_bad_members_are_skipped_and_named_while_the_rest_load(tmp_path):
    good = {f"pets/{c}/{i}.png": encode(blob(col, seed=i)) for c, col in list(COLOURS.items())[:2] for i in range(3)}
    link = zipfile.ZipInfo("pets/ant/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    png = encode(blob((1, 2, 3), (30, 30)))
    bad = {"pets/../../evil.png": encode(blob(0)), "/etc/abs.png": encode(blob(0)),
           "pets/ant/link.png": link, "pets/ant/truncated.png": png[: len(png) // 2],
           "pets/bee/noise.jpg": bytes(range(256)) * 4, "pets/bee/virus.exe": b"MZ" + bytes(100),
           "pets/bee/notes.txt": "hello", "pets/bee/page.png": b"<html>", "__MACOSX/pets/._x.png": b"junk"}
    s = load_images(make_zip(tmp_path / "bad.zip", {**good, **bad}), 8)
    assert len(s.raw.y_train) == 6 and s.raw.class_names == ("ant", "bee")
    why = dict(line.split(": ", 1) for line in s.skipped)
    assert why["pets/../../evil.png"].startswith("a path with '..'")
    assert why["/etc/abs.png"] == "an absolute path, not read"
    assert why["pets/ant/link.png"] == "a symbolic link, not read"
    assert why["pets/ant/truncated.png"].startswith("a damaged image")
    assert why["pets/bee/noise.jpg"] == why["pets/bee/page.png"] == "not a JPEG, PNG, BMP or WebP image"
    assert why["pets/bee/virus.exe"].startswith("not an image file")
    assert why["pets/bee/notes.txt"].startswith("not an image file")
    assert s.n_skipped == 8  # the macOS clutter is ignored without a word


def test_skipped_files_are_named_up_to_a_limit_then_counted(tmp_path):
    members = {f"a/{i}.png": encode(blob(5)) for i in range(2)}
    members.update({f"b/bad{i:02d}.png": b"no" for i in range(im.MAX_SKIPPED_NAMED + 7)})
    s = load_images(make_zip(tmp_path / "many.zip", members), 8)
    assert s.n_skipped == im.MAX_SKIPPED_NAMED + 7 and len(s.skipped) == im.MAX_SKIPPED_NAMED
    assert s.skipped_text()[-1] == "... and 7 more file(s)"


def test_nothing_usable_is_refused_like_a_bad_npz(tmp_path):
    with pytest.raises(DatasetFileError, match=r"empty.zip: no image could be used \(it holds no image files\)"):
        load_images(make_zip(tmp_path / "empty.zip", {}))
    with pytest.raises(DatasetFileError, match=r"junk.zip: no image could be used \(2 file\(s\) skipped: b/y.txt: "
                                               r"not an image file .*; a/x.png: not a JPEG"):
        load_images(make_zip(tmp_path / "junk.zip", {"a/x.png": b"zz", "b/y.txt": b"zz"}))
    (tmp_path / "not.zip").write_bytes(b"hello")
    with pytest.raises(DatasetFileError, match=r"not.zip: not a readable .zip file"):
        load_images(tmp_path / "not.zip")
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        load_images(tmp_path / "missing.zip")


def test_a_bomb_by_compression_ratio_is_skipped_unread(tmp_path, monkeypatch):
    zeros = b"\0" * (8 * 1024**2)
    members = {"a/1.png": encode(blob(1)), "b/2.png": encode(blob(2)), "b/bomb.bmp": zeros}
    read = []
    monkeypatch.setattr(im, "_read_zip_member", lambda zf, info, f=im._read_zip_member: read.append(info.filename) or f(zf, info))
    s = load_images(make_zip(tmp_path / "bomb.zip", members), 8)
    assert len(s.raw.y_train) == 2 and "b/bomb.bmp" not in read
    assert "MAX_COMPRESSION_RATIO" in s.skipped[0] and s.skipped[0].startswith("b/bomb.bmp: unpacks to 8,388,608 bytes")


def _forge_sizes(path, name: str, size: int):
    """Rewrite the unpacked size the central directory declares for ``name``."""
    data = bytearray(open(path, "rb").read())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        n = struct.unpack("<H", data[at + 28: at + 30])[0]
        if data[at + 46: at + 46 + n].decode() == name:
            data[at + 24: at + 28] = struct.pack("<I", size)
        at = data.find(b"PK\x01\x02", at + 4)
    open(path, "wb").write(bytes(data))


def test_a_bomb_by_declared_size_is_refused_before_reading(tmp_path):
    path = make_zip(tmp_path / "big.zip", {"a/1.png": encode(blob(1)), "b/2.png": encode(blob(2))})
    _forge_sizes(path, "b/2.png", 0xF000_0000)  # 3.75 GiB
    with pytest.raises(DatasetFileError, match=r"big.zip: its files unpack to 4,026,5\d\d,\d{3} bytes in all, over the "
                                               r"limit of 2,147,483,648$"):
        load_images(path)
    _forge_sizes(path, "b/2.png", 100 * 1024**2)  # one member over MAX_MEMBER_BYTES: skipped
    s = load_images(path, 8, limits=ImageLimits(max_compression_ratio=1e12))
    assert s.skipped == ("b/2.png: unpacks to 104,857,600 bytes, over the limit of 67,108,864 per file "
                         "(MAX_MEMBER_BYTES)",)
    _forge_sizes(path, "b/2.png", 5)  # a member that lies low: zipfile stops at what it declares
    s = load_images(path, 8)
    assert len(s.raw.y_train) == 1 and "b/2.png: " in s.skipped[0]


def test_100_000_tiny_members_are_refused_by_count_quickly(tmp_path):
    path = tmp_path / "swarm.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        info = zipfile.ZipInfo("x")
        for i in range(100_000):
            info.filename = f"{i}.png"
            z.writestr(info, b"")
    t = time.perf_counter()
    with pytest.raises(DatasetFileError, match=r"swarm.zip: 100,000 files, over the limit of 60,000 files per upload"):
        load_images(path)
    assert time.perf_counter() - t < 0.5  # the end record's count, before the directory is parsed


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds almost none."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def test_a_huge_image_is_refused_by_its_header_without_decoding(tmp_path, monkeypatch):
    loaded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loaded.append(self.size) or real_load(self))
    members = {"a/1.png": encode(blob(1)), "b/2.png": encode(blob(2)),
               "b/huge.png": _png_header(20_000, 20_000), "b/large.png": _png_header(8_000, 8_000)}
    s = load_images(make_zip(tmp_path / "huge.zip", members), 8)
    assert len(s.raw.y_train) == 2 and loaded and all(w * h <= 12 * 10 for w, h in loaded)  # the small ones alone
    why = dict(line.split(": ", 1) for line in s.skipped)
    assert why["b/large.png"] == "8,000 x 8,000 pixels, over the limit of 50,000,000 per image (MAX_IMAGE_PIXELS); not decoded"
    assert why["b/huge.png"].startswith("over the limit of 50,000,000 pixels per image (MAX_IMAGE_PIXELS); not decoded")


def test_total_pixels_and_output_size_are_bounded(tmp_path):
    path = class_zip(tmp_path, per_class=3)
    with pytest.raises(DatasetFileError, match=r"pets.zip: the images up to .* over the limit of 1,000 in all$"):
        load_images(path, 8, limits=ImageLimits(max_total_pixels=1_000))
    small = ImageLimits(max_members=10)
    with pytest.raises(DatasetFileError, match=r"15 files, over the limit of 10 files per upload"):
        load_images(path, 8, limits=small)


# --------------------------------------------------------------- config, limits, CLI

def test_config_fields():
    cfg = ExperimentConfig(dataset="images", data_file="/x/a.zip", image_size=64)
    assert cfg.image_size == 64 and cfg.data_key()[-1] == 64
    assert cfg.replace(dataset="digits").image_size == 32 and cfg.replace(dataset="digits").data_file is None
    assert cfg.data_key() != cfg.replace(image_size=48).data_key()
    with pytest.raises(ValueError, match="dataset 'images' needs data_file"):
        ExperimentConfig(dataset="images")
    with pytest.raises(ValueError, match="image_size"):
        ExperimentConfig(dataset="images", data_file="a.zip", image_size=4)


def test_a_server_path_is_refused_where_the_deployment_says_so(tmp_path):
    cfg = ExperimentConfig(dataset="images", data_file="/srv/photos")
    assert DeploymentLimits().path_problems(cfg, tmp_path) == [
        "data_file is a path on the server, which this deployment does not allow: upload the .zip of images instead"]
    assert DeploymentLimits(allow_server_paths=True).path_problems(cfg, tmp_path) == []
    inside = cfg.replace(data_file=str(tmp_path / "ab-mine.zip"))
    assert DeploymentLimits().path_problems(inside, tmp_path) == []


def test_cli_runs_on_a_five_class_colour_zip(tmp_path):
    path = class_zip(tmp_path, per_class=8, fmt="JPEG")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("pets/notes.txt", "not an image")
    out = tmp_path / "r.json"
    p = cli("run", "--dataset", "images", "--data-file", path, "--image-size", "12", "--model", "softmax",
            "--initial", "10", "--batch-size", "5", "--rounds", "2", "--max-epochs", "5", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "image zip pets.zip: pool 32, test 8, 5 classes, images 12x12x3" in p.stdout and "images:" not in p.stdout
    assert "layout: one folder per class (5 classes)" in p.stdout
    assert "skipped (the other images loaded):\n  pets/notes.txt: not an image file" in p.stderr
    assert sum(line.startswith("round ") for line in p.stdout.splitlines()) == 3
    data = json.loads(out.read_text())
    assert data["config"]["dataset"] == "images" and data["config"]["image_size"] == 12
    u = make_zip(tmp_path / "u.zip", {f"{i}.png": encode(blob(i)) for i in range(4)})
    p = cli("run", "--dataset", "images", "--data-file", u, "--rounds", "1")
    assert p.returncode == 2 and "u.zip: the images have no labels" in p.stderr and "Traceback" not in p.stderr


def test_prepare_accepts_what_load_images_returns(tmp_path):
    s = load_images(class_zip(tmp_path, per_class=5), 10)
    ds = prepare(s.raw, ExperimentConfig(dataset="images", data_file="x.zip", image_size=10, test_size=5))
    assert ds.x_pool.max() <= 1.0 and ds.n_classes == 5 and len(ds.y_test) == 5


def test_windows_names_drive_letters_and_encrypted_members(tmp_path):
    path = tmp_path / "win.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a\\1.png", encode(blob(10)))
        z.writestr("b\\2.png", encode(blob(200)))
        z.writestr("C:\\evil.png", encode(blob(0)))
        z.writestr("b/locked.png", encode(blob(0)))
    data = bytearray(path.read_bytes())  # zipfile writes no encrypted member: set the flag by hand
    at = data.rfind(b"PK\x01\x02")  # the last central-directory entry: b/locked.png
    data[at + 8] |= 0x1
    path.write_bytes(bytes(data))
    s = load_images(path, 8)
    assert s.raw.class_names == ("a", "b") and len(s.raw.y_train) == 2
    assert sorted(s.skipped) == ["C:\\evil.png: an absolute path, not read", "b/locked.png: encrypted, not read"]
