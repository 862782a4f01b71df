"""The handler table: ApiVersions advertises exactly the implemented APIs, each within the
version range the protocol specs can encode and decode."""

from __future__ import annotations

from pyk.protocol import SUPPORTED
from pyk.server.dispatch import HANDLERS, supported_versions


def test_every_handler_range_is_covered_by_a_spec() -> None:
    for key, module in HANDLERS.items():
        low, high = SUPPORTED[key]
        assert low <= module.MIN_VERSION <= module.MAX_VERSION <= high, module.__name__


def test_api_versions_lists_the_handler_table() -> None:
    advertised = {key: (lo, hi) for key, lo, hi in supported_versions()}
    assert advertised == {key: (m.MIN_VERSION, m.MAX_VERSION) for key, m in HANDLERS.items()}
