# Request counts and latency histograms of one shard (read by pyk.server.metrics on scrape).
from libc.stdint cimport int64_t

cdef enum:
    REQ_API_KEYS = 128  # api keys counted (Kafka's stop below 100); larger ones are not counted
    REQ_BUCKETS = 64    # log2 buckets of whole microseconds: bucket b holds dt_us < 2**b (b = 0: < 1 us)
    REQ_KINDS = 4       # total, queue (read -> handler), local (handler), remote (parked)


cdef class RequestStats:
    cdef int64_t *counts  # malloc'd [kind][api][bucket] observations
    cdef int64_t *sums    # malloc'd [kind][api] sum of the observations, ns
    cdef int64_t last_answer  # monotonic ns when the loop's previous request was answered

    cdef void _record(self, int api, int64_t received, int64_t started, int64_t answered,
                      int64_t now) noexcept
