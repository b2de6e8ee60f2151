-- Accounts and roles: staff at the door, disabled users, personal API tokens, event staff.
-- Sessions are not here: they live in Redis with a TTL (onsale/accounts/sessions.py).

-- ALTER TYPE ... ADD VALUE cannot be used in the transaction that adds it; nothing below does.
ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'staff';

ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- sha256 of the token (32 random bytes): a high-entropy secret needs no slow hash.
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);

CREATE TABLE event_staff (
    event_id   uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX event_staff_user ON event_staff (user_id);
