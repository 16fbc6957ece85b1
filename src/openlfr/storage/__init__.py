"""The embedded store: SQLAlchemy models, Alembic migrations, encrypted files in the data directory."""

from openlfr.storage import sync_models  # noqa: F401  (the central and van tables, in the models' metadata)
from openlfr.storage.store import Store

__all__ = ["Store"]
