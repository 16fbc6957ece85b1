"""Shared fixtures: one face engine per session, a fresh store per test, and the shared test data.

Modules marked ``pytest.mark.both_databases`` run every test twice, ``[sqlite]`` and ``[postgresql]``
(tests/pg.py: a fresh PostgreSQL database per test, or per module for module-scoped stores through
``module_database``). The database is chosen through ``OPENLFR_DATABASE_URL``, so every ``Store``
a test opens, and every ``openlfr`` process it starts, uses it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import pg
from openlfr.models import load_engine
from openlfr.models.packs import FUSED_PACK, SFACE_PACK
from openlfr.storage import Store
from openlfr.storage.store import ENV_DATABASE_URL

DATA_ENV = "OPENLFR_TEST_DATA"
# Tests choose their database themselves: a URL exported in the shell (for the demo) must not leak in.
os.environ.pop(ENV_DATABASE_URL, None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    pg.drop_template()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests of modules marked ``both_databases`` on each backend (module-scoped when they use ``module_database``)."""
    if metafunc.definition.get_closest_marker("both_databases") is None:
        return
    if "module_database" in metafunc.fixturenames:
        metafunc.parametrize("module_database", pg.BACKENDS, indirect=True, scope="module")
    else:
        metafunc.parametrize("database", pg.BACKENDS, indirect=True)


@contextmanager
def _backend(backend: str | None, migrated: bool = True) -> Iterator[str]:
    """For the block, point ``OPENLFR_DATABASE_URL`` at a fresh PostgreSQL database ("postgresql"; at the
    newest schema unless not ``migrated``) or unset it ("sqlite": each store's own file, even while a
    module's PostgreSQL database is set up); None (not parametrised) leaves it as it is."""
    if backend is None:
        yield "sqlite" if not os.environ.get(ENV_DATABASE_URL) else "postgresql"
        return
    with pytest.MonkeyPatch.context() as mp:
        if backend == "sqlite":
            mp.delenv(ENV_DATABASE_URL, raising=False)
            yield "sqlite"
            return
        with pg.fresh_database(migrated=migrated) as url:
            mp.setenv(ENV_DATABASE_URL, url)
            yield "postgresql"


@pytest.fixture(autouse=True)
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend of this test: "sqlite" unless parametrised (``both_databases``) to "postgresql"; marked
    ``empty_database``, a PostgreSQL database without a schema, as a new SQLite file is."""
    empty = request.node.get_closest_marker("empty_database") is not None
    with _backend(getattr(request, "param", None), migrated=not empty) as backend:
        yield backend


@pytest.fixture(scope="module")
def module_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Like ``database``, for a module's shared store: one fresh PostgreSQL database per module."""
    with _backend(getattr(request, "param", None)) as backend:
        yield backend


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
def store(tmp_path: Path, database: str) -> Store:
    s = Store(tmp_path / "home")
    yield s
    s.close()
