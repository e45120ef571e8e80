/*
 * pseudonic.h -- the public interface for drivers written in C.
 *
 * A C driver is a shared library (cc -shared -fPIC -O2 -I"$(pseudonic include-dir)")
 * exporting three entry points and an ABI stamp:
 *
 *     const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
 *     int  pnic_driver_open(struct pnic_nic *nic);       0 = ready, else refused
 *     void pnic_driver_interrupt(struct pnic_nic *nic);  once per interrupt taken
 *     void pnic_driver_close(struct pnic_nic *nic);
 *
 * and optionally
 *
 *     const char pnic_driver_name[] = "...";             the name results show
 *     const uint32_t pnic_driver_model = PNIC_MODEL_VIRTIO_NET;
 *                                                         the device it drives (absent: e1000); a
 *                                                         driver is refused by the other model
 *     void pnic_driver_idle(struct pnic_nic *nic);       called in a loop between
 *                                                         interrupts on the signal line
 *     int  pnic_driver_transmit(struct pnic_nic *nic, const uint8_t *frame, uint32_t length);
 *                                                         queue one frame on the transmit
 *                                                         ring (e1000): 0 = queued, else the
 *                                                         ring is full (it is offered again)
 *
 * The driver node calls them from C: no Python runs per packet.  On the spin
 * and eventfd lines pnic_driver_interrupt runs in the node's main loop; on
 * the signal line it runs INSIDE the signal handler, so it must be
 * async-signal-safe (no malloc, no stdio, no locks) and may preempt
 * pnic_driver_idle at any instruction.
 *
 * Register access has hardware semantics and goes through the inline
 * functions below; everything else (the ring, the buffers) is plain memory
 * laid out as in pnic_layout.h.
 */
#ifndef PSEUDONIC_H
#define PSEUDONIC_H

#include <stdint.h>

#include "pnic_layout.h"

/* 2: register access through the nic (pnic_icr_read, pnic_rdt_write), so
 * that ICR reads are counted and RDT writes can be sanitized; checksum marks.
 * 3: virtio-net -- struct pnic_nic grew at its end (an ABI 2 e1000 driver
 * still runs), pnic_driver_model; the register window (pnic_reg_read/write).
 * 4: the transmit ring -- pnic_driver_transmit, pnic_tdt_write; struct
 * pnic_nic grew at its end again (ABI 2 and 3 drivers still run). */
#define PNIC_DRIVER_ABI 4u

struct pnic_nic {
    uint32_t abi;         /* PNIC_DRIVER_ABI of the node that built this */
    uint32_t ring_size;   /* descriptors, a power of two */
    uint32_t buf_size;    /* bytes per receive buffer */
    uint32_t napi_budget; /* 0: take everything per interrupt; else NAPI-style polling with this budget */
    uint8_t *base;        /* the segment: a descriptor's buffer_addr is an offset from here */
    struct pnic_rx_desc *ring;
    struct pnic_dev_regs *dev;
    struct pnic_drv_regs *drv;
    /* The upper layer.  deliver copies the frame into a socket buffer of its
     * own (the paper's step 10), so the receive buffer may be reused as soon
     * as it returns. */
    void (*deliver)(struct pnic_nic *nic, const uint8_t *frame, uint32_t length);
    /* As deliver, for a frame whose checksums the device checked and found good
     * (Linux: CHECKSUM_UNNECESSARY, so the stack does not check them again).
     * Only for IPCS/TCPCS set, IXSM clear and neither IPE nor TCPE: a frame
     * marked checked that was not is a bad frame the stack will believe. */
    void (*deliver_checked)(struct pnic_nic *nic, const uint8_t *frame, uint32_t length);
    void *upper;
    uint64_t rx_errors; /* the driver counts descriptors it dropped for error bits or a missing EOP */
    void *priv;         /* the driver's own state */
    /* Set by the host when the ring sanitizer is on: RDT writes go through it. */
    void (*rdt_checked)(struct pnic_nic *nic, uint32_t rdt);
    /* ABI 3 -- */
    uint32_t model;      /* PNIC_MODEL_*: the device behind this nic */
    uint32_t buf_stride; /* bytes from one receive buffer to the next (virtio-net: buf_size + the header's room) */
    uint64_t offered;    /* virtio-net: the feature bits the device offers */
    /* virtio-net's receive queue (VIRTIO 1.1 2.6); ring_size is its size.
     * Buffer i is at base + buf_off + i * buf_stride, if the driver wants it there. */
    struct pnic_vq_desc *desc;
    struct pnic_vq_avail *avail;
    struct pnic_vq_used *used;
    uint64_t buf_off;
    /* Set by the host when the sanitizer is on: avail.idx publications go through it. */
    void (*avail_checked)(struct pnic_nic *nic, uint16_t idx);
    /* ABI 4 -- set by the host when the sanitizer is on: TDT writes, and each
     * ring enabled (RCTL.EN, TCTL.EN; tx 0 or 1), go through it. */
    void (*tdt_checked)(struct pnic_nic *nic, uint32_t tdt);
    void (*ring_checked)(struct pnic_nic *nic, int tx);
};

