"""Clusters of pyk hosts coordinated through ZooKeeper (docs/cluster.md).

`zk` is a host's ZooKeeper session (registration, controller election, the controller's
elections, metadata changes, the state every shard receives); `placement` holds the controller's
pure decisions (replica placement, leader election).  The data plane of replication (leaders,
followers, ISR, high watermark) lives in pyk.server (partition.py, replica_fetcher.py).
"""
