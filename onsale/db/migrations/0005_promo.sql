-- Promo codes (issue 12): a code may be limited to some tiers, and an order records the
-- discount it was given (the code itself through orders.promo_code_id).
ALTER TABLE promo_codes ADD COLUMN IF NOT EXISTS tier_ids uuid[];
ALTER TABLE orders ADD COLUMN IF NOT EXISTS discount bigint NOT NULL DEFAULT 0
    CHECK (discount >= 0);
-- Promo effectiveness in reports: the orders of one code.
CREATE INDEX IF NOT EXISTS orders_promo ON orders (promo_code_id) WHERE promo_code_id IS NOT NULL;