/* ICR is read-to-clear (SDM 13.4.17): one atomic exchange, so that a cause
 * the device sets meanwhile is never lost. */
static inline uint32_t pnic_icr_read(struct pnic_nic *nic)
{
    __atomic_store_n(&nic->drv->icr_reads, nic->drv->icr_reads + 1, __ATOMIC_RELAXED);
    return __atomic_exchange_n(&nic->dev->icr, 0u, __ATOMIC_ACQ_REL);
}

/* Descriptors cleared before RDT moves (SDM 13.4.29): release.  Under
 * --sanitize the write is checked (and the buffers handed back poisoned)
 * first. */
static inline void pnic_rdt_write(struct pnic_nic *nic, uint32_t rdt)
{
    if (nic->rdt_checked != 0)
        nic->rdt_checked(nic, rdt);
    else
        __atomic_store_n(&nic->drv->rdt, rdt, __ATOMIC_RELEASE);
}

/* Transmit descriptors filled before TDT moves (SDM 13.4.40): release.  Under
 * --sanitize the write is checked first. */
static inline void pnic_tdt_write(struct pnic_nic *nic, uint32_t tdt)
{
    if (nic->abi >= 4u && nic->tdt_checked != 0)
        nic->tdt_checked(nic, tdt);
    else
        __atomic_store_n(&nic->drv->tdt, tdt, __ATOMIC_RELEASE);
}

/* RXCSUM: turn checksum offload on or off (PNIC_RXCSUM_IPOFL | PNIC_RXCSUM_TUOFL). */
static inline void pnic_rxcsum_write(struct pnic_nic *nic, uint32_t value)
{
    __atomic_store_n(&nic->drv->rxcsum, value, __ATOMIC_RELEASE);
}

/* IMS and IMC (SDM 13.4.20/21): writing 1s unmasks / masks those causes.
 * Only the driver writes the mask, so a load and a store suffice.  An
 * unmasked cause already pending in ICR raises the line at once. */
static inline void pnic_ims_write(struct pnic_drv_regs *drv, uint32_t causes)
{
    __atomic_store_n(&drv->ims, __atomic_load_n(&drv->ims, __ATOMIC_RELAXED) | causes, __ATOMIC_RELEASE);
}

static inline void pnic_imc_write(struct pnic_drv_regs *drv, uint32_t causes)
{
    __atomic_store_n(&drv->ims, __atomic_load_n(&drv->ims, __ATOMIC_RELAXED) & ~causes, __ATOMIC_RELEASE);
}

