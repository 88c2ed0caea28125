"""MqttMessenger against real Mosquitto brokers."""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from acoustack import __version__, schema
from acoustack.errors import InvalidArgumentError, validation_message
from acoustack.program_config import MessagingConfig
from acoustack_messenger.messengers import MqttMessenger, build_messengers

Status = schema.ResponseStatus


def message(content: str = '{"hello": "bats"}') -> schema.Message:
    return schema.Message(content=content)


def test_a_message_reaches_a_subscriber_with_its_id(mqtt_broker, subscriber, topic):
    messenger = MqttMessenger(mqtt_broker.host, mqtt_broker.port, topic, "device-7", timeout_s=5)
    try:
        sent = [message('{"n": 1}'), message('{"n": 2}')]
        responses = [messenger.send_message(m) for m in sent]
        for m, response in zip(sent, responses, strict=True):
            assert response.status is Status.SUCCESS, response.content
            assert response.message_id == m.id
            received = subscriber.next(topic=topic)
            assert received.payload == m.content.encode()
            assert received.user_properties == {
                "message_id": str(m.id),
                "device_id": "device-7",
                "software": f"acoustack-messenger/{__version__}",  # what sent it, as HTTP says
            }
    finally:
        messenger.close()


def test_availability_is_online_while_connected_and_offline_after(mqtt_broker, subscriber, topic):
    availability = f"{topic}/availability/device-7"
    messenger = MqttMessenger(
        mqtt_broker.host,
        mqtt_broker.port,
        topic,
        "device-7",
        timeout_s=5,
        availability_topic=availability,
    )
    assert messenger.send_message(message()).status is Status.SUCCESS
    assert subscriber.next(topic=availability).payload == b"online"
    messenger.close()
    assert subscriber.next(topic=availability).payload == b"offline"


def test_a_lost_connection_is_opened_again_by_the_next_send(mqtt_broker, subscriber, topic):
    messenger = MqttMessenger(mqtt_broker.host, mqtt_broker.port, topic, "device-7", timeout_s=5)
    try:
        assert messenger.send_message(message()).status is Status.SUCCESS
        # A second client with the same id makes the broker drop the first: a real lost link.
        thief = MqttMessenger(mqtt_broker.host, mqtt_broker.port, topic, "device-7", timeout_s=5)
        assert thief.send_message(message()).status is Status.SUCCESS
        thief.close()
        deadline = time.monotonic() + 10
        while messenger._client is not None and messenger._client.is_connected():
            assert time.monotonic() < deadline, "the broker did not drop the first connection"
            time.sleep(0.05)
        again = message('{"after": "reconnect"}')
        assert messenger.send_message(again).status is Status.SUCCESS
        payloads = [subscriber.next(topic=topic).payload for _ in range(3)]
        assert again.content.encode() in payloads
    finally:
        messenger.close()


def test_an_unreachable_broker_is_an_error_response_and_a_failed_check(closed_port):
    messenger = MqttMessenger("127.0.0.1", closed_port, "t/x", "device-7", timeout_s=3)
    started = time.monotonic()
    response = messenger.send_message(message())
    assert time.monotonic() - started < 3
    assert response.status is Status.ERROR
    assert f"127.0.0.1:{closed_port}" in response.content
    assert "Connection refused" in response.content
    verdict = messenger.check()
    assert not verdict.ok
    assert verdict.component == f"mqtt 127.0.0.1:{closed_port}"
    assert "messaging.mqtt_host and mqtt_port" in verdict.detail
    messenger.close()


def test_a_broker_that_never_answers_is_a_timeout(silent_server):
    messenger = MqttMessenger("127.0.0.1", silent_server, "t/x", "device-7", timeout_s=1)
    started = time.monotonic()
    response = messenger.send_message(message())
    assert 0.9 < time.monotonic() - started < 5
    assert response.status is Status.TIMEOUT
    assert "no answer to CONNECT within 1 s" in response.content
    verdict = messenger.check()
    assert not verdict.ok and "no answer to CONNECT" in verdict.detail
    messenger.close()


def test_the_check_connects_and_sends_nothing(mqtt_broker, subscriber, topic):
    messenger = MqttMessenger(
        mqtt_broker.host,
        mqtt_broker.port,
        topic,
        "device-7",
        timeout_s=5,
        availability_topic=f"{topic}/availability/device-7",
    )
    verdict = messenger.check()
    assert verdict.ok, verdict.detail
    assert verdict.detail.startswith(f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}: connected")
    with pytest.raises(AssertionError, match="nothing arrived"):
        subscriber.next(timeout_s=0.5)
    messenger.close()


def test_credentials_are_used_and_bad_ones_named(own_broker, topic):
    broker = own_broker.plain
    good = MqttMessenger(
        broker.host,
        broker.port,
        topic,
        "device-7",
        username=own_broker.username,
        password=own_broker.password,
        timeout_s=5,
    )
    assert good.send_message(message()).status is Status.SUCCESS
    assert good.check().ok
    good.close()
    bad = MqttMessenger(
        broker.host, broker.port, topic, "device-7", username="alice", password="nope", timeout_s=5
    )
    response = bad.send_message(message())
    assert response.status is Status.ERROR
    assert "refused the connection" in response.content
    assert "messaging.mqtt_username and the secret messaging.mqtt_password_secret names" in (
        response.content
    )
    verdict = bad.check()
    assert not verdict.ok and "mqtt_password_secret" in verdict.detail
    bad.close()


