"""``onsale preflight``: a deployment checked the way it will run, before the doors open.

Every check reads (never writes) the services named by the same settings as ``onsale
serve``: Redis, Postgres, Stripe, the clocks, the signing key and its public copy, one
event with ``--event``, and SMTP. Each prints one line, PASS, WARN or FAIL, with what to
do; any FAIL makes the exit code non-zero. The whole run answers within
:data:`onsale.preflight.runner.DEADLINE_S`.
"""
