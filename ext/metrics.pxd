# Request counts and latency histograms of one shard (read by pyk.server.metrics on scrape).
from libc.stdint cimport int64_t

cdef enum:
    REQ_API_KEYS = 128  # api keys counted (Kafka's stop below 100); larger ones are not counted
    REQ_BUCKETS = 64    # log2 buckets of whole microseconds: bucket b holds dt_us < 2**b (b = 0: < 1 us)
    # total, request queue (read -> handler), local (handler), remote (parked), response queue
    # (answer -> handed to the sender), response send (handed -> last byte written)
    REQ_KINDS = 6
    REQ_LOCAL = 2       # the kind recorded when a request is answered: its count is the request count


cdef class InflightResponses


cdef class RequestStats:
    cdef int64_t *counts  # malloc'd [kind][api][bucket] observations
    cdef int64_t *sums    # malloc'd [kind][api] sum of the observations, ns
    cdef int64_t last_answer  # monotonic ns when the loop's previous request was answered

    cdef void _observe(self, int kind, int api, int64_t dt) noexcept
    cdef void _answered(self, int api, int64_t received, int64_t started, int64_t returned,
                        int64_t answered, InflightResponses inflight) noexcept
    cdef void _local(self, int api, int64_t received, int64_t started, int64_t returned,
                     int64_t answered) noexcept
    cdef void _sent(self, int api, int64_t received, int64_t answered, int64_t handed,
                    int64_t sent) noexcept


ctypedef struct Inflight:
    int api
    int64_t received  # frame read
    int64_t answered  # response ready
    int64_t handed    # handed to the sender (0 until then)
    int64_t end       # the sender's part count once its last part is written


cdef class InflightResponses:
    cdef RequestStats stats  # the shard's, bound by the first answer pushed
    cdef Inflight *items     # malloc'd ring of `capacity`: `count` from `head`, the first `n_handed` handed
    cdef size_t capacity
    cdef size_t head
    cdef size_t count
    cdef size_t n_handed
    cdef bint closed  # its connection closed: an answer pushed now counts as written at once

    cdef int _push(self, RequestStats stats, int api, int64_t received, int64_t answered) noexcept
    cdef int64_t _due(self) noexcept
