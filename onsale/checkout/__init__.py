"""Orders, payments (Stripe), webhooks and the write-behind committer."""
