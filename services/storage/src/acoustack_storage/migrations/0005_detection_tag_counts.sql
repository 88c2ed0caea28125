-- How many of each output's detections are of each tag value (for each tag key, a detection
-- counts once, under its most confident value of that key: "the species it is"), with the
-- columns activity charts group by. Postgres sums these into detections per hour or per day per
-- species without decoding a document. Filled when an output is stored; 0006 fills it for the
-- outputs stored before.
CREATE TABLE detection_tag_counts (
    model_output_id      uuid NOT NULL REFERENCES model_outputs (id) ON DELETE CASCADE,
    recording_started_at timestamptz NOT NULL,
    deployment_id        uuid NOT NULL,
    model_name           text NOT NULL,
    tag_key              text NOT NULL,
    tag_value            text NOT NULL,
    detections           integer NOT NULL CHECK (detections > 0),
    PRIMARY KEY (model_output_id, tag_key, tag_value)
);
CREATE INDEX detection_tag_counts_key_started_at
    ON detection_tag_counts (tag_key, recording_started_at) INCLUDE (tag_value, detections);
