/* pnic_calibrate.c -- the noise floor of the calling core: spin reading the
 * clock, and every stretch between two reads is time the core was away.
 *
 * The same measurement as hwlatdetect's hwlat tracer (rt-tests; the kernel's
 * trace/trace_hwlat.c: read the clock in a tight loop, a gap over the
 * threshold is a sample), but in user space with interrupts on: a node sees
 * interrupts, preemption and the host's stalls alike, so this loop counts
 * them all.  The gaps go into a log2 histogram (as bpftrace's hist() lays
 * them out), and those over a threshold are kept one by one, with their
 * start, so that two cores measured together show which stalls hit both. */
#include "pnic_cpu.h"
#include "pnic_engine.h"

static inline unsigned gap_bucket(uint64_t gap)
{
    return gap == 0 ? 0u : 63u - (unsigned)__builtin_clzll(gap);
}

void pnic_spin_gaps(uint64_t start_ns, uint64_t duration_ns, uint64_t threshold_ns, struct pnic_gaps *g)
{
    g->loops = g->recorded = g->overflowed = g->worst_ns = 0;
    uint64_t prev = pnic_now_ns();
    while (prev < start_ns) {
        cpu_relax();
        prev = pnic_now_ns();
    }
    /* From the common start, not from our first read after it: a core that
     * came late to the start was away, and that is a gap like any other. */
    prev = start_ns;
    const uint64_t end = start_ns + duration_ns;
    while (prev < end) {
        /* No pause here: the loop should read the clock as often as it can,
         * so that the smallest gap it reports is one clock read. */
        const uint64_t now = pnic_now_ns();
        const uint64_t gap = now - prev;
        g->hist[gap_bucket(gap)]++;
        if (gap > g->worst_ns)
            g->worst_ns = gap;
        if (gap > threshold_ns) {
            if (g->recorded < g->capacity) {
                g->starts[g->recorded] = prev;
                g->lengths[g->recorded] = gap;
                g->recorded++;
            } else {
                g->overflowed++;
            }
        }
        g->loops++;
        prev = now;
    }
}
