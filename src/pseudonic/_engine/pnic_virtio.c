/*
 * pnic_virtio.c -- virtio-net's receive queue behind pnic_model.h: a split
 * virtqueue (VIRTIO 1.1 section 2.6) whose chains the device fills with
 * struct virtio_net_hdr and a frame (5.1.6), and the interrupt suppression
 * the driver asks for (2.6.7).
 *
 * Ownership (2.6, stated once; models/virtio_net.py holds the same rules
 * sans-IO): a chain is the device's from the moment its head is in the
 * available ring below avail.idx until the device puts {head, len} in the
 * used ring and moves used.idx past it.  The device takes available entries
 * in order and uses them in order; both indices run free over 16 bits.  It
 * never waits for the driver: with no chain available the frame is dropped
 * and counted (MPC), as a NIC drops it.  The device polls the available ring
 * (as vhost does while busy), so it asks for the driver's notification only
 * when it went without a buffer.
 */
#include <stddef.h>
#include <string.h>

#include "pnic_model.h"
#include "pnic_stamp.h"

static struct pnic_virtio *virtio_of(struct pnic_model *m)
{
    return (struct pnic_virtio *)((uint8_t *)m - offsetof(struct pnic_virtio, model));
}

static inline uint16_t *used_event(const struct pnic_segment *seg)
{
    return &seg->vq_avail->ring[seg->hdr->ring_size];
}

static inline uint16_t *avail_event(const struct pnic_segment *seg)
{
    return (uint16_t *)&seg->vq_used->ring[seg->hdr->ring_size];
}

/* vring_need_event (2.6.7.2): did moving an index from old to new pass the
 * index the other side asked to hear about?  All three wrap at 2^16. */
static inline int need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* Where one chain may be written: its descriptors, each device-writable and
 * inside the pool, at most the table's length of them (a loop is refused). */
#define CHAIN_MAX 64u
struct chain {
    uint16_t head;
    uint32_t n;
    uint32_t room;
    struct pnic_vq_desc *d[CHAIN_MAX];
};

static int walk(const struct pnic_virtio *v, const struct pnic_segment *seg, uint16_t head, struct chain *c)
{
    const uint32_t size = seg->hdr->ring_size;
    c->head = head;
    c->n = c->room = 0;
    uint32_t i = head;
    for (uint32_t k = 0; k < CHAIN_MAX && k < size; k++) {
        if (i >= size)
            return -1;
        struct pnic_vq_desc *d = &seg->vq_desc[i];
        /* A receive buffer the device may not write, or one outside the pool (2.6.5). */
        if (!(d->flags & PNIC_VIRTQ_DESC_F_WRITE) || d->addr < seg->hdr->buf_off || d->addr > v->pool_end ||
            d->len > v->pool_end - d->addr)
            return -1;
        c->d[c->n++] = d;
        c->room += d->len;
        if (!(d->flags & PNIC_VIRTQ_DESC_F_NEXT))
            return 0;
        i = d->next;
    }
    return -1;
}

/* Put `len` bytes of src into the chain's buffers, in order. */
static void scatter(struct pnic_segment *seg, const struct chain *c, const uint8_t *src, uint32_t len)
{
    for (uint32_t k = 0; k < c->n && len; k++) {
        uint32_t n = c->d[k]->len < len ? c->d[k]->len : len;
        memcpy(seg->base + c->d[k]->addr, src, n);
        src += n;
        len -= n;
    }
}

/* The header and frame, stamped, when they do not go into one buffer whole. */
static uint8_t scratch[PNIC_VIRTIO_NET_HDR + PNIC_MAX_FRAME];
static struct chain chains[2];

/* Use one chain: {head, len} into the used ring (published by the caller). */
static inline void use(struct pnic_segment *seg, uint16_t at, uint16_t head, uint32_t len)
{
    struct pnic_vq_used_elem *e = &seg->vq_used->ring[at & (seg->hdr->ring_size - 1)];
    e->id = head;
    e->len = len;
}

static inline void publish_used(struct pnic_virtio *v, struct pnic_segment *seg, uint16_t n)
{
    v->used = (uint16_t)(v->used + n);
    v->fresh = 1;
    __atomic_store_n(&seg->dev->written, seg->dev->written + n, __ATOMIC_RELAXED);
    /* The used entries before the index, with release: a driver that sees used.idx sees them. */
    __atomic_store_n(&seg->vq_used->idx, v->used, __ATOMIC_RELEASE);
    __atomic_store_n(&seg->dev->rdh, v->last_avail, __ATOMIC_RELAXED);
}

