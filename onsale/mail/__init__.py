"""E-mail: the Postgres outbox, the mailer that drains it, message templates."""
