-- Every message a device sent, once: the id is the message's own (MQTT user property
-- message_id, HTTP Idempotency-Key), so a redelivery or a second replica inserts nothing.
CREATE TABLE messages (
    id          uuid PRIMARY KEY,
    device_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('detection', 'heartbeat', 'summary')),
    via         text NOT NULL CHECK (via IN ('mqtt', 'http')),
    sent_at     timestamptz,              -- the device's own time, when the payload has one
    received_at timestamptz NOT NULL,     -- when the hub got it
    stored_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    payload     jsonb NOT NULL
);
CREATE INDEX messages_device_received ON messages (device_id, received_at);

-- What could not be read, with why; a redelivery of one with an id is kept once.
CREATE TABLE rejected_messages (
    id          bigserial PRIMARY KEY,
    message_id  text,
    device_id   text,
    via         text NOT NULL,
    topic       text,
    reason      text NOT NULL,
    size_bytes  bigint NOT NULL,
    payload_head text NOT NULL,           -- the first KiB, as text with bad bytes replaced
    received_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX rejected_messages_once ON rejected_messages (message_id)
    WHERE message_id IS NOT NULL;

-- One row per detection in the detection messages, for queries by device, species, time, score.
CREATE TABLE detections (
    id             uuid PRIMARY KEY,      -- the detection's own id
    message_id     uuid NOT NULL REFERENCES messages (id),
    device_id      text NOT NULL,
    recording_id   uuid,
    model_name     text,
    detected_at    timestamptz NOT NULL,  -- the model output's time
    species        text,                  -- the value of the best 'species' tag
    score          double precision NOT NULL,
    tags           jsonb NOT NULL
);
CREATE INDEX detections_device_time ON detections (device_id, detected_at);
CREATE INDEX detections_species_time ON detections (species, detected_at);
CREATE INDEX detections_time ON detections (detected_at);

-- The device registry, kept by every message (last_seen) and the newest heartbeat.
CREATE TABLE devices (
    device_id         text PRIMARY KEY,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    last_heartbeat_at timestamptz,        -- the newest heartbeat's sent_at
    status            text,               -- its verdict: ok, degraded: ...
    metrics           jsonb,
    software_version  text,
    last_detection_at timestamptz
);

-- An alarm is an episode: open (closed_at NULL) at most once per device and kind.
CREATE TABLE alarms (
    id          bigserial PRIMARY KEY,
    device_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('silent', 'degraded', 'detections_stopped')),
    detail      text NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    notified_open_at  timestamptz,
    notified_close_at timestamptz,
    notify_error text
);
CREATE UNIQUE INDEX alarms_one_open ON alarms (device_id, kind) WHERE closed_at IS NULL;
