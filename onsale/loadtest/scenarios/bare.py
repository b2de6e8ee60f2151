"""Baselines for ``onsale bench report``: closed-loop GET /bare, as fast as Locust can.

Against the bare Litestar app (onsale/bench/bare.py) it measures what the server stack
costs without onsale; against the report's canned-response server (which answers any
path with fixed bytes) it measures the ceiling of the Locust generator itself.
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task


class BareUser(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = 30.0
    network_timeout = 60.0

    @task
    def bare(self) -> None:
        self.client.get("/bare", name="GET /bare")
