# The io_uring ring of the io_uring I/O engine (pyk/server/engine.py), over liburing.
#
# A narrow face: the engine prepares SQEs (sendmsg of response parts, splice file -> pipe ->
# socket, poll for writability, fdatasync), links them into chains with IOSQE_IO_LINK, submits
# once per event-loop turn, and reaps completions in bulk as (token, res) pairs when the
# eventfd registered with the ring becomes readable.  Nothing here blocks: every op runs in the
# kernel (or its io-wq workers) and completes through the CQ.
#
# user_data: an op that holds buffers (sendmsg) carries the address of its SendOp, which is
# even; every other op carries (token << 1) | 1.  reap() tells them apart by the low bit.

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer
from libc.errno cimport EBUSY, EINTR, errno
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from posix.unistd cimport close as fd_close, read as fd_read

from os import strerror as os_strerror


cdef extern from "<unistd.h>" nogil:
    long syscall(long number, ...)


cdef enum:
    SYS_CACHESTAT = 451          # cachestat(2), Linux 6.5: one number on every architecture


cdef struct CachestatRange:
    uint64_t off
    uint64_t len


cdef struct Cachestat:
    uint64_t nr_cache
    uint64_t nr_dirty
    uint64_t nr_writeback
    uint64_t nr_evicted
    uint64_t nr_recently_evicted


def cached_pages(int fd, uint64_t offset, uint64_t length):
    """How many pages of the file range [offset, offset + length) are in the page cache, by
    cachestat(2) (Linux 6.5; OSError ENOSYS before): the io_uring engine sends a region the
    cache holds from the loop and leaves the ring's workers the ones that need the disk."""
    cdef CachestatRange span
    cdef Cachestat stat
    cdef long rc
    cdef int err = 0
    span.off = offset
    span.len = length
    with nogil:
        rc = syscall(SYS_CACHESTAT, fd, &span, &stat, 0)
        if rc != 0:
            err = errno
    if rc != 0:
        raise OSError(err, os_strerror(err))
    return stat.nr_cache


cdef inline uint64_t uring_token_data(uint64_t token):
    return (token << 1) | 1


cdef void uring_free_send(SendOp *op) noexcept:
    cdef Py_ssize_t i
    for i in range(op.nviews):
        PyBuffer_Release(&op.views[i])
    free(op)


def uring_probe(unsigned entries=8):
    """None when io_uring works here with every op the engine uses, else the reason it does not
    (ENOSYS: old kernel; EPERM: forbidden by seccomp or kernel.io_uring_disabled)."""
    cdef io_uring ring
    cdef io_uring_probe *probe
    cdef int rc = io_uring_queue_init(entries, &ring, 0)
    if rc < 0:
        return f"io_uring_queue_init: {OSError(-rc, '').strerror}"
    try:
        probe = io_uring_get_probe_ring(&ring)
        if probe == NULL:
            return "io_uring_get_probe_ring failed (kernel older than 5.6)"
        try:
            for op, name in ((IORING_OP_SENDMSG, "SENDMSG"), (IORING_OP_SPLICE, "SPLICE"),
                             (IORING_OP_FSYNC, "FSYNC"), (IORING_OP_POLL_ADD, "POLL_ADD")):
                if not io_uring_opcode_supported(probe, op):
                    return f"the kernel's io_uring lacks IORING_OP_{name}"
        finally:
            io_uring_free_probe(probe)
    finally:
        io_uring_queue_exit(&ring)
    return None


