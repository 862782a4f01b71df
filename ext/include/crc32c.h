/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka's v2 record
 * batches (KIP-98; Java's org.apache.kafka.common.utils.Crc32C).
 *
 * The value convention is zlib's: pass 0 to start, pass a previous result to continue, so
 * crc32c_value(crc32c_value(0, a), b) == crc32c_value(0, a + b).
 */
#ifndef PYK_CRC32C_H
#define PYK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Fill the tables and probe the CPU; idempotent, called once at module import. */
void crc32c_init(void);
/* 1 when crc32c_value uses the SSE4.2 crc32 instruction. */
int crc32c_hw_available(void);
/* The dispatching entry point: hardware when available, else the table. */
uint32_t crc32c_value(uint32_t value, const uint8_t *p, size_t n);
/* Always the portable slicing-by-8 table path (tests, benchmarks). */
uint32_t crc32c_table_value(uint32_t value, const uint8_t *p, size_t n);

#endif /* PYK_CRC32C_H */
