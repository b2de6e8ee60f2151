"""The HTTP gateway: a Litestar app built by :func:`onsale.gateway.app.create_app`."""
