# Request counts and latency histograms of one shard: a few C array increments per request.
#
# Why native: the dispatcher records every request (Kafka's RequestMetrics: total, queue, local,
# remote, response queue and send time per API), and six Python histogram updates cost about 1 %
# of a small produce request's whole path; here it is one call when the request is answered and
# one when its last byte is written (InflightResponses).  Read out only on scrape (`snapshot`).
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil

cdef int64_t _NOT_DUE = 0x7fffffffffffffff  # InflightResponses: no handed response waits


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
    """Per-API request latency histograms (Kafka's TotalTimeMs, RequestQueueTimeMs, LocalTimeMs,
    RemoteTimeMs, ResponseQueueTimeMs, ResponseSendTimeMs); the count of the local time is the
    API's request count.

    Times are CLOCK_MONOTONIC nanoseconds (time.monotonic_ns): `received` when the frame was read,
    `started` when its handler began, `returned` when the handler returned, `answered` when the
    response was ready (a parked request's remote time runs from `returned` to there), `handed`
    when the connection handed it to its sender, `sent` when its last byte was written.  The
    first four kinds are recorded when the request is answered; total, response queue and send
    when the last byte is out (InflightResponses), as Kafka records them when the send completes.
    A negative duration counts as 0.  Owned by one event loop: `last_answer` is when its previous
    request was answered.
    """

    def __cinit__(self):
        self.counts = <int64_t *>calloc(REQ_KINDS * REQ_API_KEYS * REQ_BUCKETS, sizeof(int64_t))
        self.sums = <int64_t *>calloc(REQ_KINDS * REQ_API_KEYS, sizeof(int64_t))
        if self.counts == NULL or self.sums == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.counts)
        free(self.sums)

    cdef void _observe(self, int kind, int api, int64_t dt) noexcept:
        if dt < 0:
            dt = 0
        self.counts[(kind * REQ_API_KEYS + api) * REQ_BUCKETS + _bucket(dt)] += 1
        self.sums[kind * REQ_API_KEYS + api] += dt

    cdef void _answered(self, int api, int64_t received, int64_t started, int64_t returned,
                        int64_t answered, InflightResponses inflight) noexcept:
        """Request queue, local and remote time; the rest once the response is written (inflight
        None: the request has no response, acks=0, so its total ends here and it has no send)."""
        if api < 0 or api >= REQ_API_KEYS:
            return
        self._local(api, received, started, returned, answered)
        if inflight is None or inflight._push(self, api, received, answered) < 0:
            self._sent(api, received, answered, answered, answered)

    cdef void _local(self, int api, int64_t received, int64_t started, int64_t returned,
                     int64_t answered) noexcept:
        self._observe(1, api, started - received)
        self._observe(REQ_LOCAL, api, returned - started)
        self._observe(3, api, answered - returned)

    cdef void _sent(self, int api, int64_t received, int64_t answered, int64_t handed,
                    int64_t sent) noexcept:
        self._observe(0, api, sent - received)
        self._observe(4, api, handed - answered)
        self._observe(5, api, sent - handed)

    def record(self, int api, int64_t received, int64_t started, int64_t returned, int64_t answered,
               int64_t handed, int64_t sent):
        """One request with all its times given."""
        if api < 0 or api >= REQ_API_KEYS:
            return
        self._local(api, received, started, returned, answered)
        self._sent(api, received, answered, handed, sent)

    def done(self, int api, int64_t received, InflightResponses inflight):
        """A request answered now by its handler (no remote time), its response to be written by
        the sender of `inflight` (None: no response).  Its handler started when its frame was
        read or when the previous request on this loop was answered, whichever is later: one
        clock read per request."""
        cdef int64_t now = _monotonic_ns()
        self._answered(api, received, received if received > self.last_answer else self.last_answer, now, now,
                       inflight)
        self.last_answer = now

    def park(self, int64_t received):
        """A request whose handler returned a wait: (its start, now), for `parked` later."""
        cdef int64_t now = _monotonic_ns()
        cdef int64_t started = received if received > self.last_answer else self.last_answer
        self.last_answer = now
        return started, now

    def parked(self, int api, int64_t received, int64_t started, int64_t returned,
               InflightResponses inflight):
        """A parked request answered now; it waited since its handler returned at `returned`."""
        cdef int64_t now = _monotonic_ns()
        self._answered(api, received, started, returned, now, inflight)
        if now > self.last_answer:
            self.last_answer = now

    def snapshot(self):
        """{api key: ([bucket counts] per kind, [sum ns] per kind)} of the APIs answered so far."""
        cdef int api, kind, b
        cdef int64_t seen
        out = {}
        for api in range(REQ_API_KEYS):
            seen = 0
            for b in range(REQ_BUCKETS):
                seen += self.counts[(REQ_LOCAL * REQ_API_KEYS + api) * REQ_BUCKETS + b]
            if seen == 0:
                continue
            out[api] = (
                [[self.counts[(kind * REQ_API_KEYS + api) * REQ_BUCKETS + b] for b in range(REQ_BUCKETS)]
                 for kind in range(REQ_KINDS)],
                [self.sums[kind * REQ_API_KEYS + api] for kind in range(REQ_KINDS)])
        return out


