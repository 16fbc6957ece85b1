"""Shared fixtures: one face engine per session, a fresh store per test, and the shared test data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openlfr.models import load_engine
from openlfr.models.packs import FUSED_PACK, SFACE_PACK
from openlfr.storage import Store

DATA_ENV = "OPENLFR_TEST_DATA"


def shared_data() -> Path | None:
    """The shared test data folder, None when not configured; fails loudly when configured but missing."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    root = Path(value)
    if not (root / "lfw" / "pairs.txt").is_file():
        pytest.fail(f"{DATA_ENV}={value} is set but {root}/lfw/pairs.txt is missing", pytrace=False)
    return root


@pytest.fixture(scope="session")
def test_data() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip(f"set {DATA_ENV} to the shared data folder (../shared/data) to run tests on real data")
    return root


@pytest.fixture(scope="session")
def lfw_root(test_data: Path) -> Path:
    """The LFW folder of the shared data (pairs.txt and lfw-deepfunneled/)."""
    return test_data / "lfw"


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding only the cleaned model cache, shared by the session's engines."""
    return tmp_path_factory.mktemp("models-home")


@pytest.fixture(scope="session")
def engine(model_home: Path):
    """The single-model pack most tests exercise (their thresholds are SFace cosines); the fused
    default pack is tested in test_second_opinion.py and end to end by the demo and browser tests."""
    return load_engine(SFACE_PACK, home=model_home)


@pytest.fixture(scope="session")
def fused(model_home: Path):
    """The default pack for watchlists and live deployments: SFace and dlib's ResNet, fused."""
    return load_engine(FUSED_PACK, home=model_home)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "home")
    yield s
    s.close()
