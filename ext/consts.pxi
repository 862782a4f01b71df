# Constants of pyk._native: record batch v2 layout, attribute bits, codec ids, Kafka error
# codes returned by the validators, and the sizes above which byte loops release the GIL.
# cdef enums rather than DEF (STYLE practice 14); the numbers are Kafka's, see
# clients/src/main/java/org/apache/kafka/common/record/DefaultRecordBatch.java.

# Record batch v2 header: byte offsets of each field from the start of the batch.
cdef enum:
    BATCH_BASE_OFFSET_OFFSET = 0              # int64 baseOffset (outside the CRC)
    BATCH_LENGTH_OFFSET = 8                   # int32 batchLength: bytes after this field
    BATCH_PARTITION_LEADER_EPOCH_OFFSET = 12  # int32 partitionLeaderEpoch (outside the CRC)
    BATCH_MAGIC_OFFSET = 16                   # int8 magic, 2 for this format
    BATCH_CRC_OFFSET = 17                     # uint32 CRC-32C of attributes..end
    BATCH_ATTRIBUTES_OFFSET = 21              # int16 attributes; the CRC starts here
    BATCH_LAST_OFFSET_DELTA_OFFSET = 23       # int32 lastOffsetDelta
    BATCH_FIRST_TIMESTAMP_OFFSET = 27         # int64 baseTimestamp
    BATCH_MAX_TIMESTAMP_OFFSET = 35           # int64 maxTimestamp
    BATCH_PRODUCER_ID_OFFSET = 43             # int64 producerId
    BATCH_PRODUCER_EPOCH_OFFSET = 51          # int16 producerEpoch
    BATCH_BASE_SEQUENCE_OFFSET = 53           # int32 baseSequence
    BATCH_RECORDS_COUNT_OFFSET = 57           # int32 number of records
    BATCH_HEADER_SIZE = 61                    # records start here
    BATCH_LOG_OVERHEAD = 12                   # baseOffset + batchLength precede the counted bytes
    BATCH_MIN_LENGTH = 49                     # smallest legal batchLength (header, no records)
    BATCH_MAGIC_V2 = 2

# attributes bits (int16): 0-2 compression codec, 3 timestamp type, 4 transactional,
# 5 control, 6 delete horizon (KIP-534); the rest unused.
cdef enum:
    BATCH_ATTR_COMPRESSION_MASK = 0x07
    BATCH_ATTR_TIMESTAMP_TYPE = 0x08          # set: LogAppendTime, clear: CreateTime
    BATCH_ATTR_TRANSACTIONAL = 0x10
    BATCH_ATTR_CONTROL = 0x20
    BATCH_ATTR_DELETE_HORIZON = 0x40          # set: baseTimestamp holds the delete horizon (KIP-534)

# Compression codec ids, as in the attributes field.
cdef enum:
    CODEC_NONE = 0
    CODEC_GZIP = 1
    CODEC_SNAPPY = 2
    CODEC_LZ4 = 3
    CODEC_ZSTD = 4

# Kafka error codes (pyk.errors.ErrorCode) that the validators return.
cdef enum:
    ERR_NONE = 0
    ERR_CORRUPT_MESSAGE = 2
    ERR_MESSAGE_TOO_LARGE = 10
    ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
    ERR_INVALID_RECORD = 87

# Index file entries (big-endian), Kafka's OffsetIndex and TimeIndex formats.
cdef enum:
    IDX_OFFSET_ENTRY_SIZE = 8                 # int32 relative offset, int32 position
    IDX_TIME_ENTRY_SIZE = 12                  # int64 timestamp, int32 relative offset
    # Kafka's AbstractIndex keeps the last 8 KiB of an index "warm": lookups near the tail
    # (fetches from caught-up consumers) search only there, so the binary search touches
    # the same few pages instead of faulting in cold ones from the middle of the file.
    IDX_WARM_BYTES = 8192

# GIL release thresholds.  Dropping and retaking the GIL costs little by itself, but
# retaking it can wait up to sys.getswitchinterval() (5 ms) behind another thread, so only
# work that takes longer than a few microseconds is worth it: 64 KiB of CRC is ~8 us with
# SSE4.2 and ~60 us on the table path.
cdef enum:
    CRC32C_NOGIL_THRESHOLD = 64 * 1024
    SCAN_NOGIL_THRESHOLD = 64 * 1024
    # Codecs run at 10-500 MB/s, so even small inputs take microseconds.
    CODEC_NOGIL_THRESHOLD = 4 * 1024