/* A chain the device may not write (or a head past the table): it is used
 * with nothing written, and the frame is lost -- the driver's fault, which
 * the sanitizer names (PNIC_SAN_NOT_WRITABLE, PNIC_SAN_HEAD_OUTSIDE). */
static int64_t refuse(struct pnic_virtio *v, struct pnic_segment *seg, uint16_t count, uint32_t *flags)
{
    /* The chains before the bad one were to take parts of the frame: they go back empty with it. */
    const uint32_t mask = seg->hdr->ring_size - 1;
    for (uint16_t k = 0; k < count; k++)
        use(seg, (uint16_t)(v->used + k), seg->vq_avail->ring[(uint16_t)(v->last_avail + k) & mask], 0);
    v->last_avail = (uint16_t)(v->last_avail + count);
    publish_used(v, seg, count);
    *flags = PNIC_TX_REFUSED;
    return -1;
}

static int64_t drop(struct pnic_virtio *v, struct pnic_segment *seg, uint32_t *flags)
{
    __atomic_store_n(&seg->dev->mpc, seg->dev->mpc + 1, __ATOMIC_RELAXED);
    if (!v->asked) {
        /* Out of buffers: now the device wants the driver's notification (2.6.10). */
        v->asked = 1;
        __atomic_store_n(avail_event(seg), v->last_avail, __ATOMIC_RELAXED);
        __atomic_store_n(&seg->vq_used->flags, 0, __ATOMIC_RELEASE);
    }
    *flags = PNIC_TX_DROPPED;
    return -1;
}

/* avail.idx read again (acquire: the ring entries below it with it).  Read
 * only when what was read before is used up, as e1000 reads RDT: the driver
 * writes avail.idx as it gives buffers back, and each read of it after such a
 * write is a miss on the driver's line, on the clock.  An old value is safe
 * -- the driver only ever adds entries -- which is why devices read ahead. */
static inline uint16_t look_at_avail(struct pnic_virtio *v, const struct pnic_segment *seg)
{
    return v->avail = __atomic_load_n(&seg->vq_avail->idx, __ATOMIC_ACQUIRE);
}

/* What the driver asked of interrupts: used_event with EVENT_IDX, else avail.flags (2.6.7). */
static inline void look_at_wish(struct pnic_virtio *v, const struct pnic_segment *seg)
{
    v->event_idx = (__atomic_load_n(&seg->drv->features, __ATOMIC_RELAXED) >> PNIC_VIRTIO_RING_F_EVENT_IDX) & 1;
    v->wish = v->event_idx ? __atomic_load_n(used_event(seg), __ATOMIC_ACQUIRE)
                           : __atomic_load_n(&seg->vq_avail->flags, __ATOMIC_ACQUIRE);
}

