-- The device's identity, owned by storage: one row at most (the CHECK on a constant key). Every
-- service learns the id from here (Store.GetDevice); storage also keeps a copy in its data volume,
-- so losing either the database or that volume keeps the id.
CREATE TABLE device (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    device_id text NOT NULL CHECK (length(device_id) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);
