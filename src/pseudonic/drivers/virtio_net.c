/*
 * The reference virtio-net driver in C: the receive path of
 * models/virtio_net.py's DriverRx, and of Linux's virtio_net
 * (drivers/net/virtio_net.c: virtnet_poll, virtnet_receive, receive_buf,
 * receive_mergeable; drivers/virtio/virtio_ring.c: virtqueue_kick_prepare,
 * virtqueue_enable_cb_prepare, virtqueue_poll), built by the package build
 * and selected as --driver c with --device virtio-net.
 *
 * Descriptor i is buffer i, a chain of one, all made available at open.
 * Per interrupt (MSI-X: no ISR to read, every message is ours): take every
 * used entry.  A frame is the 12-byte header and the frame in its first
 * buffer, plus num_buffers - 1 further used entries with MRG_RXBUF
 * (5.1.6.4); an entry used with less than a header is a chain the device
 * refused, counted and given back.  Each buffer goes back to the device only
 * after its frame was delivered, and avail.idx is published every
 * RX_BUFFER_WRITE entries, as e1000 returns descriptors, so a long batch
 * never starves the device.  NAPI mode (napi_budget > 0): interrupts off,
 * poll up to the budget at a time until a round comes up short, then
 * interrupts on and one more look.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pseudonic.h"

#define RX_BUFFER_WRITE 16u
#define HDR PNIC_VIRTIO_NET_HDR
#define ACCEPTED ((1ull << PNIC_VIRTIO_F_VERSION_1) | (1ull << PNIC_VIRTIO_NET_F_MRG_RXBUF) | \
                  (1ull << PNIC_VIRTIO_RING_F_EVENT_IDX))

const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
const uint32_t pnic_driver_model = PNIC_MODEL_VIRTIO_NET;
const char pnic_driver_name[] = "c";

/* Both indices run free over 16 bits (2.6): a ring slot is idx & (size - 1). */
static uint16_t last_used, avail_idx;
static uint32_t unpublished; /* entries put in the available ring since avail.idx was last published */
static int mergeable, event_idx;
/* A frame over several buffers (MRG_RXBUF), gathered to be delivered whole. */
static uint8_t scratch[PNIC_MAX_FRAME + HDR];

int pnic_driver_open(struct pnic_nic *nic)
{
    /* Before ABI 3 the virtio fields are not there to read. */
    if (nic->abi < 3u || nic->model != PNIC_MODEL_VIRTIO_NET)
        return -1;
    const uint64_t features = nic->offered & ACCEPTED;
    /* Without VERSION_1 the header would not be the 12 bytes (with num_buffers) read below (5.1.6). */
    if (!((features >> PNIC_VIRTIO_F_VERSION_1) & 1))
        return -1;
    pnic_vq_features_write(nic, features);
    mergeable = (features >> PNIC_VIRTIO_NET_F_MRG_RXBUF) & 1;
    event_idx = (features >> PNIC_VIRTIO_RING_F_EVENT_IDX) & 1;
    last_used = 0;
    unpublished = 0;
    for (uint32_t i = 0; i < nic->ring_size; i++) {
        /* Room for the header and a whole buffer's frame: without MRG_RXBUF
         * every chain must hold the header and the frame (5.1.6.3.1).  The
         * header goes at the end of the slot's room, so that the frame after
         * it starts on a cache line, or a page (PNIC_VIRTIO_ROOM). */
        const uint64_t addr = nic->buf_off + (uint64_t)i * nic->buf_stride + (nic->buf_stride - nic->buf_size) - HDR;
        nic->desc[i] = (struct pnic_vq_desc){addr, nic->buf_size + HDR, PNIC_VIRTQ_DESC_F_WRITE, 0};
        nic->avail->ring[i] = (uint16_t)i;
    }
    *pnic_vq_used_event(nic) = 0; /* interrupt me at the first used entry */
    nic->avail->flags = 0;
    avail_idx = (uint16_t)nic->ring_size;
    pnic_vq_avail_publish(nic, avail_idx);
    return 0;
}

/* Publish the entries put in the available ring, then notify if the device
 * asked to hear of them (2.6.10; with EVENT_IDX, avail_event, 2.6.7.2). */
static void publish(struct pnic_nic *nic)
{
    if (unpublished == 0)
        return;
    const uint16_t old = (uint16_t)(avail_idx - unpublished);
    pnic_vq_avail_publish(nic, avail_idx);
    unpublished = 0;
    /* avail.idx stored before the device's wish is read: else a device that
     * asked just now, after looking at the old avail.idx, waits for a
     * notification that never comes (virtqueue_kick_prepare's virtio_mb). */
    pnic_vq_mb();
    int want = event_idx ? pnic_vq_need_event(pnic_vq_avail_event(nic), avail_idx, old)
                         : !(__atomic_load_n(&nic->used->flags, __ATOMIC_ACQUIRE) & PNIC_VIRTQ_USED_F_NO_NOTIFY);
    if (want)
        pnic_vq_notify(nic);
}

