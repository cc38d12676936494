-- schema_v42: coupons become a real foreign key, every order needs a shipping address,
-- e-mail addresses are unique per tenant, legacy amounts become integers, payments can no
-- longer be negative, events get a trace id and an index for the new activity feed.
--
-- Runs per tenant schema (search_path = the tenant), file executed as `psql -f` would.

SET lock_timeout = '3s';
SET statement_timeout = '5min';

-- Discounts, tracked per order. Constant default: no table rewrite on PostgreSQL 11+.
ALTER TABLE orders ADD COLUMN discount_cents bigint NOT NULL DEFAULT 0;

-- Coupons: orders.coupon_id always meant coupons.id; make it a foreign key.
ALTER TABLE orders
    ADD CONSTRAINT orders_coupon_id_fkey FOREIGN KEY (coupon_id) REFERENCES coupons (id);

-- Every order must now carry a shipping address.
ALTER TABLE orders ALTER COLUMN shipping_address SET NOT NULL;

-- One account per e-mail address.
CREATE UNIQUE INDEX users_email_key ON users (email);

-- legacy_amount was free text holding digits; store it as an integer.
ALTER TABLE orders ALTER COLUMN legacy_amount TYPE integer USING legacy_amount::integer;

-- Payments are never negative (safe two-step: NOT VALID, then VALIDATE).
ALTER TABLE payments
    ADD CONSTRAINT payments_amount_cents_check CHECK (amount_cents >= 0) NOT VALID;
ALTER TABLE payments VALIDATE CONSTRAINT payments_amount_cents_check;

-- Every event gets a trace id for the new tracing pipeline. gen_random_uuid() is volatile:
-- PostgreSQL rewrites the whole table under ACCESS EXCLUSIVE, so this is only acceptable where
-- events is small (the gate estimates it per shard).
ALTER TABLE events ADD COLUMN trace_id uuid DEFAULT gen_random_uuid();

-- Activity feed lookups by kind.
CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);