cdef class Ring:
    """One io_uring with an eventfd for the event loop.

    Lifecycle: Ring(entries) -> prepare ops / submit() / reap() from one thread (the shard's
    event loop) -> close().  Not thread-safe.  Every prepared op completes exactly once, as a
    (token, res) pair from reap(); res is what the syscall returns (bytes, or -errno, and
    -ECANCELED for an op behind a failed or short op of its chain).
    """

    def __cinit__(self, unsigned entries=256):
        self.eventfd = -1
        cdef int rc = io_uring_queue_init(entries, &self.ring, 0)
        if rc < 0:
            raise OSError(-rc, f"io_uring_queue_init({entries}) failed")
        self.ready = True
        self.eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
        if self.eventfd < 0:
            self.close()
            raise OSError(errno, "eventfd failed")
        rc = io_uring_register_eventfd(&self.ring, self.eventfd)
        if rc < 0:
            self.close()
            raise OSError(-rc, "io_uring_register_eventfd failed")

    def __dealloc__(self):
        self.close()

    def close(self) -> None:
        """Tears the ring down.  Ops still in flight are abandoned with their buffers (only at
        shutdown: freeing memory the kernel may still read would be worse than the leak)."""
        if self.ready:
            io_uring_queue_exit(&self.ring)
            self.ready = False
        if self.eventfd >= 0:
            fd_close(self.eventfd)
            self.eventfd = -1

    cdef io_uring_sqe *sqe(self) except NULL:
        if not self.ready:
            raise ValueError("the ring is closed")
        cdef io_uring_sqe *sqe = io_uring_get_sqe(&self.ring)
        if sqe == NULL:
            raise OSError(EBUSY, "io_uring submission queue full (call reserve() before a chain)")
        return sqe

    cdef void queued_op(self, io_uring_sqe *sqe, uint64_t user_data, bint link) noexcept:
        # After the io_uring_prep_* call: it zeroes the flags.
        io_uring_sqe_set_data64(sqe, user_data)
        if link:
            io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK)
        self.queued += 1
        self.pending += 1

    def reserve(self, unsigned n) -> None:
        """Makes room for a chain of n SQEs, submitting what is queued if needed: a chain split
        across two submissions would lose its link."""
        if io_uring_sq_space_left(&self.ring) < n:
            self.submit()
            if io_uring_sq_space_left(&self.ring) < n:
                raise ValueError(f"a chain of {n} SQEs does not fit the ring")

    def sendmsg(self, int fd, parts, Py_ssize_t offset, uint64_t token, bint link=False) -> int:
        """Queues one sendmsg of `parts` (buffers, at most URING_MAX_PARTS) minus the first
        `offset` bytes of the first; returns the byte count.  MSG_WAITALL: the kernel retries
        short sends (and waits for room) until all is sent or the socket fails."""
        cdef Py_ssize_t n = len(parts), i, total = 0
        cdef io_uring_sqe *sqe
        if n < 1 or n > URING_MAX_PARTS:
            raise ValueError(f"sendmsg takes 1 to {URING_MAX_PARTS} parts, got {n}")
        cdef SendOp *op = <SendOp *>malloc(sizeof(SendOp))
        if op == NULL:
            raise MemoryError()
        op.token = token
        op.nviews = 0
        memset(&op.msg, 0, sizeof(msghdr))
        try:
            for i in range(n):
                PyObject_GetBuffer(parts[i], &op.views[i], PyBUF_SIMPLE)
                op.nviews += 1
                op.iov[i].iov_base = op.views[i].buf
                op.iov[i].iov_len = <size_t>op.views[i].len
            if offset < 0 or offset > op.views[0].len:
                raise ValueError(f"offset {offset} outside the first part of {op.views[0].len} bytes")
            op.iov[0].iov_base = <char *>op.views[0].buf + offset
            op.iov[0].iov_len -= <size_t>offset
            for i in range(n):
                total += <Py_ssize_t>op.iov[i].iov_len
            op.msg.msg_iov = op.iov
            op.msg.msg_iovlen = <size_t>n
            sqe = self.sqe()
        except BaseException:
            uring_free_send(op)
            raise
        io_uring_prep_sendmsg(sqe, fd, &op.msg, MSG_WAITALL | MSG_NOSIGNAL)
        self.queued_op(sqe, <uint64_t><size_t>op, link)
        return total

    def splice(self, int fd_in, int64_t off_in, int fd_out, unsigned nbytes, uint64_t token,
               bint link=False, bint more=False) -> None:
        """Queues splice(fd_in at off_in (-1: a pipe) -> fd_out, nbytes); `more` hints that more
        data follows (SPLICE_F_MORE: the socket may hold back a partial segment)."""
        cdef io_uring_sqe *sqe = self.sqe()
        io_uring_prep_splice(sqe, fd_in, off_in, fd_out, -1, nbytes, SPLICE_F_MORE if more else 0)
        self.queued_op(sqe, uring_token_data(token), link)

    def poll_out(self, int fd, uint64_t token, bint link=False) -> None:
        """Queues a one-shot wait for fd to become writable (res: the poll mask)."""
        cdef io_uring_sqe *sqe = self.sqe()
        io_uring_prep_poll_add(sqe, fd, POLLOUT)
        self.queued_op(sqe, uring_token_data(token), link)

    def fsync(self, int fd, uint64_t token, bint link=False, bint datasync=True) -> None:
        """Queues fdatasync(fd) (or fsync(fd): a directory, whose entries are its metadata)."""
        cdef io_uring_sqe *sqe = self.sqe()
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC if datasync else 0)
        self.queued_op(sqe, uring_token_data(token), link)

    def submit(self) -> int:
        """Hands every queued SQE to the kernel with one io_uring_enter; returns how many."""
        if not self.ready:
            raise ValueError("the ring is closed")
        cdef int rc
        while True:
            rc = io_uring_submit(&self.ring)
            if rc != -EINTR:
                break
        if rc < 0:
            raise OSError(-rc, "io_uring_submit failed")
        self.queued = 0
        return rc

    def reap(self) -> list:
        """Every completion available now, as (token, res) pairs in completion order.  Clears
        the eventfd first, so a CQE posted after the last peek signals it again."""
        cdef io_uring_cqe *cqes[URING_REAP_BATCH]
        cdef unsigned n, i
        cdef uint64_t data, token, counter
        cdef SendOp *op
        cdef list out = []
        if not self.ready:
            return out
        fd_read(self.eventfd, &counter, sizeof(counter))  # EAGAIN when already clear: fine
        while True:
            n = io_uring_peek_batch_cqe(&self.ring, cqes, URING_REAP_BATCH)
            if n == 0:
                break
            for i in range(n):
                data = cqes[i].user_data
                if data & 1:
                    token = data >> 1
                else:
                    op = <SendOp *><size_t>data
                    token = op.token
                    uring_free_send(op)
                out.append((token, cqes[i].res))
            io_uring_cq_advance(&self.ring, n)
            self.pending -= n
        return out
