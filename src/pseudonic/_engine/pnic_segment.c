/* pnic_segment.c -- where each region of the segment lies. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "pnic_engine.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t pnic_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t pnic_layout_size(uint32_t ring_size, uint32_t buf_size, uint32_t capacity, uint32_t model,
                          uint32_t tx_capacity, struct pnic_header *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = PNIC_MAGIC;
    h->version = PNIC_LAYOUT_VERSION;
    h->ring_size = ring_size;
    h->buf_size = buf_size;
    h->capacity = capacity;
    h->model = model;
    h->tx_capacity = model == PNIC_MODEL_VIRTIO_NET ? 0u : tx_capacity;
    const int virtio = model == PNIC_MODEL_VIRTIO_NET;
    h->buf_stride = virtio ? buf_size + PNIC_VIRTIO_ROOM(buf_size) : buf_size;
    h->offered = virtio ? PNIC_VIRTIO_OFFERED : 0;
    /* Each register block on a page of its own: hardware prefetchers work
     * within a page, and a driver node reading the doorbell, the control
     * line and the header must not drag ICR's line back to its core (see
     * PNIC_LINE_PAIR in pnic_layout.h). */
    uint64_t off = align_up(sizeof(struct pnic_header), PNIC_PAGE);
    h->dev_regs_off = off;
    off = align_up(off + sizeof(struct pnic_dev_regs), PNIC_PAGE);
    h->irq_line_off = off;
    off = align_up(off + sizeof(struct pnic_irq_line), PNIC_PAGE);
    h->drv_regs_off = off;
    off = align_up(off + sizeof(struct pnic_drv_regs), PNIC_PAGE);
    h->ctl_off = off;
    off += sizeof(struct pnic_ctl);
    h->ring_off = off = align_up(off, PNIC_PAGE);
    off += (uint64_t)ring_size * sizeof(struct pnic_rx_desc);
    if (virtio) {
        /* What the driver writes (avail) and what the device writes (used) on pages apart. */
        h->avail_off = off = align_up(off, PNIC_PAGE);
        off += sizeof(struct pnic_vq_avail) + ((uint64_t)ring_size + 1) * sizeof(uint16_t);
        h->used_off = off = align_up(off, PNIC_PAGE);
        off += sizeof(struct pnic_vq_used) + (uint64_t)ring_size * sizeof(struct pnic_vq_used_elem) + sizeof(uint16_t);
    }
    h->buf_off = off = align_up(off, PNIC_PAGE);
    off += (uint64_t)ring_size * h->buf_stride;
    if (!virtio) {
        /* A guard of a buffer's size (at least a page) between the pool and the DMA memory: a buffer
         * address run past the pool lands in neither. */
        off += buf_size > PNIC_PAGE ? buf_size : PNIC_PAGE;
        h->dma_off = off = align_up(off, PNIC_PAGE);
        h->dma_size = (uint64_t)ring_size * buf_size + PNIC_DMA_EXTRA;
        off += h->dma_size;
    }
    h->tx_rec_off = off = align_up(off, PNIC_PAGE);
    off += (uint64_t)capacity * sizeof(struct pnic_tx_record);
    h->raise_rec_off = off = align_up(off, PNIC_PAGE);
    off += (uint64_t)capacity * sizeof(struct pnic_raise_record);
    h->irq_rec_off = off = align_up(off, PNIC_PAGE);
    off += (uint64_t)capacity * sizeof(struct pnic_irq_record);
    h->san_off = off = align_up(off, PNIC_PAGE);
    off += sizeof(struct pnic_sanitizer) + ((uint64_t)PNIC_SAN_DESCS(ring_size) + ring_size) * sizeof(uint32_t);
    if (h->tx_capacity != 0) {
        h->txv_off = off = align_up(off, PNIC_PAGE);
        off += (uint64_t)h->tx_capacity * sizeof(struct pnic_txv_record);
    }
    h->total_size = align_up(off, PNIC_PAGE);
    return h->total_size;
}

