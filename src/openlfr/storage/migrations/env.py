"""Alembic environment: run with the connection handed over by :func:`openlfr.storage.store.migrate`."""

from alembic import context

from openlfr.storage.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
