-- The system of record: people, the catalog, on-sale schedules, orders, tickets, promo codes.
-- Money is integer minor units; times are timestamptz (UTC on the wire).

CREATE TYPE user_role AS ENUM ('admin', 'organizer', 'attendee');
CREATE TYPE event_status AS ENUM ('draft', 'published', 'cancelled', 'completed');
CREATE TYPE order_status AS ENUM ('pending', 'confirmed', 'refunded', 'failed');
CREATE TYPE ticket_status AS ENUM ('valid', 'used', 'cancelled', 'refunded');
CREATE TYPE discount_type AS ENUM ('percentage', 'fixed_amount');

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (email LIKE '%_@_%'),
    password_hash text,
    full_name     text NOT NULL DEFAULT '',
    role          user_role NOT NULL DEFAULT 'attendee',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE events (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organizer_id  uuid REFERENCES users (id) ON DELETE SET NULL,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    venue_name    text,
    venue_address text,
    venue_city    text,
    venue_country char(2),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz CHECK (ends_at IS NULL OR ends_at > starts_at),
    timezone      text NOT NULL DEFAULT 'UTC',
    currency      char(3) NOT NULL,
    status        event_status NOT NULL DEFAULT 'published',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Listings: upcoming events by date, optionally by city.
CREATE INDEX events_listing ON events (starts_at, status);
CREATE INDEX events_city ON events (lower(venue_city), starts_at);
CREATE INDEX events_organizer ON events (organizer_id, starts_at);

CREATE TABLE ticket_tiers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    position        integer NOT NULL DEFAULT 0,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description     text NOT NULL DEFAULT '',
    price           bigint NOT NULL CHECK (price >= 0),
    capacity        integer NOT NULL CHECK (capacity >= 0),
    per_order_limit integer CHECK (per_order_limit IS NULL OR per_order_limit > 0),
    sale_starts_at  timestamptz,
    sale_ends_at    timestamptz,
    CHECK (sale_ends_at IS NULL OR sale_starts_at IS NULL OR sale_ends_at > sale_starts_at),
    UNIQUE (event_id, name)
);
-- Availability: the tiers of an event still on sale.
CREATE INDEX ticket_tiers_availability ON ticket_tiers (event_id, sale_ends_at);

CREATE TABLE onsales (
    event_id         uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    opens_at         timestamptz NOT NULL,
    closes_at        timestamptz CHECK (closes_at IS NULL OR closes_at > opens_at),
    admit_per_minute integer NOT NULL CHECK (admit_per_minute > 0),
    max_active       integer CHECK (max_active IS NULL OR max_active > 0),
    hold_seconds     integer NOT NULL DEFAULT 600 CHECK (hold_seconds BETWEEN 30 AND 3600),
    paused           boolean NOT NULL DEFAULT false,
    -- The fair-start shuffle's seed, recorded when the pre-queue is shuffled (auditable).
    shuffle_seed     text,
    armed_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX onsales_opens ON onsales (opens_at);

CREATE TABLE promo_codes (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id       uuid REFERENCES events (id) ON DELETE CASCADE,  -- NULL: valid for all events
    code           text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{3,40}$'),
    discount_type  discount_type NOT NULL,
    -- percentage: whole percent 1..100; fixed_amount: minor units of the event's currency.
    discount_value bigint NOT NULL CHECK (discount_value > 0),
    max_uses       integer CHECK (max_uses IS NULL OR max_uses > 0),
    used_count     integer NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    valid_from     timestamptz,
    valid_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (discount_type <> 'percentage' OR discount_value <= 100),
    CHECK (max_uses IS NULL OR used_count <= max_uses),
    CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from)
);
CREATE UNIQUE INDEX promo_codes_code
    ON promo_codes (coalesce(event_id, '00000000-0000-0000-0000-000000000000'), upper(code));

CREATE TABLE orders (
    id                uuid PRIMARY KEY,  -- chosen at checkout, so the committer is idempotent
    event_id          uuid NOT NULL REFERENCES events (id),
    user_id           uuid REFERENCES users (id) ON DELETE SET NULL,  -- NULL: guest checkout
    email             text NOT NULL,
    name              text NOT NULL DEFAULT '',
    amount            bigint NOT NULL CHECK (amount >= 0),
    currency          char(3) NOT NULL,
    status            order_status NOT NULL DEFAULT 'pending',
    payment_intent_id text UNIQUE,
    hold_id           uuid,
    promo_code_id     uuid REFERENCES promo_codes (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    confirmed_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- Purchase history, for account holders and for guests by email.
CREATE INDEX orders_history ON orders (user_id, created_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX orders_email ON orders (lower(email), created_at DESC);
CREATE INDEX orders_event ON orders (event_id, status);

CREATE TABLE order_items (
    order_id   uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    tier_id    uuid NOT NULL REFERENCES ticket_tiers (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price bigint NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, tier_id)
);

CREATE TABLE tickets (
    id             uuid PRIMARY KEY,
    order_id       uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    event_id       uuid NOT NULL REFERENCES events (id),
    tier_id        uuid NOT NULL REFERENCES ticket_tiers (id),
    -- The signed QR payload; unique, and the check-in lookup key.
    qr_secret      text NOT NULL UNIQUE,
    attendee_name  text NOT NULL DEFAULT '',
    attendee_email text,
    status         ticket_status NOT NULL DEFAULT 'valid',
    checked_in_at  timestamptz,
    checked_in_by  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'used') = (checked_in_at IS NOT NULL))
);
CREATE INDEX tickets_order ON tickets (order_id);
-- Sold per tier (reconciliation, stats) and offline scanner downloads.
CREATE INDEX tickets_event_tier ON tickets (event_id, tier_id, status);
