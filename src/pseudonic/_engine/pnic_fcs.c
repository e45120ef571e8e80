/* pnic_fcs.c -- the tables of the Ethernet FCS (pnic_stamp.h: pnic_crc32). */
#include "pnic_stamp.h"

uint32_t pnic_crc_table[8][256];

void pnic_crc32_init(void)
{
    if (pnic_crc_table[0][1] != 0)
        return;
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = c & 1u ? (c >> 1) ^ 0xedb88320u : c >> 1;
        pnic_crc_table[0][b] = c;
    }
    /* Table k: the CRC of byte b followed by k zero bytes (slicing by 8). */
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            pnic_crc_table[k][b] = (pnic_crc_table[k - 1][b] >> 8) ^ pnic_crc_table[0][pnic_crc_table[k - 1][b] & 0xff];
}

/* x^(8 n) modulo the CRC's polynomial, reflected: what carries a CRC register
 * through n zero bytes (pnic_fcs_of_stamped).  Square and multiply. */
uint32_t pnic_crc_shift(uint64_t n)
{
    uint32_t result = 1u << 31; /* x^0 */
    uint32_t power = 1u << 23;  /* x^8 */
    for (; n != 0; n >>= 1) {
        if (n & 1u)
            result = pnic_crc_multmod(result, power);
        power = pnic_crc_multmod(power, power);
    }
    return result;
}
