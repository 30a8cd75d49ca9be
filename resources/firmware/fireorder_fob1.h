/*
 * fireorder fob1 framing: the encoder the firmware runs and the host tests compile.
 *
 * Frame: 0xA5 0x5A | u8 channel count (1-32) | u16 LE sample counter (wraps at 65536)
 *        | count x int16 LE samples | u16 LE CRC-16/CCITT-FALSE over count..last sample.
 * CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor
 * (check value of "123456789": 0x29B1). See docs/serial-protocol.md.
 *
 * Plain C99, no Arduino headers, no tables (a 512-byte table would eat a quarter of an
 * Uno's RAM).
 */
#ifndef FIREORDER_FOB1_H
#define FIREORDER_FOB1_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FOB1_SYNC0 0xA5u
#define FOB1_SYNC1 0x5Au
#define FOB1_MAX_CHANNELS 32u
/* bytes of one frame with n channels: sync 2 + count 1 + counter 2 + 2n + CRC 2 */
#define FOB1_FRAME_LEN(n) (7u + 2u * (unsigned)(n))
#define FOB1_MAX_FRAME_LEN FOB1_FRAME_LEN(FOB1_MAX_CHANNELS)

/* Fold one byte into a running CRC-16/CCITT-FALSE (start with 0xFFFF). */
uint16_t fob1_crc16_update(uint16_t crc, uint8_t byte);

/* CRC-16/CCITT-FALSE of len bytes. */
uint16_t fob1_crc16(const uint8_t *data, size_t len);

/*
 * Write one frame to out (FOB1_FRAME_LEN(n_channels) bytes, at most FOB1_MAX_FRAME_LEN).
 * Returns the number of bytes written, or 0 if n_channels is not within 1..32.
 */
size_t fob1_encode(uint8_t *out, uint8_t n_channels, uint16_t counter, const int16_t *samples);

#ifdef __cplusplus
}
#endif

#endif /* FIREORDER_FOB1_H */
