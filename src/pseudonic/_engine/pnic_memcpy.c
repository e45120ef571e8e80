/* pnic_memcpy.c -- the reference every send time is compared with: a bare,
 * hot memcpy of the same size, timed with the same clock reads. */
#include <stdlib.h>
#include <string.h>

#include "pnic_engine.h"

void pnic_memcpy_bench(size_t size, uint32_t repeat, uint64_t *out_ns)
{
    uint8_t *src = aligned_alloc(PNIC_PAGE, (size + PNIC_PAGE - 1) / PNIC_PAGE * PNIC_PAGE);
    uint8_t *dst = aligned_alloc(PNIC_PAGE, (size + PNIC_PAGE - 1) / PNIC_PAGE * PNIC_PAGE);
    if (src == NULL || dst == NULL) {
        free(src);
        free(dst);
        for (uint32_t r = 0; r < repeat; r++)
            out_ns[r] = 0;
        return;
    }
    memset(src, 0xa5, size);
    memset(dst, 0, size);
    for (uint32_t r = 0; r < repeat; r++) {
        uint64_t t0 = pnic_now_ns();
        memcpy(dst, src, size);
        __asm__ __volatile__("" : : "r"(dst) : "memory");
        out_ns[r] = pnic_now_ns() - t0;
    }
    free(src);
    free(dst);
}
