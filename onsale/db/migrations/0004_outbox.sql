-- E-mail outbox (issue 11): mail to send, written in the same transaction as
-- the order (or refund, or lookup) it is about; `onsale mailer` claims due rows
-- with FOR UPDATE SKIP LOCKED, sends them, and marks them sent.
CREATE TABLE IF NOT EXISTS outbox (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,         -- 'order_confirmed', 'order_refunded', 'order_links', ...
    recipient       text NOT NULL,
    order_id        uuid,                  -- NULL for mail about no single order
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    message_id      text NOT NULL UNIQUE,  -- stable per message: a replay inserts nothing
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text
);
-- The mailer's claim: due, unsent rows, oldest first.
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (order_id) WHERE order_id IS NOT NULL;