cdef class InflightResponses:
    """The answered requests of one connection whose responses are not written yet (Kafka's
    Processor.inflightResponses), kept by its sender (pyk.server.engine.SendQueue) in C so that a
    request costs no Python object.

    The sender counts the response parts it was handed and those it wrote: `handed(parts)` marks
    the responses answered since the last hand-over as ending at `parts`, and `written(parts)`
    records those that end at or before it, with one clock read.  Both return the part count at
    which the next response is done (a huge number if none waits), which the sender compares
    with its own count, so a chunk written costs it one integer comparison.  The hand-over time
    is the loop's latest answer (RequestStats.last_answer, no clock read): the responses of one
    socket read are handed together after its last frame is answered.
    """

    def __cinit__(self):
        self.capacity = 4
        self.items = <Inflight *>malloc(self.capacity * sizeof(Inflight))
        if self.items == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.items)

    cdef int _push(self, RequestStats stats, int api, int64_t received, int64_t answered) noexcept:
        """-1: not kept (no memory, or the connection closed): the caller records it as written."""
        cdef Inflight *grown
        cdef Inflight *item
        cdef size_t first
        if self.closed:
            return -1
        if self.count == self.capacity:
            grown = <Inflight *>malloc(2 * self.capacity * sizeof(Inflight))
            if grown == NULL:
                return -1
            first = self.capacity - self.head  # the ring's part up to its end, then the wrapped rest
            memcpy(grown, self.items + self.head, first * sizeof(Inflight))
            memcpy(grown + first, self.items, self.head * sizeof(Inflight))
            free(self.items)
            self.items, self.head, self.capacity = grown, 0, 2 * self.capacity
        self.stats = stats
        item = &self.items[(self.head + self.count) % self.capacity]
        item.api, item.received, item.answered, item.handed, item.end = api, received, answered, 0, 0
        self.count += 1
        return 0

    cdef int64_t _due(self) noexcept:
        return self.items[self.head].end if self.n_handed else _NOT_DUE

    def handed(self, int64_t parts):
        """The sender was handed the responses answered so far: they end at part `parts`."""
        cdef size_t i
        cdef Inflight *item
        if self.n_handed < self.count:
            for i in range(self.n_handed, self.count):
                item = &self.items[(self.head + i) % self.capacity]
                item.handed, item.end = self.stats.last_answer, parts
            self.n_handed = self.count
        return self._due()

    def written(self, int64_t parts):
        """The sender has written `parts` parts: the responses ending there are sent, now."""
        cdef int64_t now
        cdef Inflight *item
        if not self.n_handed or self.items[self.head].end > parts:
            return self._due()
        now = _monotonic_ns()
        while self.n_handed and self.items[self.head].end <= parts:
            item = &self.items[self.head]
            self.stats._sent(item.api, item.received, item.answered, item.handed, now)
            self.head = (self.head + 1) % self.capacity
            self.count -= 1
            self.n_handed -= 1
        return self._due()

    def close(self):
        """The connection closed: its responses count as written now, answered or not handed
        yet, so that every answered request is in the total time."""
        self.handed(0)
        self.written(_NOT_DUE)
        self.closed = True

    def __len__(self):
        return <Py_ssize_t>self.count
