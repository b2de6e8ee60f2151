-- The door scanner: the gate a ticket was checked in at, and a log of every scan (online
-- and synced) with its gate and device, so that the organizer's dashboard can flag
-- repeated scans of one ticket and bursts from one device.

ALTER TABLE tickets ADD COLUMN checked_in_gate text;

CREATE TABLE checkin_scans (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- NULL: the code was not a ticket at all.
    ticket_id    uuid,
    result       text        NOT NULL,
    gate         text,
    device       text,
    offline      boolean     NOT NULL DEFAULT false,
    scanned_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX checkin_scans_event_time ON checkin_scans (event_id, scanned_at);
CREATE INDEX checkin_scans_event_recorded ON checkin_scans (event_id, recorded_at);
