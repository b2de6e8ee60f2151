-- Presales (issue 12): access codes, generated in bulk per event. Only a digest of each code
-- is kept (sha256 over the event id and the code: codes carry 60 random bits, so a plain
-- hash suffices); Redis holds the live copy and the uses (onsale/queue/access.py), and
-- arming or `onsale recover` loads them from here.
CREATE TABLE IF NOT EXISTS access_codes (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id   uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- One generation request: the console lists codes by batch.
    batch_id   uuid NOT NULL,
    code_hash  text NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    max_uses   integer NOT NULL CHECK (max_uses > 0),
    -- NULL: every tier; else a presale admission by this code may hold only these.
    tier_ids   uuid[],
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, code_hash)
);
CREATE INDEX IF NOT EXISTS access_codes_batch ON access_codes (event_id, batch_id);
