"""One module per Kafka API, named like the API in snake_case.

Each declares API_KEY, MIN_VERSION, MAX_VERSION and `handle(ctx, services, request)` returning
the response body (a dict), None (no response), or an awaitable of either.  Handlers validate,
call the log or the metadata store, and turn failures into per-partition error codes with
`error_for` below; they never touch sockets.
"""

from __future__ import annotations

from pyk.errors import error_for

__all__ = ["error_for"]
