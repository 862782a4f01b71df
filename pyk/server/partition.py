"""Partition: one replicated partition on this node, as leader or follower (Kafka's Partition).

Only in a cluster (docs/cluster.md); a single host keeps no such state.  As leader it tracks each
follower's fetch position (its log end offset, from the offsets it fetches at) and when the
follower was last caught up, which move the high watermark (the smallest log end offset of the
ISR) and decide ISR changes: a follower out of the ISR whose log end reached the high watermark
joins it; one not caught up for replica.lag.time.max.ms leaves it.  The ReplicaManager writes
ISR changes through ZooKeeper and applies them when the write succeeds; the state here follows
the snapshots of the cluster state.  acks=all produce requests wait here until the high
watermark passes their records.

Owned by the shard's event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pyk.errors import ErrorCode
from pyk.log import PartitionLog


@dataclass(slots=True)
class FollowerState:
    """What the leader knows of one follower (Kafka's Replica)."""

    log_end_offset: int = -1  # unknown until it fetches
    last_caught_up_ms: int = 0
    last_fetch_leader_end: int = -1  # the leader's log end at the follower's previous fetch
    last_fetch_ms: int = 0


class Partition:
    """Replication state of one partition on this node (see module docstring)."""

    def __init__(self, plog: PartitionLog, node_id: int) -> None:
        self.log = plog
        self.node_id = node_id
        self.leader = -1
        self.leader_epoch = -1
        self.replicas: list[int] = []
        self.isr: list[int] = []
        self.version = -1  # ZooKeeper version of the partition state the ISR came from
        self.followers: dict[int, FollowerState] = {}
        self.isr_change_pending = False
        # A follower's high watermark is the leader's only once a fetch answer of this leader
        # epoch carried one at least as high (a restarted follower starts at its log end): until
        # then consumers reading from it (KIP-392) get OFFSET_NOT_AVAILABLE.
        self.high_watermark_known = False
        self._waiters: list[tuple[int, asyncio.Future[ErrorCode]]] = []  # (required high watermark, answer)

    @property
    def is_leader(self) -> bool:
        return self.leader == self.node_id

    def update_state(self, leader: int, leader_epoch: int, replicas: list[int], isr: list[int], version: int,
                     now_ms: int) -> bool:
        """Applies the partition's state from a snapshot; True when this node just became its
        leader or a new leader epoch began (followers then start over from what they fetch)."""
        was_leader, old_epoch, old_leader = self.is_leader, self.leader_epoch, self.leader
        if leader != old_leader or leader_epoch != old_epoch:
            self.high_watermark_known = False
        self.leader, self.leader_epoch, self.replicas = leader, leader_epoch, list(replicas)
        if version >= self.version or leader_epoch != old_epoch:
            self.isr, self.version = list(isr), version
        if not self.is_leader:
            self.followers = {}
            self.fail_waiters(ErrorCode.NOT_LEADER_OR_FOLLOWER)
            return False
        started = not was_leader or leader_epoch != old_epoch
        if started:
            # Kafka resets the followers on becoming leader: caught up "now", position unknown.
            self.followers = {r: FollowerState(last_caught_up_ms=now_ms) for r in replicas if r != self.node_id}
        else:
            # A reassignment changes the replicas: a removed one is no follower any more (its
            # fetches, still in flight, must not bring it back into the ISR).
            self.followers = {r: f for r, f in self.followers.items() if r in replicas}
            for r in replicas:
                if r != self.node_id and r not in self.followers:
                    self.followers[r] = FollowerState(last_caught_up_ms=now_ms)
        return started

    # Leader ---------------------------------------------------------------------------------------
    def update_follower(self, replica: int, fetch_offset: int, now_ms: int) -> None:
        """A follower fetched at `fetch_offset`, its log end offset (Kafka's
        updateFollowerFetchState): caught up if it reached the leader's log end now, or the one
        of its previous fetch."""
        state = self.followers.get(replica)
        if state is None:
            return
        leader_end = self.log.log_end_offset
        if fetch_offset >= leader_end:
            state.last_caught_up_ms = now_ms
        elif fetch_offset >= state.last_fetch_leader_end:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = fetch_offset
        state.last_fetch_leader_end = leader_end
        state.last_fetch_ms = now_ms

    def high_watermark_target(self) -> int:
        """The smallest log end offset of the ISR (followers not heard from count as 0)."""
        hw = self.log.log_end_offset
        for replica in self.isr:
            if replica != self.node_id:
                state = self.followers.get(replica)
                hw = min(hw, state.log_end_offset if state is not None else 0)
        return hw

    def expand_candidate(self, replica: int) -> bool:
        """A follower outside the ISR whose log end reached the high watermark and this
        leader's epoch (Kafka's isFollowerInSync)."""
        state = self.followers.get(replica)
        if state is None or replica in self.isr:
            return False
        epoch_start = next((o for e, o in self.log.epoch_cache.entries if e == self.leader_epoch), 0)
        return state.log_end_offset >= max(self.log.high_watermark, epoch_start)

    def lagging(self, now_ms: int, max_lag_ms: int) -> list[int]:
        """ISR followers not caught up for more than max_lag_ms (Kafka's getOutOfSyncReplicas)."""
        return [r for r in self.isr if r != self.node_id and r in self.followers
                and now_ms - self.followers[r].last_caught_up_ms > max_lag_ms]

    # acks=all ---------------------------------------------------------------------------------------
    def wait_for(self, required: int, loop: asyncio.AbstractEventLoop, min_isr: int) -> asyncio.Future[ErrorCode]:
        """Resolves once the high watermark reaches `required` (Kafka's DelayedProduce):
        NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR then is below min.insync.replicas."""
        future: asyncio.Future[ErrorCode] = loop.create_future()
        self._waiters.append((required, future))
        self.complete_waiters(min_isr)
        return future

    def waiting(self) -> int:
        """acks=all appends still waiting here (the Produce purgatory's watchers of this partition)."""
        return sum(not future.done() for _, future in self._waiters)

    def complete_waiters(self, min_isr: int) -> None:
        if not self._waiters:
            return
        hw = self.log.high_watermark
        code = ErrorCode.NONE if len(self.isr) >= min_isr else ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        waiting = []
        for required, future in self._waiters:
            if future.done():
                continue
            if hw >= required:
                future.set_result(code)
            else:
                waiting.append((required, future))
        self._waiters = waiting

    def fail_waiters(self, code: ErrorCode) -> None:
        for _, future in self._waiters:
            if not future.done():
                future.set_result(code)
        self._waiters = []
