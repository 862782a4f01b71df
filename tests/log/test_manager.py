"""LogManager: placement, load, checkpoints, clean-shutdown marker, delete, config updates."""

from __future__ import annotations

import os

import pytest

from pyk.errors import ErrorCode, KafkaError
from pyk.log import LogManager
from tests.log.conftest import BASE_TS, batch, read_all, small_config


@pytest.fixture
def dirs(tmp_path: object) -> list[str]:
    return [os.path.join(str(tmp_path), "a"), os.path.join(str(tmp_path), "b")]


def test_create_place_append_close_load(dirs: list[str]) -> None:
    manager = LogManager(dirs, small_config())
    manager.load()
    for p in range(4):
        manager.create("orders", p)
    manager.create("my-topic.v1", 0)
    assert sorted(os.listdir(dirs[0])) == ["my-topic.v1-0", "orders-0", "orders-2"]
    assert sorted(os.listdir(dirs[1])) == ["orders-1", "orders-3"]
    plog = manager.get("orders", 1)
    assert manager.create("orders", 1) is plog  # get-or-create
    for _ in range(20):
        plog.append(batch(3), BASE_TS)
    manager.get("my-topic.v1", 0).append(batch(1), BASE_TS)
    plog.delete_records_before(7)
    manager.close()
    for d in dirs:
        assert os.path.exists(os.path.join(d, ".kafka_cleanshutdown"))
    with open(os.path.join(dirs[1], "recovery-point-offset-checkpoint")) as fh:
        assert fh.read() == "0\n2\norders 1 60\norders 3 0\n"
    with open(os.path.join(dirs[1], "log-start-offset-checkpoint")) as fh:
        assert fh.read() == "0\n2\norders 1 7\norders 3 0\n"
    with open(os.path.join(dirs[0], "recovery-point-offset-checkpoint")) as fh:
        assert fh.read() == "0\n3\nmy-topic.v1 0 1\norders 0 0\norders 2 0\n"

    again = LogManager(dirs, small_config())
    again.load()
    for d in dirs:
        assert not os.path.exists(os.path.join(d, ".kafka_cleanshutdown")), "marker removed once loaded"
    assert sorted(tp for tp in again.logs) == [("my-topic.v1", 0)] + [("orders", p) for p in range(4)]
    reloaded = again.get("orders", 1)
    assert (reloaded.log_start_offset, reloaded.log_end_offset, reloaded.recovery_point) == (7, 60, 60)
    assert read_all(reloaded)[0] == (6, 8)
    assert again.get("my-topic.v1", 0).log_end_offset == 1
    assert again.get("nope", 0) is None
    again.close()


def test_delete_renames_then_removes(dirs: list[str]) -> None:
    manager = LogManager(dirs[:1], small_config())
    manager.load()
    plog = manager.create("gone", 0)
    plog.append(batch(2), BASE_TS)
    slice_ = plog.read(0, 100).records
    manager.delete("gone", 0)
    assert manager.get("gone", 0) is None
    # Only renamed: the partition is gone for a restart, its files stay for file.delete.delay.ms.
    (renamed,) = [n for n in os.listdir(dirs[0]) if n.startswith("gone")]
    assert renamed.endswith("-delete")
    assert len(os.pread(slice_.fd, slice_.size, slice_.position)) == slice_.size  # in-flight send still works
    manager.delete("gone", 0)  # idempotent
    manager.release_expired(0)  # before the delay: nothing happens
    os.fstat(slice_.fd)
    manager.release_expired(2**62)
    manager.io.file_delete.submit(lambda: None).result()  # the removal ran on the deleter thread
    assert not os.path.exists(os.path.join(dirs[0], renamed))
    with pytest.raises(OSError):
        os.fstat(slice_.fd)
    # A crash between rename and removal leaves a -delete dir: load() finishes the job.
    leftover = os.path.join(dirs[0], "gone-1.0123456789abcdef0123456789abcdef-delete")
    os.makedirs(leftover)
    manager.close()
    again = LogManager(dirs[:1], small_config())
    again.load()
    assert not os.path.exists(leftover) and again.all_logs() == []
    # Recreating the deleted partition starts from scratch.
    assert again.create("gone", 0).log_end_offset == 0


