"""Value types of Kafka configuration keys (Kafka's ConfigDef), shared by the server keys
(pyk.config) and the topic keys (pyk.log.config).

Each parser takes the text of a value and returns the typed value, or raises ValueError with an
"expected ..., found ..." message that the caller prefixes with the key's name.
"""

from __future__ import annotations

from collections.abc import Callable

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
