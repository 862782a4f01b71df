"""The shard balancer's plan (pyk.server.balancer.plan_moves): which partitions move where."""

from __future__ import annotations

from pyk.server.balancer import plan_moves, skew


def test_equal_partitions_on_one_shard_are_split_evenly() -> None:
    rates = {("t", p): 100.0 for p in range(8)}
    plan = plan_moves(rates, {tp: 0 for tp in rates}, 2, 20)
    assert len(plan.moves) == 4 and {(m.source, m.target) for m in plan.moves} == {(0, 1)}
    assert plan.before == [800.0, 0.0] and plan.after == [400.0, 400.0] and skew(plan.after) == 0


def test_no_move_below_the_threshold_or_that_would_only_swap_the_shards() -> None:
    assert not plan_moves({("t", 0): 110.0, ("t", 1): 100.0}, {("t", 0): 0, ("t", 1): 1}, 2, 20).moves
    # One hot partition alone: moving it would make the other shard the hot one.
    assert not plan_moves({("t", 0): 500.0}, {("t", 0): 0}, 2, 20).moves


def test_the_partition_that_best_halves_the_gap_moves_and_internal_topics_stay() -> None:
    rates = {("__consumer_offsets", 0): 600.0, ("t", 0): 300.0, ("t", 1): 50.0, ("u", 0): 0.0}
    plan = plan_moves(rates, dict.fromkeys(rates, 0), 3, 20)
    assert [(m.topic, m.partition, m.target) for m in plan.moves] == [("t", 0, 1), ("t", 1, 2)]
    assert plan.after == [600.0, 300.0, 50.0]
