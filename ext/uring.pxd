# io_uring through liburing (ext/uring.pyx): the ring of the io_uring I/O engine.
from libc.stdint cimport int64_t, uint64_t
from posix.uio cimport iovec


cdef extern from "<sys/socket.h>" nogil:
    cdef struct msghdr:
        iovec *msg_iov           # the gathered parts
        size_t msg_iovlen        # how many
    enum:
        MSG_WAITALL
        MSG_NOSIGNAL


cdef extern from "<poll.h>" nogil:
    enum:
        POLLOUT


cdef extern from "<fcntl.h>" nogil:
    enum:
        SPLICE_F_MORE


cdef extern from "<sys/eventfd.h>" nogil:
    enum:
        EFD_CLOEXEC
        EFD_NONBLOCK
    int eventfd(unsigned int initval, int flags)


cdef extern from "<liburing.h>" nogil:
    cdef struct io_uring:
        pass

    cdef struct io_uring_sqe:
        pass

    cdef struct io_uring_cqe:
        uint64_t user_data       # what the SQE carried: an op pointer or a tagged token
        int res                  # bytes transferred, or -errno

    cdef struct io_uring_probe:
        pass

    enum:
        IORING_OP_SENDMSG
        IORING_OP_SPLICE
        IORING_OP_FSYNC
        IORING_OP_POLL_ADD
        IOSQE_IO_LINK
        IORING_FSYNC_DATASYNC

    int io_uring_queue_init(unsigned entries, io_uring *ring, unsigned flags)
    void io_uring_queue_exit(io_uring *ring)
    int io_uring_register_eventfd(io_uring *ring, int fd)
    io_uring_probe *io_uring_get_probe_ring(io_uring *ring)
    void io_uring_free_probe(io_uring_probe *probe)
    int io_uring_opcode_supported(const io_uring_probe *p, int op)
    io_uring_sqe *io_uring_get_sqe(io_uring *ring)
    unsigned io_uring_sq_space_left(const io_uring *ring)
    int io_uring_submit(io_uring *ring)
    unsigned io_uring_peek_batch_cqe(io_uring *ring, io_uring_cqe **cqes, unsigned count)
    void io_uring_cq_advance(io_uring *ring, unsigned nr)
    void io_uring_sqe_set_data64(io_uring_sqe *sqe, uint64_t data)
    void io_uring_sqe_set_flags(io_uring_sqe *sqe, unsigned flags)
    void io_uring_prep_sendmsg(io_uring_sqe *sqe, int fd, const msghdr *msg, unsigned flags)
    void io_uring_prep_splice(io_uring_sqe *sqe, int fd_in, int64_t off_in, int fd_out, int64_t off_out,
                              unsigned nbytes, unsigned splice_flags)
    void io_uring_prep_poll_add(io_uring_sqe *sqe, int fd, unsigned poll_mask)
    void io_uring_prep_fsync(io_uring_sqe *sqe, int fd, unsigned fsync_flags)


cdef enum:
    URING_MAX_PARTS = 64         # iovecs of one sendmsg op (below IOV_MAX)
    URING_REAP_BATCH = 256       # CQEs taken per peek


# One sendmsg in flight: its msghdr, iovecs and the buffer exports that keep the parts' memory
# alive (and bytearrays unresizable) until the kernel is done with them.  One malloc holds it
# all; the CQE's user_data is its address (always even: malloc alignment).
cdef struct SendOp:
    uint64_t token               # the caller's id, returned with the completion
    Py_ssize_t nviews            # exports acquired in views
    msghdr msg                   # msg_iov points at iov below
    iovec iov[URING_MAX_PARTS]   # the parts, the first one advanced past `offset`
    Py_buffer views[URING_MAX_PARTS]  # one export per part


cdef class Ring:
    cdef io_uring ring           # liburing's handle (SQ/CQ mappings)
    cdef bint ready              # queue initialised: close() must exit it once
    cdef readonly int eventfd    # signalled on every CQE; the event loop add_reader()s it
    cdef readonly unsigned queued  # SQEs prepared since the last submit()
    cdef readonly Py_ssize_t pending  # ops submitted or queued and not reaped yet

    cdef io_uring_sqe *sqe(self) except NULL
    cdef void queued_op(self, io_uring_sqe *sqe, uint64_t user_data, bint link) noexcept
