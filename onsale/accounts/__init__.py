"""People who run sales: users and roles, passwords, sessions, API tokens, event staff, and
the one guard that decides who may do what (:mod:`onsale.accounts.guard`)."""
