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

-- A model output is immutable once stored (idempotent per recording and model), so it is also kept
-- whole, as its serialized acoustack.v1.ModelOutput: reading a recording's outputs is one fetch,
-- not a rebuild from thousands of rows. The detections table below serves the queries.
CREATE TABLE model_outputs (
    id            uuid PRIMARY KEY,
    recording_id  uuid NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    model_name    text NOT NULL,
    model_version text NOT NULL,
    created_at    timestamptz NOT NULL,
    document      bytea NOT NULL,
    UNIQUE (recording_id, model_name)
);
CREATE INDEX model_outputs_model_created_at ON model_outputs (model_name, created_at);

-- One row per detection, with the recording's start and the model copied in (both immutable) so that
-- time-range, model, score and tag queries need no join. Tags: [{"key", "value", "confidence"}].
CREATE TABLE detections (
    id                   uuid PRIMARY KEY,
    model_output_id      uuid NOT NULL REFERENCES model_outputs (id) ON DELETE CASCADE,
    recording_id         uuid NOT NULL,
    recording_started_at timestamptz NOT NULL,
    deployment_id        uuid NOT NULL,
    model_name           text NOT NULL,
    prediction_type      text NOT NULL CHECK (prediction_type IN ('presence', 'sequence', 'event')),
    start_time_s         double precision,
    end_time_s           double precision,
    low_freq_hz          double precision,
    high_freq_hz         double precision,
    detection_score      double precision NOT NULL CHECK (detection_score BETWEEN 0 AND 1),
    tags                 jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX detections_model_output ON detections (model_output_id);
CREATE INDEX detections_started_at ON detections (recording_started_at);
CREATE INDEX detections_model_started_at ON detections (model_name, recording_started_at);
CREATE INDEX detections_deployment_started_at ON detections (deployment_id, recording_started_at);
CREATE INDEX detections_score ON detections (detection_score);
CREATE INDEX detections_tags ON detections USING gin (tags jsonb_path_ops);

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
