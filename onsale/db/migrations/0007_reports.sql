-- Reports (issue 13): a read model apart from the write path. The committer keeps the
-- rollups (onsale/reports/rollup.py); the reports read them and a few indexed queries of
-- orders and tickets, never Redis. Minutes are date_bin('1 minute', ...) from the epoch of
-- 2000-01-01 UTC, so they are the same whatever the session's time zone.

-- Sales per event per minute of sale (an order's confirmed_at, else its created_at):
-- confirmed orders, their tickets, revenue and discounts; refunded orders and amounts.
CREATE TABLE report_sales (
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    minute          timestamptz NOT NULL,
    orders          integer NOT NULL DEFAULT 0,
    tickets         integer NOT NULL DEFAULT 0,
    revenue         bigint NOT NULL DEFAULT 0,
    discount        bigint NOT NULL DEFAULT 0,
    refunded_orders integer NOT NULL DEFAULT 0,
    refunded        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, minute)
);
-- The platform report over a date range.
CREATE INDEX report_sales_minute ON report_sales (minute);

-- Confirmed tickets and their value (before order-level discounts) per tier per minute.
CREATE TABLE report_tier_sales (
    event_id uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    minute   timestamptz NOT NULL,
    tier_id  uuid NOT NULL,
    tickets  integer NOT NULL DEFAULT 0,
    revenue  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, minute, tier_id)
);

-- The waiting room's and checkout's counters (cumulative, as Redis had them) per minute,
-- recorded by the committer at commit time.
CREATE TABLE report_funnel (
    event_id  uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    minute    timestamptz NOT NULL,
    joined    bigint NOT NULL DEFAULT 0,
    admitted  bigint NOT NULL DEFAULT 0,
    held      bigint NOT NULL DEFAULT 0,
    checkouts bigint NOT NULL DEFAULT 0,
    paid      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, minute)
);

-- Every CSV export: who, what, when, and how many rows went out (set when the stream ends;
-- completed is false when the download was cut off).
CREATE TABLE export_audit (
    id          bigserial PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    actor       text NOT NULL,
    event_id    uuid REFERENCES events (id) ON DELETE SET NULL,
    kind        text NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}',
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    rows        bigint,
    completed   boolean NOT NULL DEFAULT false
);
CREATE INDEX export_audit_event ON export_audit (event_id, started_at DESC);

-- The rollup's recount of the minutes a batch touched, by time of sale.
CREATE INDEX orders_sale_time ON orders (event_id, (coalesce(confirmed_at, created_at)));
-- orders.csv by date range.
CREATE INDEX orders_event_created ON orders (event_id, created_at);
-- Promo codes in an event's report.
CREATE INDEX orders_event_promo ON orders (event_id, promo_code_id) WHERE promo_code_id IS NOT NULL;
-- Check-ins per quarter hour.
CREATE INDEX tickets_checked_in ON tickets (event_id, checked_in_at) WHERE checked_in_at IS NOT NULL;
