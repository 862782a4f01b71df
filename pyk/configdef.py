"""Value types of Kafka configuration keys (Kafka's ConfigDef), shared by the server keys
(pyk.config) and the topic keys (pyk.log.config).

Each parser takes the text of a value and returns the typed value, or raises ValueError with an
"expected ..., found ..." message that the caller prefixes with the key's name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

log = logging.getLogger("pyk.config")

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected an integer, found {text!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected an integer in [{lo}, {hi}], found {value}")
        return value

    return parse


def double_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"expected a number, found {text!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a number in [{lo}, {hi}], found {value}")
        return value

    return parse


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"expected true or false, found {text!r}")
    return lowered == "true"


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, found {value!r}")
        return value

    return parse


ALL_REPLICAS = "*"


def throttled_replicas(text: str) -> str:
    """`leader/follower.replication.throttled.replicas`: empty, `*`, or `partition:node` pairs
    separated by commas (Kafka's ThrottledReplicaListValidator)."""
    value = text.strip()
    if value in ("", ALL_REPLICAS):
        return value
    items = [item.strip() for item in value.split(",")]
    for item in items:
        partition, sep, node = item.partition(":")
        if not sep or not partition.strip().isdigit() or not node.strip().isdigit():
            raise ValueError(f"expected [partitionId]:[brokerId],[partitionId]:[brokerId],... or *, found {text!r}")
    return ",".join(items)


_KAFKA_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?(-IV\d+)?$")


def kafka_version(text: str) -> str:
    """A Kafka release as `message.format.version` took it in Kafka 3.x (0.10.2, 2.8, 3.0-IV1)."""
    value = text.strip()
    if not _KAFKA_VERSION.match(value):
        raise ValueError(f"expected a Kafka version such as 2.8 or 3.0-IV1, found {value!r}")
    return value


# Keys that Kafka 3.x accepted and Kafka 4.0 removed: the message format versions (KIP-724, formats
# v0/v1 are gone) and the down-conversion switches (KIP-896, no fetch down-conversion any more).
# Older tools and clients still set them, so pyk accepts them as no-ops instead of refusing them,
# describes them with their Kafka 3.x defaults, and logs one warning line per key set.
REMOVED_IN_KAFKA_4 = frozenset({"message.format.version", "message.downconversion.enable",
                                "log.message.format.version", "log.message.downconversion.enable"})


def warn_removed(names: Iterable[str], where: str) -> None:
    """Logs one warning per removed key among `names` (`where`: what they were set on)."""
    for name in sorted(set(names) & REMOVED_IN_KAFKA_4):
        log.warning("%s: %s was removed in Kafka 4.0; pyk accepts it and ignores it (no-op)", where, name)
