"""LogIO: the storage I/O threads of one LogManager (one shard).

Work that would block the event loop for milliseconds to seconds, handed to one thread each
(Kafka runs the same jobs as KafkaScheduler tasks: "flush-log", "delete-file"):

  * writeback    sync_file_range(SYNC_FILE_RANGE_WRITE) of newly appended segment pages
                 (LogSegment.start_writeback); a request can block while the disk queue is full;
  * roll_flush   the fdatasync of rolled segments, the fsync of the producer snapshots written
                 at those rolls and of the directory (PartitionLog roll flush): a full 1 GiB
                 segment takes seconds to sync;
  * group_commit the flush.messages fdatasyncs of the epoll engine (pyk.server.engine
                 GroupCommit; the io_uring engine issues them on its ring instead);
  * file_delete  unlinks of deleted segments and removal of deleted partition directories:
                 freeing the blocks takes milliseconds per GiB on ext4/xfs.

One thread per job, not a shared pool: a seconds-long roll flush must not delay a group commit
that acks=all producers wait for, nor a deletion.  The threads start with their first task;
none exists before a LogIO is made, and nothing is made at import.

Lifecycle: made by LogManager (tests make one per test), handed explicitly to every
PartitionLog it loads or creates; `close()` from LogManager.close(), after every log closed.
The methods are called from the owning event loop; the executors themselves are thread-safe.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


class LogIO:
    """The four single-thread executors of a LogManager's storage I/O (see module docstring)."""

    def __init__(self) -> None:
        self.writeback = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyk-writeback")
        self.roll_flush = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyk-roll-flush")
        self.group_commit = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyk-group-commit")
        self.file_delete = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyk-file-delete")

    def stop_writeback(self) -> None:
        """Cancels queued writeback requests and waits for the running one (before segment
        files close: a request holds a bare fd).  Writeback is a hint with no durability
        promise, so dropping queued ones loses nothing; the logs' close flushes everything."""
        self.writeback.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stops every thread.  Roll flushes and group commits still queued run to completion
        (PartitionLog.close and GroupCommit.drain already waited for theirs, so normally none
        is left); queued deletions run too, so the files they remove are gone afterwards."""
        self.stop_writeback()
        self.roll_flush.shutdown(wait=True)
        self.group_commit.shutdown(wait=True)
        self.file_delete.shutdown(wait=True)
