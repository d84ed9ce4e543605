"""The course's data sets, as TensorFlow Datasets builders that need no network.

Five builders are registered with TFDS when this module is imported:

==========================  =========  ============  ========================================
name                        train/test  features      label
==========================  =========  ============  ========================================
``course_house_prices``     1600/400   2 (float32)   price in thousands of dollars (float32)
``course_moons``            800/200    2 (float32)   which half-circle, 0 or 1 (int64)
``course_wine``             142/36     13 (float32)  cultivar, 0-2 (int64)
``course_digits``           1437/360   64 (float32)  digit, 0-9 (int64)
``course_mnist1d``          4000/1000  40 (float32)  digit, 0-9 (int64)
==========================  =========  ============  ========================================

The first two are generated with fixed seeds; wine and digits are the small real data sets that
scikit-learn ships inside its package. Their train/test split is a fixed, seeded 80/20 split
(stratified by class for the classification sets), so every learner sees the same numbers.
MNIST-1D (Greydanus, "Scaling down deep learning", 2020) is generated procedurally by the
``mnist1d`` package with its published settings, in its own 4000/1000 split: the split the
paper's accuracies (logistic regression 32%, MLP 68%, CNN 94%, human 96%) are measured on.

Each builder is prepared once, into ``$COURSE_DATA_DIR`` (default
``~/.cache/keras-optimization-course/tfds``), which takes a second or two; later loads read the
prepared files. Typical use::

    from course import data
    x_train, y_train = data.load("course_digits", "train")     # NumPy arrays
    ds = data.load("course_moons", "test", as_numpy=False)      # tf.data.Dataset of (x, y)
    x, y = data.load_any("mnist", "train")                      # any TFDS name; needs a network
                                                                #   the first time
After ``import course.data`` the names also work with TFDS directly:
``tfds.load("course_wine", data_dir=data.data_dir(), as_supervised=True)``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.error
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

DATA_DIR_ENV = "COURSE_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/keras-optimization-course/tfds")
SEED = 2024
TEST_FRACTION = 0.2

HOUSE_FEATURES = ("bedrooms", "area_sqft")


class DataUnavailable(RuntimeError):
    """A data set could not be loaded here (no network for a download, or no such data set).

    The message says why and what to use instead; chapters print it rather than a traceback.
    """


def data_dir() -> Path:
    """Where the course prepares its data sets: ``$COURSE_DATA_DIR`` or the default cache."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def _root(given) -> str:
    """A caller's ``data_dir`` argument, or the course's folder when none was given."""
    return str(given if given is not None else data_dir())


# --------------------------------------------------------------------------------------------
# How each data set is made. Each function returns {"train": (x, y), "test": (x, y)}.
# --------------------------------------------------------------------------------------------


def _split(x: np.ndarray, y: np.ndarray, stratify: bool) -> dict:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SEED, stratify=y if stratify else None
    )
    return {"train": (x_tr, y_tr), "test": (x_te, y_te)}