/* ITR (SDM 13.4.18): the minimum interval between interrupts, in 256 ns units; 0 turns moderation off. */
static inline void pnic_itr_write(struct pnic_drv_regs *drv, uint32_t units)
{
    __atomic_store_n(&drv->itr, units & 0xffffu, __ATOMIC_RELEASE);
}

/* -- the register window (8254x SDM 13.4), e1000 ------------------------------ */

/* A statistics register's count since the driver last read it: clear on read
 * (SDM 13.6).  The device counts on; the driver keeps where it read. */
static inline uint32_t pnic_stat_read(const uint64_t *count, uint64_t *read)
{
    const uint64_t now = __atomic_load_n(count, __ATOMIC_RELAXED), since = now - *read;
    *read = now;
    return since > 0xffffffffu ? 0xffffffffu : (uint32_t)since;
}

/* Read a register by its offset, with the hardware's semantics: ICR and the
 * statistics clear on read, STATUS says the link is up at 1000 Mb/s full
 * duplex, RDBAL/RDBAH/RDLEN give the ring as programmed (at first the one
 * pseudonic prepared), RDH and TDH the device's heads.  A register the model
 * does not have reads 0. */
static inline uint32_t pnic_reg_read(struct pnic_nic *nic, uint32_t offset)
{
    struct pnic_drv_regs *drv = nic->drv;
    switch (offset) {
    case PNIC_REG_CTRL:
        return drv->ctrl;
    case PNIC_REG_STATUS:
        return PNIC_STATUS_FD | PNIC_STATUS_LU | PNIC_STATUS_SPEED_1000;
    case PNIC_REG_ICR:
        return pnic_icr_read(nic);
    case PNIC_REG_ITR:
        return drv->itr;
    case PNIC_REG_IMS:
        return drv->ims; /* IMS reads the mask; IMC and ICS are write-only */
    case PNIC_REG_RCTL:
        return drv->rctl;
    case PNIC_REG_RDBAL:
        return (uint32_t)drv->rdba;
    case PNIC_REG_RDBAH:
        return (uint32_t)(drv->rdba >> 32);
    case PNIC_REG_RDLEN:
        return drv->rdlen;
    case PNIC_REG_RDH:
        return __atomic_load_n(&nic->dev->rdh, __ATOMIC_ACQUIRE);
    case PNIC_REG_RDT:
        return drv->rdt;
    case PNIC_REG_RDTR:
        return drv->rdtr;
    case PNIC_REG_RXCSUM:
        return drv->rxcsum;
    case PNIC_REG_TCTL:
        return drv->tctl;
    case PNIC_REG_TIPG:
        return drv->tipg;
    case PNIC_REG_TDBAL:
        return (uint32_t)drv->tdba;
    case PNIC_REG_TDBAH:
        return (uint32_t)(drv->tdba >> 32);
    case PNIC_REG_TDLEN:
        return drv->tdlen;
    case PNIC_REG_TDH:
        return __atomic_load_n(&nic->dev->tdh, __ATOMIC_ACQUIRE);
    case PNIC_REG_TDT:
        return drv->tdt;
    case PNIC_REG_RAL0:
        return drv->ral;
    case PNIC_REG_RAH0:
        return drv->rah;
    case PNIC_REG_CRCERRS:
        return pnic_stat_read(&nic->dev->crcerrs, &drv->read_crcerrs);
    case PNIC_REG_RXERRC:
        return pnic_stat_read(&nic->dev->rxerrc, &drv->read_rxerrc);
    case PNIC_REG_MPC:
        return pnic_stat_read(&nic->dev->mpc, &drv->read_mpc);
    case PNIC_REG_ROC:
        return pnic_stat_read(&nic->dev->roc, &drv->read_roc);
    case PNIC_REG_GPRC:
        return pnic_stat_read(&nic->dev->gprc, &drv->read_gprc);
    case PNIC_REG_GPTC:
        return pnic_stat_read(&nic->dev->gptc, &drv->read_gptc);
    case PNIC_REG_GORCL: /* the low half, the 64-bit count latched for GORCH */
        drv->gorc_latched = __atomic_load_n(&nic->dev->gorc, __ATOMIC_RELAXED) - drv->read_gorc;
        return (uint32_t)drv->gorc_latched;
    case PNIC_REG_GORCH: /* the high half; the pair clears when it is read (SDM 13.6.x) */
        drv->read_gorc += drv->gorc_latched;
        return (uint32_t)(drv->gorc_latched >> 32);
    case PNIC_REG_GOTCL:
        drv->gotc_latched = __atomic_load_n(&nic->dev->gotc, __ATOMIC_RELAXED) - drv->read_gotc;
        return (uint32_t)drv->gotc_latched;
    case PNIC_REG_GOTCH:
        drv->read_gotc += drv->gotc_latched;
        return (uint32_t)(drv->gotc_latched >> 32);
    default:
        return 0;
    }
}

