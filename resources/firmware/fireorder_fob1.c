/* fireorder fob1 framing; see fireorder_fob1.h and docs/serial-protocol.md. */
#include "fireorder_fob1.h"

uint16_t fob1_crc16_update(uint16_t crc, uint8_t byte)
{
    /* Byte-wise CRC-CCITT without a table: x is the top byte mixed with the input, and the
     * polynomial 0x1021 = x^12 + x^5 + 1 turns into three shifted xors. About 20 cycles on
     * an AVR, against ~100 for the bit-by-bit loop. */
    uint8_t x = (uint8_t)((crc >> 8) ^ byte);
    x ^= (uint8_t)(x >> 4);
    return (uint16_t)((crc << 8) ^ ((uint16_t)x << 12) ^ ((uint16_t)x << 5) ^ (uint16_t)x);
}

uint16_t fob1_crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0xFFFFu;
    size_t i;
    for (i = 0; i < len; i++) {
        crc = fob1_crc16_update(crc, data[i]);
    }
    return crc;
}

size_t fob1_encode(uint8_t *out, uint8_t n_channels, uint16_t counter, const int16_t *samples)
{
    size_t pos = 0;
    uint8_t ch;
    uint16_t crc;
    if (n_channels < 1u || n_channels > FOB1_MAX_CHANNELS) {
        return 0;
    }
    out[pos++] = FOB1_SYNC0;
    out[pos++] = FOB1_SYNC1;
    out[pos++] = n_channels;
    out[pos++] = (uint8_t)(counter & 0xFFu);
    out[pos++] = (uint8_t)(counter >> 8);
    for (ch = 0; ch < n_channels; ch++) {
        /* two's complement little-endian whatever the host's byte order */
        uint16_t v = (uint16_t)samples[ch];
        out[pos++] = (uint8_t)(v & 0xFFu);
        out[pos++] = (uint8_t)(v >> 8);
    }
    crc = fob1_crc16(out + 2, pos - 2);
    out[pos++] = (uint8_t)(crc & 0xFFu);
    out[pos++] = (uint8_t)(crc >> 8);
    return pos;
}
