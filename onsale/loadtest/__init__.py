"""``onsale loadtest``: Locust scenarios (:mod:`.scenarios`) against a deployment, then the
invariants. The run is :mod:`.runner`; ``--chaos`` is :mod:`.reliability`."""
