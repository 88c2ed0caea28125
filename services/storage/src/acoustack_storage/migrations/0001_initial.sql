-- The first schema: deployments, recordings, model outputs with their detections, the outbox.
-- Times are timestamptz (UTC on the wire); ids are UUIDs made where the record is born.

CREATE TABLE deployments (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
-- One active deployment at a time, enforced by the database itself.
CREATE UNIQUE INDEX deployments_one_active ON deployments ((true)) WHERE ended_at IS NULL;

CREATE TABLE recordings (
    id                    uuid PRIMARY KEY,
    deployment_id         uuid NOT NULL REFERENCES deployments (id),
    device_id             text NOT NULL,
    source_id             text NOT NULL,
    path                  text NOT NULL,
    started_at            timestamptz NOT NULL,
    duration_s            double precision NOT NULL,
    capture_samplerate_hz integer NOT NULL,
    channels              integer NOT NULL,
    time_expansion        double precision NOT NULL,
    status                text NOT NULL CHECK (status IN ('temporary', 'saved', 'deleted', 'failed')),
    failure_reason        text NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
-- A file on disk belongs to one live recording; a deleted recording's old path may be reused.
CREATE UNIQUE INDEX recordings_live_path ON recordings (path) WHERE status <> 'deleted';
CREATE INDEX recordings_path ON recordings (path);
CREATE INDEX recordings_started_at ON recordings (started_at, id);
CREATE INDEX recordings_deployment_started_at ON recordings (deployment_id, started_at);
CREATE INDEX recordings_status_started_at ON recordings (status, started_at);

-- A model output is immutable once stored (idempotent per recording and model), so it is kept whole as
-- one row: its serialized acoustack.v1.ModelOutput, plus the columns queries narrow on (the recording's
-- start and deployment, the model, the score range, every tag key and key=value pair of its detections).
-- One row per output instead of one per detection keeps a 200-detection write to a single insert;
-- detection queries narrow here by index and finish on the decoded documents.
CREATE TABLE model_outputs (
    id                   uuid PRIMARY KEY,
    recording_id         uuid NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    model_name           text NOT NULL,
    model_version        text NOT NULL,
    created_at           timestamptz NOT NULL,
    recording_started_at timestamptz NOT NULL,
    deployment_id        uuid NOT NULL,
    detection_count      integer NOT NULL,
    min_detection_score  double precision,
    max_detection_score  double precision,
    -- 'key' and 'key' || chr(31) || 'value' for every detection tag.
    tag_index            text[] NOT NULL,
    -- lz4: several times faster than the default pglz on every write, for a little more disk.
    document             bytea COMPRESSION lz4 NOT NULL,
    UNIQUE (recording_id, model_name)
);
CREATE INDEX model_outputs_started_at ON model_outputs (recording_started_at, id);
CREATE INDEX model_outputs_model_started_at ON model_outputs (model_name, recording_started_at);
CREATE INDEX model_outputs_deployment_started_at ON model_outputs (deployment_id, recording_started_at);
CREATE INDEX model_outputs_max_score ON model_outputs (max_detection_score);
CREATE INDEX model_outputs_tag_index ON model_outputs USING gin (tag_index);

-- The outbox: a message stays unsent until a response with status success is stored for it.
CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    content         text NOT NULL,
    created_at      timestamptz NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    model_output_id uuid REFERENCES model_outputs (id) ON DELETE SET NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    sent_at         timestamptz
);
CREATE INDEX messages_unsent ON messages (priority DESC, created_at) WHERE sent_at IS NULL;

-- Every send attempt's response is kept.
CREATE TABLE responses (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    status      text NOT NULL CHECK (status IN ('success', 'failed', 'error', 'timeout')),
    content     text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX responses_message ON responses (message_id, received_at);
