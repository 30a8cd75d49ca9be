/*
 * Host program for the tests: reads commands on stdin, prints hex on stdout.
 *
 *   frame <counter> <s0> [<s1> ...]   -> the fob1 frame, hex bytes without spaces
 *   crc <hexbytes>                    -> the CRC-16/CCITT-FALSE, 4 hex digits
 *
 * One output line per input line ("error" for a bad line). Build:
 *   gcc -std=c99 -Wall -Wextra -O2 -o test_vectors test_vectors.c fireorder_fob1.c
 * Guarded so that an Arduino build (which compiles every .c file of a library folder)
 * sees an empty file.
 */
#ifndef ARDUINO

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fireorder_fob1.h"

static void print_hex(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        printf("%02x", data[i]);
    }
    printf("\n");
}

static int do_frame(char *args)
{
    int16_t samples[FOB1_MAX_CHANNELS];
    uint8_t out[FOB1_MAX_FRAME_LEN];
    char *tok = strtok(args, " \t\r\n");
    char *end;
    long counter, v;
    unsigned n = 0;
    size_t len;
    if (tok == NULL) {
        return -1;
    }
    counter = strtol(tok, &end, 10);
    if (*end != '\0' || counter < 0 || counter > 65535) {
        return -1;
    }
    while ((tok = strtok(NULL, " \t\r\n")) != NULL) {
        v = strtol(tok, &end, 10);
        if (*end != '\0' || v < -32768 || v > 32767 || n >= FOB1_MAX_CHANNELS) {
            return -1;
        }
        samples[n++] = (int16_t)v;
    }
    len = fob1_encode(out, (uint8_t)n, (uint16_t)counter, samples);
    if (len == 0) {
        return -1;
    }
    print_hex(out, len);
    return 0;
}

static int do_crc(const char *hex)
{
    uint8_t data[1024];
    size_t n = 0;
    unsigned byte;
    while (*hex == ' ') {
        hex++;
    }
    while (hex[0] != '\0' && hex[0] != '\n' && hex[0] != '\r') {
        if (n >= sizeof data || sscanf(hex, "%2x", &byte) != 1) {
            return -1;
        }
        data[n++] = (uint8_t)byte;
        hex += 2;
    }
    printf("%04x\n", fob1_crc16(data, n));
    return 0;
}

int main(void)
{
    char line[4096];
    while (fgets(line, sizeof line, stdin) != NULL) {
        int rc = -1;
        if (strncmp(line, "frame ", 6) == 0) {
            rc = do_frame(line + 6);
        } else if (strncmp(line, "crc", 3) == 0) {
            rc = do_crc(line + 3);
        }
        if (rc != 0) {
            printf("error\n");
        }
        fflush(stdout);
    }
    return 0;
}

#endif /* ARDUINO */
