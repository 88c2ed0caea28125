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


AN_ID = (
    "'00000000-0000-0000-0000-000000000001'::uuid"  # a constant, so the planner can use an index
)
CONTRACT_QUERIES = {
    "recordings by path": "SELECT * FROM recordings WHERE path = ANY(ARRAY['/a.wav'])",
    "recordings by time": "SELECT * FROM recordings WHERE started_at >= now() ORDER BY started_at, id",
    "recordings by status": "SELECT * FROM recordings WHERE status = ANY(ARRAY['temporary'])",
    "recordings of a deployment": (
        f"SELECT * FROM recordings WHERE deployment_id = {AN_ID} AND started_at < now()"
    ),
    "outputs of recordings": f"SELECT document FROM model_outputs WHERE recording_id = ANY(ARRAY[{AN_ID}])",
    "outputs by time": "SELECT id FROM model_outputs WHERE recording_started_at >= now()",
    "outputs by model": (
        "SELECT id FROM model_outputs WHERE model_name = 'x' AND recording_started_at < now()"
    ),
    "outputs by deployment": f"SELECT id FROM model_outputs WHERE deployment_id = {AN_ID}",
    "outputs by score": "SELECT id FROM model_outputs WHERE max_detection_score >= 0.9",
    "outputs by tag": "SELECT id FROM model_outputs WHERE tag_index @> ARRAY['species']",
    "due messages": (
        "SELECT id FROM messages WHERE sent_at IS NULL AND dead_at IS NULL "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= now()) ORDER BY priority DESC, created_at"
    ),
    "dead letters": (
        "SELECT id FROM messages WHERE sent_at IS NULL AND dead_at IS NOT NULL ORDER BY dead_at"
    ),
    "responses of a message": f"SELECT * FROM responses WHERE message_id = {AN_ID}",
    "active deployment": "SELECT * FROM deployments WHERE ended_at IS NULL",
}


@pytest.mark.parametrize("query", CONTRACT_QUERIES, ids=list(CONTRACT_QUERIES))
def test_every_contract_query_can_use_an_index(database_url, query):
    with psycopg.connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")  # tables are empty: make the planner show its hand
        plan = "\n".join(
            r[0] for r in conn.execute("EXPLAIN " + CONTRACT_QUERIES[query]).fetchall()
        )
    assert "Index" in plan, plan
