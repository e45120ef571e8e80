/* pnic_driver.c -- the driver node's side of the interrupt line and of the
 * two registers whose access has hardware semantics (ICR read-to-clear, RDT
 * with release ordering). */
#include "pnic_engine.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin on the doorbell (the analogue of the paper's IPI) until it moves past
 * `seen`; then record the handler entry as irq record `index` and return the
 * new doorbell.  Returns 0 when the device has finished and raised nothing
 * new, or the controller asked to stop. */
uint64_t pnic_wait_irq(struct pnic_segment *seg, uint64_t seen, uint32_t index)
{
    uint64_t now = pnic_now_ns(), gap = 0;
    for (;;) {
        if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
            return 0;
        /* State before doorbell: a finished device has published every raise. */
        uint32_t state = __atomic_load_n(&seg->line->state, __ATOMIC_ACQUIRE);
        uint64_t db = __atomic_load_n(&seg->line->doorbell, __ATOMIC_ACQUIRE);
        if (db != seen) {
            uint64_t entry = pnic_now_ns();
            if (index < seg->hdr->capacity) {
                struct pnic_irq_record *r = &seg->irqs[index];
                r->entry_ns = entry;
                r->exit_ns = 0;
                r->doorbell = db;
                r->spin_gap_ns = gap;
            }
            return db;
        }
        if (state >= PNIC_DEV_DONE)
            return 0;
        cpu_relax();
        uint64_t later = pnic_now_ns();
        if (later - now > gap)
            gap = later - now;
        now = later;
    }
}

/* ICR is read-to-clear (SDM 13.4.17): one atomic exchange, so that a cause
 * the device sets meanwhile is never lost. */
uint32_t pnic_read_icr(struct pnic_segment *seg)
{
    return __atomic_exchange_n(&seg->dev->icr, 0u, __ATOMIC_ACQ_REL);
}

/* Descriptors cleared before RDT moves: release. */
void pnic_write_rdt(struct pnic_segment *seg, uint32_t rdt)
{
    __atomic_store_n(&seg->drv->rdt, rdt, __ATOMIC_RELEASE);
}