/* Latch a ring at the write that enables it (RCTL.EN, TCTL.EN): the device
 * takes it at the generation's change (pnic_e1000.c); the sanitizer checks
 * it first. */
static inline void pnic_latch_ring(struct pnic_nic *nic, int tx)
{
    struct pnic_drv_regs *drv = nic->drv;
    if (tx) {
        drv->tx_ring = drv->tdba;
        drv->tx_ringlen = drv->tdlen;
        drv->tx_tdh = drv->heads_set & PNIC_HEAD_TDH ? drv->tdh_set : PNIC_SAN_NONE;
        drv->heads_set &= ~PNIC_HEAD_TDH;
    } else {
        drv->rx_ring = drv->rdba;
        drv->rx_ringlen = drv->rdlen;
        drv->rx_rdh = drv->heads_set & PNIC_HEAD_RDH ? drv->rdh_set : PNIC_SAN_NONE;
        drv->heads_set &= ~PNIC_HEAD_RDH;
    }
    if (nic->abi >= 4u && nic->ring_checked != 0)
        nic->ring_checked(nic, tx);
}

/* CTRL.RST (SDM 13.4.1): every register the driver writes back to its
 * initial value -- receive and transmit off, no ring, interrupts masked --
 * and ICR cleared. */
static inline void pnic_reset(struct pnic_nic *nic, uint32_t ctrl)
{
    struct pnic_drv_regs *drv = nic->drv;
    drv->ctrl = ctrl & ~PNIC_CTRL_RST;
    __atomic_store_n(&drv->ims, 0u, __ATOMIC_RELEASE);
    drv->itr = drv->rdtr = drv->tipg = drv->ral = drv->rah = 0;
    drv->rdba = drv->tdba = 0;
    drv->rdlen = drv->tdlen = drv->rdh_set = drv->tdh_set = 0;
    drv->heads_set = PNIC_HEAD_RDH | PNIC_HEAD_TDH;
    __atomic_store_n(&drv->rdt, 0u, __ATOMIC_RELEASE);
    __atomic_store_n(&drv->tdt, 0u, __ATOMIC_RELEASE);
    __atomic_store_n(&drv->rctl, 0u, __ATOMIC_RELEASE);
    __atomic_store_n(&drv->tctl, 0u, __ATOMIC_RELEASE);
    __atomic_exchange_n(&nic->dev->icr, 0u, __ATOMIC_ACQ_REL);
    __atomic_store_n(&drv->rx_gen, drv->rx_gen + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&drv->tx_gen, drv->tx_gen + 1, __ATOMIC_RELEASE);
}

/* Write a register by its offset: ICR clears the causes written as 1s, ICS
 * sets causes (the device raises for them), IMS/IMC unmask/mask, RDT and TDT
 * hand descriptors over (through the sanitizer when it is on), RCTL.EN and
 * TCTL.EN latch the ring programmed in RDBAL/RDBAH/RDLEN/RDH or
 * TDBAL/TDBAH/TDLEN/TDH (SDM 14.4, 14.5), CTRL.RST resets.  A write to a
 * register the model does not have is counted (drv->unmodelled). */
