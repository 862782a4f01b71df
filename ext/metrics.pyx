# Request counts and latency histograms of one shard: a few C array increments per request.
#
# Why native: the dispatcher records every request (Kafka's RequestMetrics: total, queue, local,
# remote time per API), and four Python histogram updates cost about 1 % of a small produce
# request's whole path; here it is one call.  Read out only on scrape (`snapshot`).
from libc.stdlib cimport calloc, free
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline int64_t _monotonic_ns() noexcept nogil:
    """time.monotonic_ns()'s clock (CLOCK_MONOTONIC), so the caller's Python stamps compare."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int _bucket(int64_t dt_ns) noexcept nogil:
    """The log2 bucket of a duration: bit length of its whole microseconds."""
    cdef unsigned long long us = <unsigned long long>(dt_ns // 1000)
    if us == 0:
        return 0
    return 64 - __builtin_clzll(us)


cdef class RequestStats:
    """Per-API request latency histograms (Kafka's TotalTimeMs, RequestQueueTimeMs,
    LocalTimeMs, RemoteTimeMs); the count of a histogram is the API's request count.

    Times are CLOCK_MONOTONIC nanoseconds (time.monotonic_ns): `received` when the frame was read,
    `started` when its handler began, `answered` when the handler returned (a parked request's
    remote time runs from there to its answer).  A negative duration counts as 0.  Owned by one
    event loop: `last_answer` is when its previous request was answered.
    """

    def __cinit__(self):
        self.counts = <int64_t *>calloc(REQ_KINDS * REQ_API_KEYS * REQ_BUCKETS, sizeof(int64_t))
        self.sums = <int64_t *>calloc(REQ_KINDS * REQ_API_KEYS, sizeof(int64_t))
        if self.counts == NULL or self.sums == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.counts)
        free(self.sums)

    cdef void _record(self, int api, int64_t received, int64_t started, int64_t answered,
                      int64_t now) noexcept:
        cdef int64_t dts[REQ_KINDS]
        cdef int kind
        cdef int64_t dt
        if api < 0 or api >= REQ_API_KEYS:
            return
        dts[0] = now - received
        dts[1] = started - received
        dts[2] = answered - started
        dts[3] = now - answered
        for kind in range(REQ_KINDS):
            dt = dts[kind] if dts[kind] > 0 else 0
            self.counts[(kind * REQ_API_KEYS + api) * REQ_BUCKETS + _bucket(dt)] += 1
            self.sums[kind * REQ_API_KEYS + api] += dt

    def record(self, int api, int64_t received, int64_t started, int64_t answered, int64_t now):
        """One request with all its times given."""
        self._record(api, received, started, answered, now)

    def done(self, int api, int64_t received):
        """A request answered now by its handler (no remote time).  Its handler started when its
        frame was read or when the previous request on this loop was answered, whichever is
        later: one clock read per request."""
        cdef int64_t now = _monotonic_ns()
        self._record(api, received, received if received > self.last_answer else self.last_answer, now, now)
        self.last_answer = now

    def park(self, int64_t received):
        """A request whose handler returned a wait: (its start, now), for `parked` later."""
        cdef int64_t now = _monotonic_ns()
        cdef int64_t started = received if received > self.last_answer else self.last_answer
        self.last_answer = now
        return started, now

    def parked(self, int api, int64_t received, int64_t started, int64_t answered):
        """A parked request answered now; it waited since its handler returned at `answered`."""
        cdef int64_t now = _monotonic_ns()
        self._record(api, received, started, answered, now)
        if now > self.last_answer:
            self.last_answer = now

    def snapshot(self):
        """{api key: ([bucket counts] per kind, [sum ns] per kind)} of the APIs seen so far."""
        cdef int api, kind, b
        cdef int64_t seen
        out = {}
        for api in range(REQ_API_KEYS):
            seen = 0
            for b in range(REQ_BUCKETS):
                seen += self.counts[api * REQ_BUCKETS + b]
            if seen == 0:
                continue
            out[api] = (
                [[self.counts[(kind * REQ_API_KEYS + api) * REQ_BUCKETS + b] for b in range(REQ_BUCKETS)]
                 for kind in range(REQ_KINDS)],
                [self.sums[kind * REQ_API_KEYS + api] for kind in range(REQ_KINDS)])
        return out
