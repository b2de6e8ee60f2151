-- The bot tax (issue 15, item 4): an event's proof-of-work difficulty on joining its queue
-- (ALTCHA's maxnumber: the largest counter a browser may have to reach). NULL: the gateways'
-- default (ONSALE_POW_DIFFICULTY); 0: none.
ALTER TABLE onsales ADD COLUMN IF NOT EXISTS pow_difficulty integer
    CHECK (pow_difficulty IS NULL OR pow_difficulty BETWEEN 0 AND 100000000);
