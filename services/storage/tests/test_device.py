"""Storage owns the device's identity: chosen once, kept in the database and in storage's data
volume, so re-creating either keeps it; every service learns it over GetDevice."""

from __future__ import annotations

import pytest

from acoustack import identity, schema
from acoustack.clients import StoreClient
from acoustack.grpc_server import start_server
from acoustack.testing import factories, servers
from acoustack_storage.device import DeviceIdentity
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer, register


@pytest.fixture
def second_database(postgres_admin_url, postgres_template):
    """Another database with the schema: the Postgres volume re-created."""
    name = servers.unique_name("acoustack_test")
    url = servers.create_database(postgres_admin_url, name, template=postgres_template)
    yield url
    servers.drop_database(postgres_admin_url, name)


def established(database_url: str, data_dir) -> str:
    repository = PostgresStore.open(database_url, timeout_s=2.0)
    try:
        return DeviceIdentity(repository, data_dir).get()
    finally:
        repository.close()


def test_the_id_is_chosen_once_and_kept_in_both_places(database_url, tmp_path):
    data = tmp_path / "storage-data"
    first = established(database_url, data)
    assert identity.is_device_id(first)
    assert identity.read_id_file(data) == first
    assert established(database_url, data) == first  # after a restart


def test_a_recreated_database_gets_the_id_back_from_the_data_volume(
    database_url, second_database, tmp_path
):
    data = tmp_path / "storage-data"
    first = established(database_url, data)
    assert established(second_database, data) == first
    # ... and keeps it there again, so the data volume may be lost next.
    assert established(second_database, tmp_path / "new-storage-data") == first


def test_a_recreated_data_volume_gets_the_id_back_from_the_database(database_url, tmp_path):
    first = established(database_url, tmp_path / "v1")
    assert established(database_url, tmp_path / "v2") == first
    assert identity.read_id_file(tmp_path / "v2") == first


def test_a_device_that_recorded_before_storage_owned_the_id_keeps_the_recordings_id(
    database_url, tmp_path
):
    """Each service used to keep an id of its own; the recordings (and their GUANO) carry the
    recorder's, so that one becomes the device's."""
    repository = PostgresStore.open(database_url, timeout_s=2.0)
    try:
        deployment = repository.start_deployment(schema.Deployment(name="meadow"))
        repository.store_recording(
            factories.recording(deployment.id, device_id="id-40458a05" + "0" * 24)
        )
    finally:
        repository.close()
    assert established(database_url, tmp_path / "data") == "id-40458a05" + "0" * 24


def test_every_service_learns_the_same_id_over_grpc(database_url, tmp_path):
    repository = PostgresStore.open(database_url, timeout_s=2.0)
    device = DeviceIdentity(repository, tmp_path / "storage-data")
    running = start_server([register(StoreServicer(repository, device))], address="127.0.0.1:0")
    try:
        with StoreClient(f"127.0.0.1:{running.port}") as client:
            recorder = client.learned_identity(tmp_path / "recorder-data").get()
            messenger = client.learned_identity(tmp_path / "messenger-data").get()
        assert recorder == messenger == device.get()
        assert identity.read_id_file(tmp_path / "recorder-data") == device.get()
    finally:
        running.stop(0)
        repository.close()