def test_unclean_start_recovers(dirs: list[str]) -> None:
    manager = LogManager(dirs[:1], small_config())
    manager.load()
    plog = manager.create("t", 0)
    for _ in range(30):
        plog.append(batch(3), BASE_TS)
    manager.checkpoint()
    path, size = plog.segments.active.log_path, plog.segments.active.size
    for segment in plog.segments:
        os.close(segment.fd)  # kill -9: no close(), no marker
    with open(path, "r+b") as fh:
        fh.truncate(size - 5)
    again = LogManager(dirs[:1], small_config())
    again.load()
    assert again.get("t", 0).log_end_offset == 87
    again.close()


def test_update_config_applies_to_all_partitions(dirs: list[str]) -> None:
    manager = LogManager(dirs, small_config())
    manager.load()
    for p in range(3):
        manager.create("c", p)
    manager.create("other", 0)
    new = small_config(**{"max.message.bytes": "100"})
    manager.update_config("c", new)
    for p in range(3):
        with pytest.raises(KafkaError) as err:
            manager.get("c", p).append(batch(3), BASE_TS)
        assert err.value.code == ErrorCode.MESSAGE_TOO_LARGE
    manager.get("other", 0).append(batch(3), BASE_TS)
    manager.create("c", 3)  # later partitions of the topic get the topic's config
    assert manager.get("c", 3).config is new
    manager.flush_all()
    assert manager.get("other", 0).recovery_point == 3
    manager.close()


def test_meta_properties(dirs: list[str]) -> None:
    manager = LogManager(dirs, small_config())
    cluster_id = manager.ensure_meta_properties(1)
    assert len(cluster_id) == 22
    for d in dirs:
        with open(os.path.join(d, "meta.properties")) as fh:
            text = fh.read()
        assert f"cluster.id={cluster_id}\n" in text and "node.id=1\n" in text and "version=1\n" in text
    assert LogManager(dirs, small_config()).ensure_meta_properties(1) == cluster_id
    with pytest.raises(KafkaError):
        LogManager(dirs, small_config()).ensure_meta_properties(2)
    with pytest.raises(KafkaError):
        LogManager(dirs, small_config()).ensure_meta_properties(1, "another-cluster-id-xxx")


def test_high_watermarks_are_checkpointed_and_a_replica_starts_from_them(dirs: list[str]) -> None:
    """replication-offset-checkpoint: written with the other checkpoints; a log that becomes a
    cluster's replica after the next load starts its high watermark there, not at its log end."""
    manager = LogManager(dirs[:1], small_config())
    manager.load()
    plog = manager.create("replicated", 0)
    plog.start_replication(manager.checkpointed_high_watermark("replicated", 0))
    for _ in range(5):
        plog.append(batch(2), BASE_TS)
    plog.update_high_watermark(6)
    manager.checkpoint_high_watermarks()
    with open(os.path.join(dirs[0], "replication-offset-checkpoint")) as fh:
        assert fh.read() == "0\n1\nreplicated 0 6\n"
    manager.close()

    again = LogManager(dirs[:1], small_config())
    again.load()
    reloaded = again.get("replicated", 0)
    assert (reloaded.high_watermark, reloaded.log_end_offset) == (10, 10)  # a single host's view
    reloaded.start_replication(again.checkpointed_high_watermark("replicated", 0))
    assert (reloaded.high_watermark, reloaded.log_end_offset) == (6, 10)
    assert read_all(reloaded)[-1] == (4, 5)  # a consumer's read stops at the checkpointed high watermark
    assert reloaded.update_high_watermark(8) > 0 and read_all(reloaded)[-1] == (6, 7)


def test_delete_a_partition_of_a_249_character_topic(dirs: list[str]) -> None:
    """Kafka's longest legal topic name: its `-delete` directory name is cut to fit 255 bytes
    (Kafka's LocalLog.logDeleteDirName).  Found by the live fuzzer: the rename failed with
    ENAMETOOLONG, which stopped the shard."""
    topic = "x" * 249
    manager = LogManager(dirs[:1], small_config())
    manager.load()
    manager.create(topic, 7).append(batch(1), BASE_TS)
    manager.delete(topic, 7)
    (renamed,) = [n for n in os.listdir(dirs[0]) if n.endswith("-delete")]
    assert len(renamed) == 255 and renamed.startswith("x" * 200) and "-7." in renamed
    manager.close()
    again = LogManager(dirs[:1], small_config())
    again.load()  # finishes the removal
    assert again.get(topic, 7) is None
    assert not [n for n in os.listdir(dirs[0]) if n.endswith("-delete")]
    again.close()