def test_tls_with_the_brokers_ca_and_a_plain_client_on_a_tls_port(own_broker, topic):
    context = ssl.create_default_context(cafile=str(own_broker.ca_file))
    broker = own_broker.tls
    secure = MqttMessenger(
        broker.host,
        broker.port,
        topic,
        "device-7",
        username=own_broker.username,
        password=own_broker.password,
        tls_context=context,
        timeout_s=5,
    )
    response = secure.send_message(message())
    assert response.status is Status.SUCCESS, response.content
    assert f"mqtts://{broker.host}:{broker.port}" in response.content
    secure.close()
    # The system's CAs do not know the test CA: the certificate is refused, and said so.
    untrusted = MqttMessenger(broker.host, broker.port, topic, "device-7", tls=True, timeout_s=5)
    response = untrusted.send_message(message())
    assert response.status is Status.ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in response.content
    untrusted.close()


def secrets_dir(tmp_path: Path, own_broker) -> Path:
    """The messenger's secrets directory, as compose and k3s mount it: one file per secret."""
    folder = tmp_path / "secrets"
    folder.mkdir(exist_ok=True)
    (folder / "mqtt_password").write_text(own_broker.password + "\n")
    return folder


def test_tls_from_the_messaging_section_uses_the_system_trust_store(
    own_broker, topic, monkeypatch, tmp_path
):
    monkeypatch.setenv("SSL_CERT_FILE", str(own_broker.ca_file))  # OpenSSL's own variable
    config = MessagingConfig(
        mqtt_host=own_broker.tls.host,
        mqtt_port=own_broker.tls.port,
        mqtt_topic=topic,
        mqtt_tls=True,
        mqtt_username=own_broker.username,
        mqtt_timeout_s=5,
    )
    [messenger] = build_messengers(config, "device-7", secrets_dir(tmp_path, own_broker))
    try:
        assert messenger.send_message(message()).status is Status.SUCCESS
    finally:
        messenger.close()


def test_websockets_transport(own_broker, topic, tmp_path):
    config = MessagingConfig(
        mqtt_host=own_broker.websockets.host,
        mqtt_port=own_broker.websockets.port,
        mqtt_topic=topic,
        mqtt_transport="websockets",
        mqtt_username=own_broker.username,
        mqtt_timeout_s=5,
    )
    [messenger] = build_messengers(config, "device-7", secrets_dir(tmp_path, own_broker))
    try:
        response = messenger.send_message(message())
        assert response.status is Status.SUCCESS, response.content
        assert response.content.endswith(f"(ws://127.0.0.1:{own_broker.websockets.port} {topic})")
        assert messenger.check().ok
    finally:
        messenger.close()


def test_a_topic_with_wildcards_is_refused_naming_the_field():
    with pytest.raises(InvalidArgumentError, match=r"messaging\.mqtt_topic: 'bats/#'"):
        build_messengers(MessagingConfig(mqtt_host="broker", mqtt_topic="bats/#"), "d")


def test_the_password_is_the_secret_the_section_names_and_never_logged(
    own_broker, topic, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    folder = secrets_dir(tmp_path, own_broker)
    (folder / "old_password").write_text("not-the-password")
    config = MessagingConfig(
        mqtt_host=own_broker.plain.host,
        mqtt_port=own_broker.plain.port,
        mqtt_topic=topic,
        mqtt_username=own_broker.username,
        mqtt_password_secret="old_password",
        mqtt_timeout_s=5,
    )
    [wrong] = build_messengers(config, "device-7", folder)
    assert "refused the connection" in wrong.send_message(message()).content
    wrong.close()
    [right] = build_messengers(
        config.model_copy(update={"mqtt_password_secret": "mqtt_password"}), "device-7", folder
    )
    assert right.send_message(message()).status is Status.SUCCESS
    assert right.check().ok
    right.close()
    assert own_broker.password not in caplog.text
    # A secret that is not there is named, with where it comes from, before anything is sent.
    with pytest.raises(InvalidArgumentError) as missing:
        build_messengers(config.model_copy(update={"mqtt_password_secret": "mqtt"}), "d", folder)
    assert str(missing.value).startswith(
        f"messaging.mqtt_password_secret: no secret 'mqtt' in {folder} (compose: MQTT_PASSWORD in "
        "compose/secrets.env"
    )
    # Without a user name no password is read: an anonymous broker needs no secret.
    anonymous = config.model_copy(update={"mqtt_username": "", "mqtt_password_secret": "mqtt"})
    [messenger] = build_messengers(anonymous, "d", folder)
    messenger.close()


def test_a_password_in_the_configuration_is_refused_naming_where_it_goes():
    with pytest.raises(ValidationError) as refused:
        MessagingConfig.model_validate({"mqtt_host": "h", "mqtt_password": "hunter2"})
    text = validation_message(refused.value, "program_config.messaging")  # as errors say it
    assert "hunter2" not in text
    assert text.startswith("program_config.messaging: Value error, mqtt_password is no longer a")
    assert "messaging.mqtt_password_secret" in text and "compose/secrets.env" in text
    with pytest.raises(ValidationError, match="mqtt_password_secret"):
        MessagingConfig(mqtt_password_secret="../etc/passwd")
