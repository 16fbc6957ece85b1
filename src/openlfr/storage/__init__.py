"""The embedded store: SQLAlchemy models, Alembic migrations, encrypted files in the data directory."""

from openlfr.storage.store import Store

__all__ = ["Store"]
