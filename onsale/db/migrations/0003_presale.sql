-- Running events (issue 10): a presale's opening, stored before presales exist.
ALTER TABLE onsales ADD COLUMN IF NOT EXISTS presale_opens_at timestamptz
    CHECK (presale_opens_at IS NULL OR presale_opens_at < opens_at);