/* Make a chain available again: only once its frame is delivered, since a
 * chain in the available ring is the device's to overwrite (2.6). */
static void give_back(struct pnic_nic *nic, uint32_t head)
{
    nic->avail->ring[avail_idx & (nic->ring_size - 1)] = (uint16_t)head;
    avail_idx++;
    if (++unpublished == RX_BUFFER_WRITE)
        publish(nic);
}

/* The k-th used entry from last_used: its head and length, and its buffer --
 * NULL for a head past the table or a length past the buffer (a device that
 * broke 2.6.8's rules; nothing there is read). */
static const uint8_t *entry(struct pnic_nic *nic, uint16_t k, uint32_t *head, uint32_t *len)
{
    const struct pnic_vq_used_elem *e = &nic->used->ring[(uint16_t)(last_used + k) & (nic->ring_size - 1)];
    *head = e->id;
    *len = e->len;
    if (*head >= nic->ring_size || *len > nic->desc[*head].len)
        return NULL;
    return nic->base + nic->desc[*head].addr;
}

/* Take up to `budget` frames the device has used; return how many were taken. */
static uint32_t take(struct pnic_nic *nic, uint32_t budget)
{
    /* Acquire: the used entries before used.idx are seen with it. */
    const uint16_t used = pnic_vq_used_idx(nic);
    uint32_t frames = 0;
    for (; frames < budget && last_used != used; frames++) {
        const uint16_t there = (uint16_t)(used - last_used);
        uint32_t head, len, num = 1, n = 1;
        const uint8_t *buf = entry(nic, 0, &head, &len);
        int ok = buf != NULL && len >= HDR;
        if (ok && mergeable) {
            uint16_t nb;
            memcpy(&nb, buf + offsetof(struct pnic_virtio_net_hdr, num_buffers), sizeof(nb));
            num = nb;
            /* A frame's entries are used together (5.1.6.4): fewer than num_buffers
             * is an error, and the entries there go back with it (receive_mergeable). */
            n = num == 0 ? 1 : num < there ? num : there;
            ok = num != 0 && num <= there;
        }
        if (ok && num == 1) {
            nic->deliver(nic, buf + HDR, len - HDR); /* in place: deliver copies it out */
        } else if (ok) {
            uint32_t total = 0;
            for (uint16_t k = 0; ok && k < n; k++) {
                const uint8_t *b = entry(nic, k, &head, &len);
                const uint32_t skip = k == 0 ? HDR : 0;
                ok = b != NULL && len - skip <= sizeof(scratch) - total;
                if (ok) {
                    memcpy(scratch + total, b + skip, len - skip);
                    total += len - skip;
                }
            }
            if (ok)
                nic->deliver(nic, scratch, total);
        }
        if (!ok)
            nic->rx_errors++;
        for (uint16_t k = 0; k < n; k++) {
            entry(nic, k, &head, &len);
            if (head < nic->ring_size)
                give_back(nic, head);
        }
        last_used = (uint16_t)(last_used + n);
    }
    publish(nic);
    return frames;
}

/* Interrupts off while polling (virtqueue_disable_cb).  With EVENT_IDX
 * used_event is left behind: used.idx already passed it, so the device stays
 * quiet until 2^16 more entries (2.6.7.2); without it the flag (2.6.7.1). */
static void suppress(struct pnic_nic *nic)
{
    if (!event_idx)
        __atomic_store_n(&nic->avail->flags, PNIC_VIRTQ_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}

/* Interrupts on for the next used entry, then one more look; nonzero if
 * there is more.  The look is the race fix (2.6.7.2, virtqueue_enable_cb_prepare
 * then virtqueue_poll): an entry used between the last take and the store
 * below saw interrupts off and raised nothing, and none is owed for it later.
 * The full barrier keeps the store before the load of used.idx. */
static int rearm(struct pnic_nic *nic)
{
    if (event_idx)
        __atomic_store_n(pnic_vq_used_event(nic), last_used, __ATOMIC_RELAXED);
    else
        __atomic_store_n(&nic->avail->flags, 0, __ATOMIC_RELAXED);
    pnic_vq_mb();
    return pnic_vq_used_idx(nic) != last_used;
}

void pnic_driver_interrupt(struct pnic_nic *nic)
{
    const uint32_t budget = nic->napi_budget;
    if (budget == 0) {
        do
            take(nic, UINT32_MAX);
        while (rearm(nic));
        return;
    }
    /* NAPI (virtnet_poll): a round short of the budget means the queue is
     * drained -- napi_complete_done, re-arm, and poll again if it was not. */
    do {
        suppress(nic);
        while (take(nic, budget) == budget)
            ;
    } while (rearm(nic));
}

void pnic_driver_close(struct pnic_nic *nic)
{
    /* No more interrupts wanted: the device may keep using what it holds. */
    if (event_idx)
        __atomic_store_n(pnic_vq_used_event(nic), (uint16_t)(last_used - 1), __ATOMIC_RELAXED);
    __atomic_store_n(&nic->avail->flags, PNIC_VIRTQ_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}
