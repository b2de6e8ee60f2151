"""The Locust scenarios of ``onsale loadtest`` (and the baseline of ``onsale bench report``),
shipped in the package so that ``pip install onsale[load]`` can run them without a checkout.

Each module is a locustfile, loaded by Locust from :data:`DIRECTORY` in a process of its
own (Locust's gevent patching must never reach onsale's asyncio processes): ``stampede``,
``last_tickets``, ``steady``, and ``bare`` (closed-loop GET /bare); what buyers do is in
``common``.
"""

from pathlib import Path

#: Where the locustfiles are, for ``locust -f``.
DIRECTORY = Path(__file__).resolve().parent
