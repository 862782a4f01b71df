"""ApiVersions, pyk against Apache Kafka: the version range of every API, the answer to a version
the broker does not know, and the checks of the v3 client software fields.

pyk implements a subset of Kafka's APIs, some not up to Kafka 4.1's newest version, and still
serves old versions Kafka 4 removed (KIP-896): the table below is that difference, asserted
exactly, so that a new API or version in either broker shows up here (and in
docs/compatibility.md, "ApiVersions").
"""

from __future__ import annotations

import struct
from typing import Any

from pyk.protocol import ApiKey
from tests.differential.conftest import Pair
from tests.differential.peer import Known, Peer

# api key -> (Kafka 4.1's range, pyk's range); None: not served.
RANGES_DIFFER: dict[int, tuple[tuple[int, int] | None, tuple[int, int] | None]] = {
    0: ((0, 13), (0, 9)),  # Produce: v10+ (KIP-890 TV2 / KIP-516 topic ids) not yet
    1: ((4, 18), (4, 12)),  # Fetch: v13+ (topic ids) not yet
    2: ((1, 10), (0, 10)),  # ListOffsets: v0 kept
    3: ((0, 13), (0, 12)),  # Metadata: v13 (REBOOTSTRAP_REQUIRED) not yet
    8: ((2, 9), (0, 9)),  # OffsetCommit: v0-1 kept
    9: ((1, 9), (0, 9)),  # OffsetFetch: v0 kept
    10: ((0, 6), (0, 4)),  # FindCoordinator: v5-6 (share groups) not yet
    16: ((0, 5), (0, 4)),  # ListGroups: v5 (type filter) not yet
    17: ((0, 1), (1, 1)),  # SaslHandshake: v0 (SASL without SaslAuthenticate framing) not served
    18: ((0, 4), (0, 3)),  # ApiVersions: v4 not yet
    19: ((2, 7), (0, 7)),  # CreateTopics: v0-1 kept
    20: ((1, 6), (0, 6)),  # DeleteTopics: v0 kept
    22: ((0, 5), (0, 4)),  # InitProducerId: v5 (KIP-890 TV2) not yet
    23: ((2, 4), (0, 4)),  # OffsetForLeaderEpoch: v0-1 kept
    26: ((0, 5), (0, 4)),  # EndTxn: v5 (KIP-890 TV2) not yet
    27: ((1, 1), (0, 1)),  # WriteTxnMarkers: v0 kept
    28: ((0, 5), (0, 4)),  # TxnOffsetCommit: v5 (KIP-890 TV2) not yet
    32: ((1, 4), (0, 4)),  # DescribeConfigs: v0 kept
    35: ((1, 4), (0, 4)),  # DescribeLogDirs: v0 kept
    60: ((0, 2), (0, 1)),  # DescribeCluster: v2 (endpoint type) not yet
    66: ((0, 2), (0, 1)),  # ListTransactions: v2 (transactional id pattern) not yet
}
# APIs pyk does not serve at all (log-dir moves, delegation tokens, KRaft quorum and features,
# share groups, client metrics): Kafka's ranges.
KAFKA_ONLY: dict[int, tuple[int, int]] = {
    34: (1, 2), 38: (1, 3), 39: (1, 2), 40: (1, 2), 41: (1, 3),
    55: (0, 2), 57: (0, 2), 64: (0, 0), 74: (0, 1), 76: (1, 1), 77: (1, 1), 78: (1, 1), 79: (1, 1),
    80: (0, 0), 81: (0, 0), 83: (0, 0), 84: (0, 0), 85: (0, 0), 86: (0, 0), 87: (0, 0), 90: (0, 0), 91: (0, 0),
    92: (0, 0),
}  # fmt: skip


def ranges(p: Peer, version: int) -> dict[str, Any]:
    body = {"client_software_name": "pyk-differential", "client_software_version": "1.0"} if version >= 3 else {}
    resp = p.call(ApiKey.API_VERSIONS, version, body)
    resp["api_keys"] = {k["api_key"]: (k["min_version"], k["max_version"]) for k in resp["api_keys"]}
    for key in [*KAFKA_ONLY, *RANGES_DIFFER]:
        resp["api_keys"].setdefault(key, None)
    return resp


def test_api_version_ranges(pair: Pair) -> None:
    known = [Known(("api_keys", key), kafka, pyk) for key, (kafka, pyk) in RANGES_DIFFER.items()]
    known += [Known(("api_keys", key), kafka, None) for key, kafka in KAFKA_ONLY.items()]
    # Kafka's KRaft feature levels (metadata.version, transaction.version, group.version, ...):
    # pyk has no finalized features.
    known += [Known(("supported_features",), [{"name": "metadata.version", "min_version": 7, "max_version": 27}], []),
              Known(("finalized_features",), "<levels>", []),
              Known(("finalized_features_epoch",), "<epoch>", -1)]

    def scenario(p: Peer) -> Any:
        resp = ranges(p, 3)
        if p.name == "kafka":
            assert resp["finalized_features_epoch"] >= 0 and resp["finalized_features"]
            resp["finalized_features"], resp["finalized_features_epoch"] = "<levels>", "<epoch>"
        return resp

    pair.same(scenario, known=known)


def test_api_versions_v0_and_unknown_version(pair: Pair) -> None:
    def scenario(p: Peer) -> Any:
        unknown_version = p.conn()
        header = struct.pack(">hhih", ApiKey.API_VERSIONS, 99, 99, 3) + b"pyk\x00"  # header v2: no tagged fields
        unknown_version.sock.sendall(struct.pack(">i", len(header)) + header)
        # Kafka answers a version it does not know with a v0 response: UNSUPPORTED_VERSION and
        # its ranges, for the client to pick one.
        answer = unknown_version.recv(ApiKey.API_VERSIONS, 0, 99)
        return {"v0_error": ranges(p, 0)["error_code"], "v99_error": answer["error_code"],
                "v99_lists_api_versions": any(k["api_key"] == 18 for k in answer["api_keys"])}

    pair.same(scenario)


def test_api_versions_bad_client_software(pair: Pair) -> None:
    def scenario(p: Peer) -> Any:
        out = {}
        for label, name, version in (("bad_name", "pyk differential!", "1.0"), ("bad_version", "pyk", "1.0 beta"),
                                     ("empty", "", "")):  # fmt: skip
            conn = p.fresh()
            try:
                body = {"client_software_name": name, "client_software_version": version}
                resp = conn.recv(ApiKey.API_VERSIONS, 3, conn.send(ApiKey.API_VERSIONS, 3, body))
                out[label] = (resp["error_code"], len(resp["api_keys"]))
            finally:
                conn.close()
        return out

    pair.same(scenario)