static inline void pnic_reg_write(struct pnic_nic *nic, uint32_t offset, uint32_t value)
{
    struct pnic_drv_regs *drv = nic->drv;
    switch (offset) {
    case PNIC_REG_CTRL:
        if (value & PNIC_CTRL_RST)
            pnic_reset(nic, value);
        else
            drv->ctrl = value;
        return;
    case PNIC_REG_ICR: /* write 1s to clear (QEMU's e1000 and the 8254x both allow it) */
        __atomic_fetch_and(&nic->dev->icr, ~value, __ATOMIC_ACQ_REL);
        return;
    case PNIC_REG_ITR:
        pnic_itr_write(drv, value);
        return;
    case PNIC_REG_ICS:
        __atomic_fetch_or(&drv->ics, value, __ATOMIC_RELEASE);
        return;
    case PNIC_REG_IMS:
        pnic_ims_write(drv, value);
        return;
    case PNIC_REG_IMC:
        pnic_imc_write(drv, value);
        return;
    case PNIC_REG_RCTL:
        if (value & PNIC_RCTL_EN)
            pnic_latch_ring(nic, 0);
        __atomic_store_n(&drv->rctl, value, __ATOMIC_RELEASE);
        __atomic_store_n(&drv->rx_gen, drv->rx_gen + 1, __ATOMIC_RELEASE);
        return;
    case PNIC_REG_TCTL:
        if (value & PNIC_TCTL_EN)
            pnic_latch_ring(nic, 1);
        __atomic_store_n(&drv->tctl, value, __ATOMIC_RELEASE);
        __atomic_store_n(&drv->tx_gen, drv->tx_gen + 1, __ATOMIC_RELEASE);
        return;
    case PNIC_REG_RDBAL:
        drv->rdba = (drv->rdba & ~0xffffffffull) | value;
        return;
    case PNIC_REG_RDBAH:
        drv->rdba = (drv->rdba & 0xffffffffull) | (uint64_t)value << 32;
        return;
    case PNIC_REG_RDLEN:
        drv->rdlen = value;
        return;
    case PNIC_REG_RDH: /* taken when the receiver is next enabled: the SDM has RDH written before (14.4) */
        drv->rdh_set = value;
        drv->heads_set |= PNIC_HEAD_RDH;
        return;
    case PNIC_REG_RDT:
        pnic_rdt_write(nic, value);
        return;
    case PNIC_REG_RDTR:
        drv->rdtr = value;
        return;
    case PNIC_REG_RXCSUM:
        pnic_rxcsum_write(nic, value);
        return;
    case PNIC_REG_TDBAL:
        drv->tdba = (drv->tdba & ~0xffffffffull) | value;
        return;
    case PNIC_REG_TDBAH:
        drv->tdba = (drv->tdba & 0xffffffffull) | (uint64_t)value << 32;
        return;
    case PNIC_REG_TDLEN:
        drv->tdlen = value;
        return;
    case PNIC_REG_TDH:
        drv->tdh_set = value;
        drv->heads_set |= PNIC_HEAD_TDH;
        return;
    case PNIC_REG_TDT:
        pnic_tdt_write(nic, value);
        return;
    case PNIC_REG_TIPG:
        drv->tipg = value;
        return;
    case PNIC_REG_RAL0:
        drv->ral = value;
        return;
    case PNIC_REG_RAH0:
        drv->rah = value;
        return;
    case PNIC_REG_RADV:
    case PNIC_REG_TIDV:
    case PNIC_REG_TADV:
    case PNIC_REG_FCAL:
    case PNIC_REG_FCAH:
    case PNIC_REG_FCT:
    case PNIC_REG_FCTTV:
    case PNIC_REG_VET:
        return; /* set up, and nothing a pseudo-NIC does depends on it */
    default:
        if (offset >= PNIC_REG_MTA && offset < PNIC_REG_MTA_END)
            return; /* the multicast table: no address filter is modelled */
        break;
    }
    if (drv->unmodelled++ == 0)
        drv->unmodelled_first = offset;
}

