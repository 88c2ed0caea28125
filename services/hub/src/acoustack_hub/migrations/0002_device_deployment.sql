-- Where each device is: the deployment its newest heartbeat carried (the fleet map).
ALTER TABLE devices
    ADD COLUMN deployment_id   uuid,
    ADD COLUMN deployment_name text,
    ADD COLUMN latitude        double precision,
    ADD COLUMN longitude       double precision;