def make_house_prices(n: int = 2000, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The documents' house-price example, synthetic: two features on very different scales.

    The generating process (all draws from ``numpy.random.default_rng(seed)``)::

        bedrooms  ~ uniform integer in 1..5
        area_sqft = round(clip(300 + 850 * bedrooms + Normal(0, 400), 500, 5000))
        price     = 50 + 0.12 * area_sqft + 12 * bedrooms + Normal(0, 25)   (thousands of dollars)

    So the price is linear in both features plus Gaussian noise (a linear model can reach a
    mean squared error of about 25^2 = 625 and no lower), the area grows with the number of
    bedrooms (the features are correlated, as in real listings), and the area is about a
    thousand times larger than the bedroom count: the scale mismatch that stretches the loss
    surface into a narrow valley when the features are left unscaled.

    Returns ``x`` of shape (n, 2) with columns ``HOUSE_FEATURES`` and ``y`` of shape (n,),
    both float32.
    """
    rng = np.random.default_rng(seed)
    bedrooms = rng.integers(1, 6, size=n)
    area = np.round(np.clip(300 + 850 * bedrooms + rng.normal(0, 400, size=n), 500, 5000))
    price = 50 + 0.12 * area + 12 * bedrooms + rng.normal(0, 25, size=n)
    x = np.stack([bedrooms, area], axis=1).astype("float32")
    return x, price.astype("float32")


def _house_prices_splits() -> dict:
    x, y = make_house_prices()
    return _split(x, y, stratify=False)


def _moons_splits() -> dict:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=1000, noise=0.2, random_state=SEED)
    return _split(x.astype("float32"), y.astype("int64"), stratify=True)


def _wine_splits() -> dict:
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    return _split(x.astype("float32"), y.astype("int64"), stratify=True)


def _digits_splits() -> dict:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)  # 8x8 images flattened, pixel values 0..16
    return _split(x.astype("float32"), y.astype("int64"), stratify=True)


def _mnist1d_splits() -> dict:
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds Python's and NumPy's global generators (with the paper's seed, 42) to
    # be reproducible; preparing a data set must not reseed the caller's random numbers
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        made = make_dataset(get_dataset_args())  # generated here: the package's download is off
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return {"train": (made["x"].astype("float32"), made["y"].astype("int64")),
            "test": (made["x_test"].astype("float32"), made["y_test"].astype("int64"))}


# --------------------------------------------------------------------------------------------
# The TFDS builders.
# --------------------------------------------------------------------------------------------


class _ThisFile:
    """A class-level attribute that is this module's path.

    TFDS 4.9.10 infers a builder's ``code_path`` through ``importlib_resources``, a package it
    forgets to declare on Python >= 3.9 (tensorflow/datasets#11212), so preparing any builder
    fails with ModuleNotFoundError where that package is missing. Our builders have no
    checksum files to find, so telling TFDS where their code lives sidesteps the lookup.
    """

    def __get__(self, obj, owner):
        return epath.Path(__file__)


class _CourseBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared machinery: a subclass names its features and says how to make its splits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    code_path = _ThisFile()

    n_features: int
    label_feature: object
    description: str
    make_splits = staticmethod(lambda: {})
    homepage = "https://scikit-learn.org/stable/datasets/toy_dataset.html"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.description,
            features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(shape=(self.n_features,), dtype=np.float32),
                "label": self.label_feature,
            }),
            supervised_keys=("features", "label"),
            # keep the seeded order we generate, so a split reads back in a fixed order
            disable_shuffling=True,
            homepage=self.homepage,
        )

    # TFDS announces a download (of "Unknown size") and its completion; there is no download
    # here, and ``builder`` prints one line of its own instead.
    def _log_download_bytes(self):
        pass

    def _log_download_done(self):
        pass

    def _split_generators(self, dl_manager):
        splits = type(self).make_splits()
        return {name: self._generate_examples(*xy) for name, xy in splits.items()}

    def _generate_examples(self, x, y):
        for i, (features, label) in enumerate(zip(x, y)):
            yield i, {"features": features, "label": label}


class CourseHousePrices(_CourseBuilder):
    """``course_house_prices``: bedrooms and floor area -> price (see ``make_house_prices``)."""

    n_features = 2
    label_feature = tfds.features.Scalar(dtype=np.float32)
    description = (
        "Synthetic house prices. features = [bedrooms (1-5), floor area in square feet "
        "(500-5000)]; label = price in thousands of dollars, 50 + 0.12*area + 12*bedrooms "
        "plus Normal(0, 25) noise. See course.data.make_house_prices."
    )
    make_splits = staticmethod(_house_prices_splits)


class CourseMoons(_CourseBuilder):
    """``course_moons``: two interleaved half-circles (scikit-learn ``make_moons``, noise 0.2)."""

    n_features = 2
    label_feature = tfds.features.ClassLabel(num_classes=2)
    description = ("Two interleaved half-circles from sklearn.datasets.make_moons(n_samples=1000, "
                   "noise=0.2) with a fixed seed; label = which half-circle.")
    make_splits = staticmethod(_moons_splits)


class CourseWine(_CourseBuilder):
    """``course_wine``: 13 chemical measurements of 178 wines from three cultivars."""

    n_features = 13
    label_feature = tfds.features.ClassLabel(num_classes=3)
    description = ("The UCI wine recognition data as shipped by sklearn.datasets.load_wine: "
                   "13 measurements on very different scales, 3 cultivars.")
    make_splits = staticmethod(_wine_splits)


class CourseDigits(_CourseBuilder):
    """``course_digits``: 1797 handwritten digits as 8x8 images (64 pixel values 0-16)."""

    n_features = 64
    label_feature = tfds.features.ClassLabel(num_classes=10)
    description = ("The UCI handwritten digits as shipped by sklearn.datasets.load_digits: "
                   "8x8 images flattened to 64 values in 0..16, digits 0-9.")
    make_splits = staticmethod(_digits_splits)


class CourseMnist1d(_CourseBuilder):
    """``course_mnist1d``: MNIST-1D, ten digit-like 1-D templates padded, shifted, scaled, sheared
    and made noisy into 40 values each; hard enough that a linear model reaches about 32% and a
    small CNN about 94% (the paper's table), small enough to train on a CPU in minutes."""

    n_features = 40
    label_feature = tfds.features.ClassLabel(num_classes=10)
    description = ("MNIST-1D (Greydanus 2020), generated with the mnist1d package's default "
                   "arguments (seed 42): 40 float features standardized over the whole set, "
                   "digits 0-9, the package's own 4000/1000 train/test split.")
    make_splits = staticmethod(_mnist1d_splits)
    homepage = "https://github.com/greydanus/mnist1d"


BUILDERS = {cls.name: cls for cls in (CourseHousePrices, CourseMoons, CourseWine, CourseDigits,
                                      CourseMnist1d)}
COURSE_DATASETS = tuple(BUILDERS)


# --------------------------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------------------------


def builder(name: str, data_dir: str | os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """The prepared builder of a course data set (prepared on first use, in seconds)."""
    if name not in BUILDERS:
        raise DataUnavailable(f"{name!r} is not a course data set; they are "
                              f"{', '.join(COURSE_DATASETS)} (use load_any for other TFDS names)")
    b = BUILDERS[name](data_dir=_root(data_dir))
    if not _is_prepared(b):
        print(f"Preparing the course data set {name} in {b.data_dir} (once, a few seconds)")
        with _progress_bars(False):
            b.download_and_prepare()
    return b


def _is_prepared(b: tfds.core.DatasetBuilder) -> bool:
    # the files TFDS writes last; ``b.is_prepared()`` says the same but logs a warning when
    # they are missing, which is the normal state before the first preparation
    return (Path(b.data_dir) / "dataset_info.json").exists()


@contextlib.contextmanager
def _progress_bars(enable: bool):
    """Show or hide TFDS's progress bars for a block, then put the user's setting back."""
    from tensorflow_datasets.core.utils import tqdm_utils

    old = getattr(tqdm_utils, "_active", True)
    tfds.display_progress_bar(enable)
    try:
        yield
    finally:
        tfds.display_progress_bar(old)


def _check_split(name: str, split: str, available) -> None:
    base = split.split("[")[0]  # allow TFDS slicing such as "train[:10%]"
    if base not in available:
        raise ValueError(f"{name} has the splits {', '.join(sorted(available))}, not {split!r}")


def load(name: str, split: str = "train", as_numpy: bool = True,
         data_dir: str | os.PathLike | None = None):
    """Load a course data set's split.

    With ``as_numpy=True`` (the default): ``(x, y)`` NumPy arrays, ``x`` float32 of shape
    ``(n, features)``. Otherwise an unbatched ``tf.data.Dataset`` of ``(x, y)`` pairs.
    """
    b = builder(name, data_dir)
    _check_split(name, split, b.info.splits.keys())
    if not as_numpy:
        return b.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    x, y = tfds.as_numpy(b.as_dataset(split=split, as_supervised=True, batch_size=-1))
    return x, y


def network_reachable(host: str = "storage.googleapis.com", port: int = 443,
                      timeout: float = 3.0) -> bool:
    """A quick look for a network: can we open a connection to the host most TFDS data is on?

    TFDS itself retries an unreachable download for minutes before it gives up, so we ask first.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_message(name: str, why: str, root: str) -> str:
    return (f"The data set {name!r} is not available: {why}. It is not in the course's offline "
            f"collection, so TensorFlow Datasets would have to download it, which needs a network "
            f"connection (once; it is cached in {root} afterwards). The course data sets "
            f"work offline: {', '.join(COURSE_DATASETS)}.")


def _is_network_error(exc: BaseException) -> bool:
    """True when ``exc``, or anything it was raised from, is a failed connection or download."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror, urllib.error.URLError,
                            tfds.download.DownloadError)):
            return True
        # requests and urllib3 have their own connection errors (not builtin ConnectionError)
        if type(exc).__module__.split(".")[0] in ("requests", "urllib3"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def load_any(name: str, split: str = "train", as_numpy: bool = True,
             data_dir: str | os.PathLike | None = None):
    """Load any TFDS data set's split as ``(x, y)`` (or a ``tf.data.Dataset`` of pairs).

    Course names go to the offline builders above. Other names (``mnist``, ``fashion_mnist``,
    ...) go through ``tfds.load``: found in the cache they load offline; otherwise TFDS must
    download them, and without a network this raises ``DataUnavailable`` with a message naming
    the offline course data sets. Images come back as they are stored (e.g. uint8, 28x28x1);
    ``as_vectors`` turns them into float32 rows for a dense model.
    """
    if name in BUILDERS:
        return load(name, split, as_numpy, data_dir)
    root = _root(data_dir)
    try:
        prepared = _is_prepared(tfds.builder(name, data_dir=root))
    except tfds.core.registered.DatasetNotFoundError:
        raise DataUnavailable(f"TensorFlow Datasets has no data set named {name!r}. The course "
                              f"data sets are {', '.join(COURSE_DATASETS)}.") from None
    if not prepared and not network_reachable():
        raise DataUnavailable(_offline_message(name, "no network connection was found", root))
    kwargs = dict(split=split, data_dir=root, as_supervised=True, shuffle_files=False)
    try:
        if not as_numpy:
            return tfds.load(name, **kwargs)
        x, y = tfds.as_numpy(tfds.load(name, batch_size=-1, **kwargs))
    except ModuleNotFoundError as exc:
        if exc.name == "importlib_resources":  # tensorflow/datasets#11212, see _ThisFile
            raise DataUnavailable(
                f"Preparing {name!r} needs the package importlib_resources, which this version "
                f"of TensorFlow Datasets uses without declaring it: pip install "
                f"importlib_resources") from exc
        raise
    except Exception as exc:
        if _is_network_error(exc):
            why = f"the download failed ({type(exc).__name__}: {str(exc)[:160]})"
            raise DataUnavailable(_offline_message(name, why, root)) from exc
        raise
    return x, y


def as_vectors(x: np.ndarray) -> np.ndarray:
    """Rows of float32 features: images are flattened, 8-bit pixels scaled to 0..1."""
    x = np.asarray(x)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    return (x.reshape(len(x), -1) / scale).astype("float32")
