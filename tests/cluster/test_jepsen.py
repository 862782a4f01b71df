"""The Jepsen-style history check (tests/cluster/jepsen.py): three idempotent acks=all producers
over three partitions (replication.factor=3, min.insync.replicas=2) while a nemesis kills,
pauses and (in network namespaces, where they can be made) partitions random hosts; no
acknowledged value may be lost, duplicated, moved or reordered.  ~30 s of faults in the suite,
5 minutes with `-m soak`."""

from __future__ import annotations

import random

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.jepsen import Nemesis, Producers, check
from tests.cluster.netns import Network, namespaces_available

PARTITIONS = 3


def _run(request: pytest.FixtureRequest, topic: str, duration: float) -> None:
    network: Network | None = None
    if namespaces_available() is None:
        network = request.getfixturevalue("network")
        cluster: Cluster = request.getfixturevalue("netns_cluster_factory")()
    else:  # kill and pause only
        cluster = request.getfixturevalue("cluster_factory")(hosts=3)
    cluster.create_topic(topic, partitions=PARTITIONS, min_insync_replicas=2)
    producers = Producers(cluster.bootstrap, topic, PARTITIONS)
    seed = random.randrange(2**32)
    print(f"nemesis seed {seed}")  # the same seed replays the same fault schedule
    nemesis = Nemesis(cluster, network, topic, duration, seed)
    try:
        cluster.wait_for("values acknowledged before the first fault", lambda: len(producers.acks) >= 300, 60)
        nemesis.run()
    finally:
        nemesis.recover(120)
        producers.stop()
    report = check(cluster, topic, PARTITIONS, producers, nemesis.faults)
    print(report)
    assert nemesis.faults, "no fault injected"
    assert report.acked > 0
    assert report.valid, f"{report}\nlost {report.lost[:10]} duplicated {report.duplicated[:10]} " \
                         f"moved {report.moved[:10]} reordered {report.reordered[:10]}"


def test_no_acknowledged_value_is_lost_under_random_faults(request: pytest.FixtureRequest, topic: str) -> None:
    _run(request, topic, 30)


@pytest.mark.soak
@pytest.mark.timeout(900)  # 5 minutes of faults, then recovery and the read-back
def test_no_acknowledged_value_is_lost_under_random_faults_soak(request: pytest.FixtureRequest, topic: str) -> None:
    _run(request, topic, 300)
