"""The course's offline TFDS builders (course.data): splits, shapes, ranges, determinism, and a
clear error instead of a long TFDS retry loop when a download is needed and there is no network.

Nothing here touches the network: tfds.load and the network probe are replaced where a download
would be attempted.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from course import data

# name -> (train size, test size, number of features, label dtype kind, number of classes)
EXPECTED = {
    "course_house_prices": (1600, 400, 2, "f", None),
    "course_moons": (800, 200, 2, "i", 2),
    "course_wine": (142, 36, 13, "i", 3),
    "course_digits": (1437, 360, 64, "i", 10),
    "course_mnist1d": (4000, 1000, 40, "i", 10),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """All the course data sets prepared once into a fresh folder named by COURSE_DATA_DIR."""
    root = tmp_path_factory.mktemp("tfds")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(data.DATA_DIR_ENV, str(root))
        splits = {(name, split): data.load(name, split)
                  for name in data.COURSE_DATASETS for split in ("train", "test")}
        yield root, splits


def test_the_course_data_sets_are_registered():
    assert set(data.COURSE_DATASETS) == set(EXPECTED)
    registered = set(tfds.list_builders(with_community_datasets=False))
    assert set(EXPECTED) <= registered


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv(data.DATA_DIR_ENV)
    assert data.data_dir().parts[-2:] == ("keras-optimization-course", "tfds")


def test_builders_prepare_into_the_folder_from_the_environment(prepared):
    root, _ = prepared
    for name in data.COURSE_DATASETS:
        assert (root / name / "1.0.0" / "dataset_info.json").exists(), name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_splits_sizes_shapes_and_dtypes(prepared, name):
    _, splits = prepared
    n_train, n_test, n_features, label_kind, n_classes = EXPECTED[name]
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = splits[name, split]
        assert x.shape == (n, n_features) and x.dtype == np.float32, (split, x.shape, x.dtype)
        assert y.shape == (n,) and y.dtype.kind == label_kind, (split, y.shape, y.dtype)
        assert np.isfinite(x).all()
        if n_classes:
            # a stratified split: every class appears on both sides
            assert set(np.unique(y)) == set(range(n_classes)), split


def test_house_prices_ranges(prepared):
    _, splits = prepared
    for split in ("train", "test"):
        x, y = splits["course_house_prices", split]
        bedrooms, area = x[:, 0], x[:, 1]
        assert set(np.unique(bedrooms)) == {1, 2, 3, 4, 5}
        assert area.min() >= 500 and area.max() <= 5000
        assert np.all(area == np.round(area))
        assert (y > 0).all()
    # the documented process: price is linear in the features, noise sd 25 (thousands)
    x, y = splits["course_house_prices", "train"]
    design = np.column_stack([np.ones(len(x)), x[:, 1], x[:, 0]])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(coef, [50, 0.12, 12], rtol=0.15)
    assert 20 < np.std(y - design @ coef) < 30


def test_digits_and_wine_are_sklearns_data(prepared):
    from sklearn.datasets import load_digits, load_wine

    _, splits = prepared
    for name, loader in (("course_digits", load_digits), ("course_wine", load_wine)):
        x_all, _ = loader(return_X_y=True)
        ours = np.concatenate([splits[name, "train"][0], splits[name, "test"][0]])
        assert len(ours) == len(x_all)
        # the same rows, in some order
        np.testing.assert_allclose(np.sort(ours, axis=0), np.sort(x_all.astype("float32"), axis=0))


def test_mnist1d_is_the_packages_data_with_its_split(prepared):
    from mnist1d.data import get_dataset_args, make_dataset

    _, splits = prepared
    made = make_dataset(get_dataset_args())
    for split, (x_key, y_key) in (("train", ("x", "y")), ("test", ("x_test", "y_test"))):
        x, y = splits["course_mnist1d", split]
        np.testing.assert_array_equal(x, made[x_key].astype("float32"))
        np.testing.assert_array_equal(y, made[y_key])
    # the package standardizes the whole set (one mean and one std for every feature)
    x = np.concatenate([splits["course_mnist1d", "train"][0], splits["course_mnist1d", "test"][0]])
    assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3


def test_making_mnist1d_leaves_the_global_random_state_alone():
    import random

    # the splits' maker itself: preparing any builder through TFDS draws from Python's random
    np.random.seed(7)
    random.seed(7)
    expected = np.random.rand(), random.random()
    np.random.seed(7)
    random.seed(7)
    data._mnist1d_splits()  # make_dataset seeds both generators with 42
    assert (np.random.rand(), random.random()) == expected


def test_train_and_test_do_not_overlap(prepared):
    _, splits = prepared
    for name in ("course_house_prices", "course_moons", "course_mnist1d"):
        # whole examples (features and label): two houses may share bedrooms and area
        train = {(*x, y) for x, y in zip(*splits[name, "train"])}
        test = {(*x, y) for x, y in zip(*splits[name, "test"])}
        assert len(train) == len(splits[name, "train"][1])
        assert not train & test, name


def test_as_supervised_through_tfds_and_as_dataset(prepared):
    root, splits = prepared
    for name in data.COURSE_DATASETS:
        ds = tfds.load(name, split="test", data_dir=str(root), as_supervised=True)
        x, y = next(iter(ds))
        assert x.shape == (EXPECTED[name][2],) and x.dtype.name == "float32"
        assert y.shape == ()
        pairs = data.load(name, "test", as_numpy=False, data_dir=root)
        xs = np.stack([a.numpy() for a, _ in pairs])
        np.testing.assert_array_equal(xs, splits[name, "test"][0])


def test_the_same_data_every_time(prepared, tmp_path):
    _, splits = prepared
    for name in data.COURSE_DATASETS:
        for split in ("train", "test"):
            x, y = data.load(name, split, data_dir=tmp_path)  # prepared again from scratch
            np.testing.assert_array_equal(x, splits[name, split][0])
            np.testing.assert_array_equal(y, splits[name, split][1])


def test_unknown_split_and_unknown_course_name(prepared):
    root, _ = prepared
    with pytest.raises(ValueError, match="splits"):
        data.load("course_moons", "validation", data_dir=root)
    with pytest.raises(data.DataUnavailable, match="course_moons"):
        data.load("course_nothing", data_dir=root)


def test_load_any_uses_the_course_builders_offline(prepared, monkeypatch):
    root, splits = prepared

    def no_tfds_load(*args, **kwargs):
        raise AssertionError("a course data set must not go through tfds.load")

    monkeypatch.setattr(tfds, "load", no_tfds_load)
    x, y = data.load_any("course_wine", "train", data_dir=root)
    np.testing.assert_array_equal(x, splits["course_wine", "train"][0])


def test_load_any_without_a_network_says_so_without_trying(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(data, "network_reachable", lambda *a, **k: False)
    monkeypatch.setattr(tfds, "load", lambda *a, **k: calls.append(a) or None)
    with pytest.raises(data.DataUnavailable) as info:
        data.load_any("mnist", "train", data_dir=tmp_path)
    message = str(info.value)
    assert "mnist" in message and "network" in message
    for name in data.COURSE_DATASETS:
        assert name in message
    assert not calls, "tfds.load would have retried the download for minutes"


def test_load_any_turns_a_failed_download_into_data_unavailable(monkeypatch, tmp_path):
    import requests

    def offline_load(*args, **kwargs):
        try:
            raise OSError(-2, "Name or service not known")
        except OSError as cause:
            raise requests.exceptions.ConnectionError("Max retries exceeded") from cause

    monkeypatch.setattr(data, "network_reachable", lambda *a, **k: True)
    monkeypatch.setattr(tfds, "load", offline_load)
    with pytest.raises(data.DataUnavailable, match="needs a network") as info:
        data.load_any("mnist", "train", data_dir=tmp_path)
    assert "course_digits" in str(info.value)
    assert isinstance(info.value.__cause__, requests.exceptions.ConnectionError)


def test_load_any_does_not_hide_other_errors(monkeypatch, tmp_path):
    def broken_load(*args, **kwargs):
        raise ValueError("a real bug, not a missing network")

    monkeypatch.setattr(data, "network_reachable", lambda *a, **k: True)
    monkeypatch.setattr(tfds, "load", broken_load)
    with pytest.raises(ValueError, match="real bug"):
        data.load_any("mnist", "train", data_dir=tmp_path)


def test_load_any_unknown_name(tmp_path):
    with pytest.raises(data.DataUnavailable, match="no data set named"):
        data.load_any("surely_not_a_tfds_dataset", data_dir=tmp_path)


def test_as_vectors_flattens_and_scales_images():
    images = np.full((3, 28, 28, 1), 255, dtype=np.uint8)
    rows = data.as_vectors(images)
    assert rows.shape == (3, 784) and rows.dtype == np.float32 and rows.max() == 1.0
    floats = np.arange(6, dtype="float64").reshape(3, 2)
    np.testing.assert_array_equal(data.as_vectors(floats), floats.astype("float32"))