static int64_t virtio_receive(struct pnic_model *m, const struct pnic_rx_frame *f, int look_again, uint32_t *flags)
{
    struct pnic_virtio *v = virtio_of(m);
    struct pnic_segment *seg = m->seg;
    /* The wish is read first, so that a miss on the driver's line (it re-arms
     * after every handler run) overlaps the copy; the raise decides on it
     * (virtio_decide says why an early read may). */
    look_at_wish(v, seg);
    const uint64_t features = __atomic_load_n(&seg->drv->features, __ATOMIC_RELAXED);
    const int mergeable = (features >> PNIC_VIRTIO_NET_F_MRG_RXBUF) & 1;
    const uint32_t size = seg->hdr->ring_size, total = PNIC_VIRTIO_NET_HDR + f->length;
    /* Too few entries when we looked (or a fault held the frame back): look again. */
    uint16_t avail = look_again || (uint16_t)(v->avail - v->last_avail) < f->parts ? look_at_avail(v, seg) : v->avail;
    if (avail == v->last_avail)
        return drop(v, seg, flags);
    /* The split fault writes a frame over `parts` chains (MRG_RXBUF); each takes at most its share. */
    const uint32_t parts = mergeable ? f->parts : 1u;
    const uint32_t share = (total + parts - 1) / parts;
    const uint16_t first = v->last_avail;
    uint32_t placed = 0, n = 0;
    struct chain *c = &chains[0];
    uint16_t head = seg->vq_avail->ring[first & (size - 1)];
    /* Without MRG_RXBUF every chain must hold the header and the longest frame (5.1.6.3.1). */
    if (walk(v, seg, head, c) < 0 || (!mergeable && c->room < total))
        return refuse(v, seg, 1, flags);
    if (parts == 1 && c->room >= total && c->d[0]->len >= total) {
        /* One buffer holds it all: write it in place, stamp it there. */
        uint8_t *buf = seg->base + c->d[0]->addr;
        struct pnic_virtio_net_hdr h = {0};
        h.num_buffers = 1;
        memcpy(buf, &h, sizeof(h));
        memcpy(buf + PNIC_VIRTIO_NET_HDR, f->data, f->length);
        if (f->stamp_off != 0)
            pnic_stamp_frame_from(buf + PNIC_VIRTIO_NET_HDR, f->data, f->stamp_off, f->csum_off, f->seq, f->stamp_ns);
        use(seg, v->used, head, total);
        v->last_avail++;
        n = 1;
    } else {
        /* Over several buffers or chains: stamp a copy, then scatter it. */
        struct pnic_virtio_net_hdr h = {0};
        memcpy(scratch + PNIC_VIRTIO_NET_HDR, f->data, f->length);
        if (f->stamp_off != 0)
            pnic_stamp_frame(scratch + PNIC_VIRTIO_NET_HDR, f->stamp_off, f->csum_off, f->seq, f->stamp_ns);
        /* First count the chains it takes, so that a frame with too few is dropped whole (nothing consumed). */
        uint16_t at = first;
        uint32_t need = total;
        while (need) {
            if (at == avail && (avail = look_at_avail(v, seg)) == at)
                return drop(v, seg, flags);
            uint16_t hd = seg->vq_avail->ring[at & (size - 1)];
            if (walk(v, seg, hd, &chains[1]) < 0 || chains[1].room == 0)
                return refuse(v, seg, (uint16_t)(n + 1), flags);
            uint32_t take = chains[1].room < share ? chains[1].room : share;
            need -= take < need ? take : need;
            at++;
            n++;
        }
        if (need)
            return drop(v, seg, flags);
        h.num_buffers = (uint16_t)n;
        memcpy(scratch, &h, sizeof(h));
        for (uint32_t k = 0; k < n; k++) {
            uint16_t hd = seg->vq_avail->ring[(uint16_t)(first + k) & (size - 1)];
            walk(v, seg, hd, &chains[1]);
            uint32_t take = chains[1].room < share ? chains[1].room : share;
            if (take > total - placed)
                take = total - placed;
            scatter(seg, &chains[1], scratch + placed, take);
            use(seg, (uint16_t)(v->used + k), hd, take);
            placed += take;
        }
        v->last_avail = (uint16_t)(first + n);
    }
    if (v->asked) {
        /* Buffers again: back to polling, no notifications wanted. */
        v->asked = 0;
        __atomic_store_n(&seg->vq_used->flags, PNIC_VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
    }
    publish_used(v, seg, (uint16_t)n);
    __atomic_store_n(&seg->dev->gprc, seg->dev->gprc + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&seg->dev->gorc, seg->dev->gorc + f->length, __ATOMIC_RELAXED);
    *flags = PNIC_TX_STORED;
    return head;
}

/* What the next receive touches, last touched by the driver's core: the
 * available entry and its descriptor (read), the used entry and index
 * (written), and the buffer. */
static void virtio_prepare(struct pnic_model *m, uint32_t length, struct pnic_warm *w)
{
    struct pnic_virtio *v = virtio_of(m);
    struct pnic_segment *seg = m->seg;
    const uint32_t mask = seg->hdr->ring_size - 1;
    w->nwrite = w->nread = 0;
    w->stream = w->stream_end = NULL;
    w->write[w->nwrite++] = (const uint8_t *)&seg->vq_used->ring[v->used & mask];
    w->write[w->nwrite++] = (const uint8_t *)seg->vq_used;
    /* used_event, which the driver writes as it re-arms: read by the raise. */
    w->read[w->nread++] = (const uint8_t *)used_event(seg);
    if (v->avail == v->last_avail && look_at_avail(v, seg) == v->last_avail)
        return;
    uint16_t head = seg->vq_avail->ring[v->last_avail & mask];
    if (head > mask)
        return;
    const struct pnic_vq_desc *d = &seg->vq_desc[head];
    w->read[w->nread++] = (const uint8_t *)&seg->vq_avail->ring[v->last_avail & mask];
    w->read[w->nread++] = (const uint8_t *)d;
    uint64_t want = (uint64_t)length + PNIC_VIRTIO_NET_HDR, len = d->len < want ? d->len : want;
    if (d->addr >= seg->hdr->buf_off && d->addr <= v->pool_end && len <= v->pool_end - d->addr) {
        w->stream = seg->base + d->addr;
        w->stream_end = w->stream + len;
    }
}

/* A raise with nothing used behind it (a spurious or early interrupt). */
static void virtio_fault_cause(struct pnic_model *m)
{
    virtio_of(m)->fault = 1;
}

/* Does the driver want an interrupt for the uses from old to used (2.6.7)? */
static inline int wants_interrupt(const struct pnic_virtio *v, uint16_t used, uint16_t old)
{
    return v->event_idx ? need_event(v->wish, used, old) : !(v->wish & PNIC_VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* The interrupt policy (2.6.7): after using buffers the device interrupts
 * unless the driver said not to -- with EVENT_IDX, unless used.idx did not
 * pass used_event since the last decision; without it, while avail.flags has
 * NO_INTERRUPT.  A suppressed interrupt is not owed later: a driver that
 * re-enables interrupts must look at the used ring once more itself. */
static uint32_t virtio_decide(struct pnic_model *m, uint64_t *now, uint32_t *announce)
{
    struct pnic_virtio *v = virtio_of(m);
    struct pnic_segment *seg = m->seg;
    const uint16_t used = v->used, old = v->signalled;
    int fire;
    if (v->fault) {
        v->fault = 0;
        fire = 1;
    } else {
        if (used == old) {
            *now = pnic_now_ns();
            return PNIC_RAISE_NONE;
        }
        /* used.idx must be stored before used_event is read (vhost's smp_mb
         * in vhost_notify; the driver's virtio_mb is its mirror image): else
         * a driver that moved used_event and then checked used.idx could miss
         * both ways.  A fence waits for every store before it -- the whole
         * frame, a few hundred ns at 16 KiB -- so it is taken only where it
         * can change the answer, and off the clock: an interrupt is never
         * wrong to send (at worst the driver finds nothing new), so a read
         * that says "send" stands; a "don't" right after a receive is held,
         * and the loop asks again while it waits (pnic_send.c: retry_raise),
         * behind the fence.  An owed interrupt goes out then, as soon as it
         * would have after an inline fence; frames back to back are decided
         * together (need_event takes the range), behind one fence.  The
         * read on the clock is the receive's, made before the frame's copy. */
        if (!v->fresh)
            look_at_wish(v, seg);
        fire = wants_interrupt(v, used, old);
        if (!fire && v->fresh) {
            v->fresh = 0;
            *now = pnic_now_ns();
            return PNIC_RAISE_HOLD;
        }
        if (!fire) {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            look_at_wish(v, seg);
            fire = wants_interrupt(v, used, old);
        }
    }
    v->fresh = 0;
    v->signalled = used;
    *now = pnic_now_ns(); /* the raise, or the decision not to: the send's end either way */
    if (!fire) {
        __atomic_store_n(&seg->dev->quiet, seg->dev->quiet + (uint16_t)(used - old), __ATOMIC_RELAXED);
        return PNIC_RAISE_NONE;
    }
    *announce = PNIC_VIRTIO_ISR_QUEUE;
    return PNIC_RAISE_NOW;
}

/* MSI-X is edge-triggered: nothing stays asserted, nothing is held. */
static int virtio_never(struct pnic_model *m)
{
    (void)m;
    return 0;
}

static const struct pnic_model_ops virtio_ops = {
    .prepare = virtio_prepare,
    .receive = virtio_receive,
    .fault_cause = virtio_fault_cause,
    .decide = virtio_decide,
    .reassert = virtio_never,
    .waiting = virtio_never,
};

void pnic_virtio_init(struct pnic_virtio *v, struct pnic_segment *seg)
{
    memset(v, 0, sizeof(*v));
    v->model.ops = &virtio_ops;
    v->model.seg = seg;
    v->pool_end = seg->hdr->buf_off + (uint64_t)seg->hdr->ring_size * seg->hdr->buf_stride;
    /* Indices continue from what the queue holds (a fresh queue: 0). */
    v->used = v->signalled = __atomic_load_n(&seg->vq_used->idx, __ATOMIC_ACQUIRE);
    v->last_avail = v->avail = (uint16_t)seg->dev->rdh;
    /* Polling from the start: no notification wanted until a buffer is missing. */
    __atomic_store_n(&seg->vq_used->flags, PNIC_VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELEASE);
}
