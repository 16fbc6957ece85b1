"""The custody gallery's generation: one row that every change to ``custody_images`` moves forward.

Each server process holds the custody search index in memory. Before a search it compares the
generation it last synced at with the database's and syncs when they differ (``index/custody_index``).
Comparing the table's row count and newest id, as before, is not enough on PostgreSQL: ids are
taken when rows are inserted but become visible when their transactions commit, so a row committed
late beside a deletion can leave count and newest id unchanged, and a process would go on searching
a stale index. The generation is moved by triggers in the database, so every writer (an import in
another process, a deletion, a cascade from ``custody_records``, a hand-made change) moves it, in
commit order (the row is locked until the change commits). It is the larger of the previous value
plus one and the current time in microseconds, so a database restored from a backup never reaches
again a value that an index saved later already holds.

SQLite's batch migrations rebuild a table and drop its triggers: a later migration that alters
``custody_images`` must create these triggers again (``tests/test_storage.py`` checks them at head).

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SQLITE_NEXT = "max(generation + 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))"
PG_NEXT = "greatest(generation + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)"


def upgrade() -> None:
    op.create_table(
        "custody_generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO custody_generation (id, generation) VALUES (1, 1)")
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER custody_images_generation_{event.lower()} AFTER {event} ON custody_images "
                f"BEGIN UPDATE custody_generation SET generation = {SQLITE_NEXT} WHERE id = 1; END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION openlfr_custody_generation() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN UPDATE custody_generation SET generation = {PG_NEXT} WHERE id = 1; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER custody_images_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON custody_images "
            "FOR EACH STATEMENT EXECUTE FUNCTION openlfr_custody_generation()"
        )
    else:  # pragma: no cover - OpenLFR supports SQLite and PostgreSQL
        raise NotImplementedError(f"custody generation triggers for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS custody_images_generation_{event}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS custody_images_generation ON custody_images")
        op.execute("DROP FUNCTION IF EXISTS openlfr_custody_generation()")
    op.drop_table("custody_generation")
