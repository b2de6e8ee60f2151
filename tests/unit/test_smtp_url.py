"""``ONSALE_SMTP_URL`` as the mailer reads it: host, port, credentials and TLS."""

from __future__ import annotations

from onsale.mail.mailer import SmtpTarget, parse_smtp_url


def test_smtp_urls() -> None:
    assert parse_smtp_url("smtp://mail:2525") == SmtpTarget("mail", 2525)
    assert parse_smtp_url("smtp://u%40x:p%3Aw@mail:587?starttls=1") == SmtpTarget(
        "mail", 587, "u@x", "p:w", tls=False, starttls=True
    )
    assert parse_smtp_url("smtps://mail") == SmtpTarget("mail", 465, tls=True)
