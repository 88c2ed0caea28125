import psycopg
import pytest
from acoustack.errors import FailedPreconditionError
from acoustack_storage.migrate import Migration, apply_migrations, bundled_migrations


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrations_create_the_schema_once(empty_database_url):
    with psycopg.connect(empty_database_url) as conn:
        assert apply_migrations(conn) == [m.version for m in bundled_migrations()]
    assert {
        "deployments",
        "recordings",
        "model_outputs",
        "detections",
        "messages",
        "responses",
    } <= tables(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        assert apply_migrations(conn) == []  # a restart applies nothing


def test_a_new_migration_is_applied_on_top(empty_database_url):
    migrations = bundled_migrations()
    with psycopg.connect(empty_database_url) as conn:
        apply_migrations(conn, migrations)
        extra = Migration(9999, "add_note", "ALTER TABLE deployments ADD COLUMN note text")
        assert apply_migrations(conn, [*migrations, extra]) == [9999]
        conn.execute("SELECT note FROM deployments")


def test_an_edited_migration_is_refused(empty_database_url):
    first = bundled_migrations()[0]
    with psycopg.connect(empty_database_url) as conn:
        apply_migrations(conn, [first])
        edited = Migration(first.version, first.name, first.sql + "\n-- edited\n")
        with pytest.raises(FailedPreconditionError, match="changed after it was applied"):
            apply_migrations(conn, [edited])


def test_every_contract_query_has_an_index(database_url):
    with psycopg.connect(database_url) as conn:
        indexes = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
    assert {
        "deployments_one_active",
        "recordings_path",
        "recordings_started_at",
        "recordings_status_started_at",
        "detections_model_started_at",
        "detections_score",
        "detections_tags",
        "messages_unsent",
        "responses_message",
    } <= indexes