/* DMA memory (e1000): `size` bytes aligned to `align` (a power of two) in the
 * segment, with the address the device understands in *bus -- an offset, as
 * buffer_addr is.  For a driver that refills descriptors with fresh buffers
 * (a descriptor may point at the pool or at DMA memory).  Handed out once,
 * never freed (keep a free list); NULL when there is not that much left. */
static inline void *pnic_dma_alloc(struct pnic_nic *nic, uint64_t size, uint64_t align, uint64_t *bus)
{
    const struct pnic_header *h = (const struct pnic_header *)nic->base;
    if (align == 0 || (align & (align - 1)) != 0 || size > h->dma_size)
        return NULL;
    const uint64_t at = (h->dma_off + nic->drv->dma_used + align - 1) & ~(align - 1);
    if (at + size > h->dma_off + h->dma_size)
        return NULL;
    nic->drv->dma_used = at + size - h->dma_off;
    if (bus != NULL)
        *bus = at;
    return nic->base + at;
}

/* -- virtio-net (VIRTIO 1.1) ------------------------------------------------ */

/* Feature negotiation (3.1.1): accept a subset of nic->offered, in open.
 * Asking for a bit the device does not offer fails the open (the host
 * refuses the driver, naming the bit). */
static inline void pnic_vq_features_write(struct pnic_nic *nic, uint64_t features)
{
    __atomic_store_n(&nic->drv->features, features, __ATOMIC_RELEASE);
}

static inline uint64_t pnic_vq_features(const struct pnic_nic *nic)
{
    return __atomic_load_n(&nic->drv->features, __ATOMIC_ACQUIRE);
}

/* The driver's index into the used ring is free-running too: the device's used.idx, read with acquire, so
 * that the entries before it are seen. */
static inline uint16_t pnic_vq_used_idx(const struct pnic_nic *nic)
{
    return __atomic_load_n(&nic->used->idx, __ATOMIC_ACQUIRE);
}

/* Publish avail.idx (2.6.13.3): the ring entries before it, with release.
 * Under --sanitize the new entries are checked (and their buffers poisoned) first. */
static inline void pnic_vq_avail_publish(struct pnic_nic *nic, uint16_t idx)
{
    if (nic->avail_checked != 0)
        nic->avail_checked(nic, idx);
    else
        __atomic_store_n(&nic->avail->idx, idx, __ATOMIC_RELEASE);
}

/* used_event (EVENT_IDX): interrupt me once used.idx has passed this. */
static inline uint16_t *pnic_vq_used_event(struct pnic_nic *nic)
{
    return &nic->avail->ring[nic->ring_size];
}

/* avail_event (EVENT_IDX): the device wants a notification once avail.idx passes this. */
static inline uint16_t pnic_vq_avail_event(const struct pnic_nic *nic)
{
    return __atomic_load_n((const uint16_t *)&nic->used->ring[nic->ring_size], __ATOMIC_ACQUIRE);
}

/* vring_need_event (2.6.7.2), for both directions. */
static inline int pnic_vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* A store (used_event, avail.flags) before a load of the other side's index:
 * a full barrier, as Linux's virtio_mb. */
static inline void pnic_vq_mb(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* The available buffer notification (2.6.10): a queue notify, counted. */
static inline void pnic_vq_notify(struct pnic_nic *nic)
{
    __atomic_store_n(&nic->drv->notifies, nic->drv->notifies + 1, __ATOMIC_RELEASE);
}

/* The descriptor's DD bit, read with acquire: a driver that sees DD sees the frame. */
static inline uint8_t pnic_desc_status(const struct pnic_rx_desc *d)
{
    return __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
}

#endif /* PSEUDONIC_H */