int pnic_segment_init(uint8_t *base, size_t len, uint32_t ring_size, uint32_t buf_size, uint32_t capacity,
                      uint32_t model, uint32_t tx_capacity)
{
    struct pnic_header h;
    if (ring_size == 0 || (ring_size & (ring_size - 1)) != 0 || buf_size == 0 || buf_size > 65535 ||
        capacity == 0 || model > PNIC_MODEL_VIRTIO_NET ||
        (model == PNIC_MODEL_VIRTIO_NET && ring_size > PNIC_VIRTIO_MAX_QUEUE))
        return PNIC_EINVAL;
    if (pnic_layout_size(ring_size, buf_size, capacity, model, tx_capacity, &h) > len)
        return PNIC_ELAYOUT;
    memset(base, 0, h.total_size);
    memcpy(base, &h, sizeof(h));
    /* Each descriptor points at its own buffer to begin with (e1000's
     * buffer_addr, virtio's addr: both at offset 0 of 16 bytes); the driver
     * may point it elsewhere in the pool. */
    struct pnic_rx_desc *ring = (struct pnic_rx_desc *)(base + h.ring_off);
    for (uint32_t i = 0; i < ring_size; i++)
        ring[i].buffer_addr = h.buf_off + (uint64_t)i * h.buf_stride;
    struct pnic_drv_regs *drv = (struct pnic_drv_regs *)(base + h.drv_regs_off);
    drv->rxcsum = PNIC_RXCSUM_IPOFL | PNIC_RXCSUM_TUOFL;
    /* BSIZE/BSEX as the pool's buffer size (SDM 13.4.22): 2048 >> k, or 16384 >> k with BSEX. */
    uint32_t bsize = 0;
    for (uint32_t k = 0; k < 4; k++) {
        if (buf_size == 2048u >> k)
            bsize = k << PNIC_RCTL_BSIZE_SHIFT;
        else if (k && buf_size == 32768u >> k)
            bsize = k << PNIC_RCTL_BSIZE_SHIFT | PNIC_RCTL_BSEX;
    }
    drv->rctl = PNIC_RCTL_DEFAULT | bsize;
    /* The ring pseudonic prepared, as if the platform had programmed it and
     * enabled the receiver (RDBAL/RDLEN, latched at RCTL.EN): the device's
     * until the driver programs and enables its own.  No transmit ring: a
     * driver that transmits places its own (SDM 14.5), as every driver does. */
    drv->rdba = drv->rx_ring = h.ring_off;
    drv->rdlen = drv->rx_ringlen = ring_size * (uint32_t)sizeof(struct pnic_rx_desc);
    drv->rx_rdh = drv->tx_tdh = PNIC_SAN_NONE;
    struct pnic_dev_regs *dev = (struct pnic_dev_regs *)(base + h.dev_regs_off);
    dev->ring_base = h.ring_off;
    dev->ring_count = ring_size;
    /* No descriptor holds a buffer, no buffer is held. */
    memset(base + h.san_off + sizeof(struct pnic_sanitizer), 0xff,
           ((size_t)PNIC_SAN_DESCS(ring_size) + ring_size) * sizeof(uint32_t));
    struct pnic_sanitizer *san = (struct pnic_sanitizer *)(base + h.san_off);
    san->rx_base = h.ring_off;
    san->rx_count = ring_size;
    return PNIC_OK;
}

int pnic_segment_attach(uint8_t *base, size_t len, struct pnic_segment *seg)
{
    struct pnic_header *h = (struct pnic_header *)base;
    struct pnic_header want;
    if (len < sizeof(*h) || h->magic != PNIC_MAGIC || h->version != PNIC_LAYOUT_VERSION)
        return PNIC_ELAYOUT;
    /* Recompute rather than trust the offsets: a header from another layout
     * must not send the engine writing outside the buffer. */
    pnic_layout_size(h->ring_size, h->buf_size, h->capacity, h->model, h->tx_capacity, &want);
    if (want.total_size > len || want.total_size != h->total_size || want.irq_rec_off != h->irq_rec_off ||
        want.irq_line_off != h->irq_line_off || want.drv_regs_off != h->drv_regs_off ||
        want.ring_off != h->ring_off || want.buf_off != h->buf_off || want.san_off != h->san_off ||
        want.avail_off != h->avail_off || want.used_off != h->used_off || want.buf_stride != h->buf_stride ||
        want.dma_off != h->dma_off || want.dma_size != h->dma_size || want.txv_off != h->txv_off ||
        h->model > PNIC_MODEL_VIRTIO_NET)
        return PNIC_ELAYOUT;
    seg->base = base;
    seg->hdr = h;
    seg->dev = (struct pnic_dev_regs *)(base + h->dev_regs_off);
    seg->line = (struct pnic_irq_line *)(base + h->irq_line_off);
    seg->drv = (struct pnic_drv_regs *)(base + h->drv_regs_off);
    seg->ctl = (struct pnic_ctl *)(base + h->ctl_off);
    seg->ring = (struct pnic_rx_desc *)(base + h->ring_off);
    seg->vq_desc = (struct pnic_vq_desc *)(base + h->ring_off);
    seg->vq_avail = h->avail_off ? (struct pnic_vq_avail *)(base + h->avail_off) : NULL;
    seg->vq_used = h->used_off ? (struct pnic_vq_used *)(base + h->used_off) : NULL;
    seg->bufs = base + h->buf_off;
    seg->tx = (struct pnic_tx_record *)(base + h->tx_rec_off);
    seg->raises = (struct pnic_raise_record *)(base + h->raise_rec_off);
    seg->irqs = (struct pnic_irq_record *)(base + h->irq_rec_off);
    seg->san = (struct pnic_sanitizer *)(base + h->san_off);
    seg->given_buf = (uint32_t *)(base + h->san_off + sizeof(struct pnic_sanitizer));
    seg->holder = seg->given_buf + PNIC_SAN_DESCS(h->ring_size);
    seg->txv = h->txv_off ? (struct pnic_txv_record *)(base + h->txv_off) : NULL;
    return PNIC_OK;
}

/* Page-table entries of a shared mapping are per process and not copied on
 * fork: without this, each node takes its first page faults on the clock. */
void pnic_prefault(uint8_t *base, size_t len)
{
    uintptr_t start = (uintptr_t)base & ~(uintptr_t)(PNIC_PAGE - 1);
    size_t span = len + ((uintptr_t)base - start);
    if (madvise((void *)start, span, MADV_POPULATE_WRITE) == 0)
        return;
    volatile const uint8_t *p = base;
    uint8_t sink = 0;
    for (size_t off = 0; off < len; off += PNIC_PAGE)
        sink ^= p[off];
    (void)sink;
}
