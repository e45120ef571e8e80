/*
 * enginemodule.c -- the CPython binding of the C core: argument parsing,
 * the GIL released around every loop, C return codes turned into
 * pseudonic._engine.EngineError.  Validation with user-facing messages
 * lives in Python (pseudonic.config); this layer only refuses what would
 * make the C code write outside a buffer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#include "pnic_model.h"
#include "pnic_stamp.h"

static PyObject *EngineError;

static PyObject *fail(int rc)
{
    const char *what = rc == PNIC_EINVAL    ? "argument out of range"
                       : rc == PNIC_ELAYOUT ? "buffer is not a pseudonic segment of this layout version"
                       : rc == PNIC_EFRAME  ? "frame or schedule entry does not fit the segment"
                                            : "engine error";
    PyErr_Format(EngineError, "%s (code %d)", what, rc);
    return NULL;
}

/* Attach a writable buffer as a segment; on failure sets the exception. */
static int attach(Py_buffer *view, struct pnic_segment *seg)
{
    int rc = pnic_segment_attach((uint8_t *)view->buf, (size_t)view->len, seg);
    if (rc != PNIC_OK) {
        fail(rc);
        return -1;
    }
    return 0;
}

static PyObject *py_layout(PyObject *Py_UNUSED(self), PyObject *args)
{
    unsigned int ring, bufsz, cap, model = PNIC_MODEL_E1000, tx_cap = 0;
    struct pnic_header h;
    if (!PyArg_ParseTuple(args, "III|II", &ring, &bufsz, &cap, &model, &tx_cap))
        return NULL;
    pnic_layout_size(ring, bufsz, cap, model, tx_cap, &h);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:K}", "total_size", h.total_size,
                         "dev_regs", h.dev_regs_off, "irq_line", h.irq_line_off, "drv_regs", h.drv_regs_off, "ctl",
                         h.ctl_off, "ring", h.ring_off, "buffers", h.buf_off, "tx_records", h.tx_rec_off,
                         "raise_records", h.raise_rec_off, "irq_records", h.irq_rec_off, "sanitizer", h.san_off,
                         "avail", h.avail_off, "used", h.used_off, "buf_stride", h.buf_stride, "tx_verify", h.txv_off);
}

/* Every shared struct's size and field offsets, for the Python view's check. */
struct layout_entry {
    const char *type;
    const char *field; /* NULL: the row gives sizeof(type) */
    size_t value;
};
#define SIZE(t) {#t, NULL, sizeof(struct pnic_##t)}
#define FIELD(t, f) {#t, #f, offsetof(struct pnic_##t, f)}
static const struct layout_entry layout_entries[] = {
    SIZE(rx_desc), FIELD(rx_desc, buffer_addr), FIELD(rx_desc, length), FIELD(rx_desc, csum),
    FIELD(rx_desc, status), FIELD(rx_desc, errors), FIELD(rx_desc, special),
    SIZE(header), FIELD(header, magic), FIELD(header, version), FIELD(header, ring_size), FIELD(header, buf_size),
    FIELD(header, capacity), FIELD(header, total_size), FIELD(header, dev_regs_off), FIELD(header, irq_line_off),
    FIELD(header, drv_regs_off),
    FIELD(header, ctl_off), FIELD(header, ring_off), FIELD(header, buf_off), FIELD(header, tx_rec_off),
    FIELD(header, raise_rec_off), FIELD(header, irq_rec_off), FIELD(header, t0_ns), FIELD(header, san_off),
    FIELD(header, sanitize), FIELD(header, model), FIELD(header, buf_stride), FIELD(header, records_mask),
    FIELD(header, offered),
    FIELD(header, avail_off), FIELD(header, used_off), FIELD(header, dma_off), FIELD(header, dma_size),
    FIELD(header, txv_off), FIELD(header, tx_capacity),
    SIZE(tx_desc), FIELD(tx_desc, buffer_addr), FIELD(tx_desc, length), FIELD(tx_desc, cso), FIELD(tx_desc, cmd),
    FIELD(tx_desc, status), FIELD(tx_desc, css), FIELD(tx_desc, special),
    SIZE(txv_record), FIELD(txv_record, taken_ns), FIELD(txv_record, handed_ns), FIELD(txv_record, seq),
    FIELD(txv_record, length), FIELD(txv_record, flags), FIELD(txv_record, descs), FIELD(txv_record, first),
    SIZE(vq_desc), FIELD(vq_desc, addr), FIELD(vq_desc, len), FIELD(vq_desc, flags), FIELD(vq_desc, next),
    SIZE(vq_avail), FIELD(vq_avail, flags), FIELD(vq_avail, idx), FIELD(vq_avail, ring),
    SIZE(vq_used), FIELD(vq_used, flags), FIELD(vq_used, idx), FIELD(vq_used, ring),
    SIZE(vq_used_elem), FIELD(vq_used_elem, id), FIELD(vq_used_elem, len),
    SIZE(virtio_net_hdr), FIELD(virtio_net_hdr, flags), FIELD(virtio_net_hdr, gso_type),
    FIELD(virtio_net_hdr, hdr_len), FIELD(virtio_net_hdr, gso_size), FIELD(virtio_net_hdr, csum_start),
    FIELD(virtio_net_hdr, csum_offset), FIELD(virtio_net_hdr, num_buffers),
    SIZE(dev_regs), FIELD(dev_regs, rdh), FIELD(dev_regs, icr), FIELD(dev_regs, mpc), FIELD(dev_regs, gprc),
    FIELD(dev_regs, gorc), FIELD(dev_regs, sent), FIELD(dev_regs, written), FIELD(dev_regs, reasserted), FIELD(dev_regs, run_delay_ns),
    FIELD(dev_regs, minflt), FIELD(dev_regs, nivcsw), FIELD(dev_regs, rt), FIELD(dev_regs, quiet),
    FIELD(dev_regs, crcerrs), FIELD(dev_regs, rxerrc), FIELD(dev_regs, roc), FIELD(dev_regs, rx_off),
    FIELD(dev_regs, ring_base), FIELD(dev_regs, ring_count), FIELD(dev_regs, fault), FIELD(dev_regs, fault_value),
    FIELD(dev_regs, tx_base), FIELD(dev_regs, tx_count), FIELD(dev_regs, tdh), FIELD(dev_regs, gptc), FIELD(dev_regs, gotc),
    FIELD(dev_regs, tx_taken), FIELD(dev_regs, tx_descs), FIELD(dev_regs, tx_off), FIELD(dev_regs, rx_gen),
    FIELD(dev_regs, tx_gen), FIELD(dev_regs, maxrss_kib),
    SIZE(irq_line), FIELD(irq_line, doorbell), FIELD(irq_line, state),
    SIZE(drv_regs), FIELD(drv_regs, rdt), FIELD(drv_regs, ims), FIELD(drv_regs, itr), FIELD(drv_regs, ready),
    FIELD(drv_regs, handled), FIELD(drv_regs, line_seen), FIELD(drv_regs, acked), FIELD(drv_regs, icr_reads), FIELD(drv_regs, run_delay_ns),
    FIELD(drv_regs, minflt), FIELD(drv_regs, nivcsw), FIELD(drv_regs, rt), FIELD(drv_regs, waiting_since),
    FIELD(drv_regs, rxcsum), FIELD(drv_regs, notifies), FIELD(drv_regs, features), FIELD(drv_regs, ctrl),
    FIELD(drv_regs, dma_used),
    FIELD(drv_regs, rctl), FIELD(drv_regs, rdtr), FIELD(drv_regs, ics), FIELD(drv_regs, unmodelled),
    FIELD(drv_regs, unmodelled_first), FIELD(drv_regs, read_mpc), FIELD(drv_regs, read_gprc), FIELD(drv_regs, read_gorc),
    FIELD(drv_regs, read_crcerrs), FIELD(drv_regs, read_rxerrc), FIELD(drv_regs, read_roc),
    FIELD(drv_regs, gorc_latched), FIELD(drv_regs, tdt), FIELD(drv_regs, tx_handed), FIELD(drv_regs, tx_done),
    FIELD(drv_regs, rx_gen), FIELD(drv_regs, rdba), FIELD(drv_regs, rdlen), FIELD(drv_regs, rdh_set),
    FIELD(drv_regs, rx_ring), FIELD(drv_regs, rx_ringlen), FIELD(drv_regs, rx_rdh), FIELD(drv_regs, tdba),
    FIELD(drv_regs, tdlen), FIELD(drv_regs, tdh_set), FIELD(drv_regs, tctl), FIELD(drv_regs, tipg),
    FIELD(drv_regs, tx_ring), FIELD(drv_regs, tx_ringlen), FIELD(drv_regs, tx_tdh), FIELD(drv_regs, tx_gen),
    FIELD(drv_regs, ral), FIELD(drv_regs, rah), FIELD(drv_regs, heads_set), FIELD(drv_regs, read_gptc),
    FIELD(drv_regs, read_gotc), FIELD(drv_regs, gotc_latched),
    SIZE(ctl), FIELD(ctl, stop),
    SIZE(slot), FIELD(slot, due_ns), FIELD(slot, frame), FIELD(slot, flags), FIELD(slot, parts), FIELD(slot, faults),
    FIELD(slot, early_ns),
    SIZE(frame), FIELD(frame, data_off), FIELD(frame, length), FIELD(frame, stamp_off), FIELD(frame, csum_off),
    FIELD(frame, sum), FIELD(frame, kind), FIELD(frame, fcs), FIELD(frame, fcs_shift),
    SIZE(tx_record), FIELD(tx_record, start_ns), FIELD(tx_record, end_ns), FIELD(tx_record, due_ns), FIELD(tx_record, spin_gap_ns),
    FIELD(tx_record, slot), FIELD(tx_record, flags),
    SIZE(raise_record), FIELD(raise_record, raised_ns), FIELD(raise_record, packet), FIELD(raise_record, icr),
    SIZE(irq_record), FIELD(irq_record, wait_ns), FIELD(irq_record, entry_ns), FIELD(irq_record, exit_ns), FIELD(irq_record, doorbell),
    FIELD(irq_record, spin_gap_ns), FIELD(irq_record, delivered),
    SIZE(violation), FIELD(violation, time_ns), FIELD(violation, descriptor), FIELD(violation, rdt),
    SIZE(sanitizer), FIELD(sanitizer, handed), FIELD(sanitizer, released), FIELD(sanitizer, writes),
    FIELD(sanitizer, spent_ns), FIELD(sanitizer, first_ns), FIELD(sanitizer, rx_base), FIELD(sanitizer, rx_count),
    FIELD(sanitizer, rx_head0), FIELD(sanitizer, rx_written0), FIELD(sanitizer, tx_base), FIELD(sanitizer, tx_count),
    FIELD(sanitizer, tx_head0), FIELD(sanitizer, tx_taken0), FIELD(sanitizer, tx_handed), FIELD(sanitizer, tx_writes), FIELD(sanitizer, count),
    FIELD(sanitizer, first),
};

static PyObject *py_structs(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    PyObject *all = PyDict_New();
    if (all == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(layout_entries) / sizeof(layout_entries[0]); i++) {
        const struct layout_entry *e = &layout_entries[i];
        PyObject *one = PyDict_GetItemString(all, e->type); /* borrowed */
        if (one == NULL) {
            one = PyDict_New();
            if (one == NULL || PyDict_SetItemString(all, e->type, one) < 0) {
                Py_XDECREF(one);
                Py_DECREF(all);
                return NULL;
            }
            Py_DECREF(one);
        }
        PyObject *v = PyLong_FromSize_t(e->value);
        if (v == NULL || PyDict_SetItemString(one, e->field ? e->field : "size", v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(all);
            return NULL;
        }
        Py_DECREF(v);
    }
    return all;
}

static PyObject *py_segment_init(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned int ring, bufsz, cap, model = PNIC_MODEL_E1000, tx_cap = 0;
    if (!PyArg_ParseTuple(args, "w*III|II", &view, &ring, &bufsz, &cap, &model, &tx_cap))
        return NULL;
    int rc = pnic_segment_init((uint8_t *)view.buf, (size_t)view.len, ring, bufsz, cap, model, tx_cap);
    PyBuffer_Release(&view);
    if (rc != PNIC_OK)
        return fail(rc);
    Py_RETURN_NONE;
}

static PyObject *py_prefault(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "w*", &view))
        return NULL;
    Py_BEGIN_ALLOW_THREADS pnic_prefault((uint8_t *)view.buf, (size_t)view.len);
    Py_END_ALLOW_THREADS PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *py_receive(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view, frame;
    unsigned int stamp_off, csum_off, seq, errors;
    unsigned long long stamp_ns;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*y*IIIKI", &view, &frame, &stamp_off, &csum_off, &seq, &stamp_ns, &errors))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        if (frame.len == 0 || (size_t)frame.len > seg.hdr->buf_size || stamp_off > 0xffff || csum_off > 0xffff ||
            errors > 0xff || (stamp_off && stamp_off + 12 > frame.len) || (csum_off && csum_off + 2 > frame.len))
            fail(PNIC_EFRAME);
        else
            result = PyLong_FromLongLong(pnic_receive(&seg, (const uint8_t *)frame.buf, (uint32_t)frame.len,
                                                      (uint16_t)stamp_off, (uint16_t)csum_off, seq, stamp_ns,
                                                      (uint8_t)errors));
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&frame);
    return result;
}

static PyObject *py_raise_irq(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned int packet;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*I", &view, &packet))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        uint64_t now;
        int raised = pnic_raise(&seg, packet, &now);
        result = Py_BuildValue("(OK)", raised ? Py_True : Py_False, (unsigned long long)now);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_device_run(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view, slots, frames, blob, tx_frames = {0};
    unsigned long long lead_ns, drain_ns, tx_bps = 0, period_ns = 0;
    unsigned int mode, irq_mode, storm_limit, late, loopback = 0, batch = 0, total = 0;
    int fd, pid, signo;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*y*y*y*KKIiiiIII|y*IKIIK", &view, &slots, &frames, &blob, &lead_ns, &drain_ns, &mode,
                          &fd, &pid, &signo, &irq_mode, &storm_limit, &late, &tx_frames, &loopback, &tx_bps, &batch,
                          &total, &period_ns))
        return NULL;
    PyObject *result = NULL;
    int rc = PNIC_EINVAL;
    if (attach(&view, &seg) == 0) {
        if (mode <= PNIC_LINE_SIGNAL && slots.len % sizeof(struct pnic_slot) == 0 && frames.len % sizeof(struct pnic_frame) == 0 &&
            (tx_frames.buf == NULL || tx_frames.len % sizeof(uint32_t) == 0) &&
            slots.len / sizeof(struct pnic_slot) <= UINT32_MAX && frames.len / sizeof(struct pnic_frame) <= UINT32_MAX) {
            struct pnic_send_plan plan = {
                .slots = (const struct pnic_slot *)slots.buf,
                .nslots = (uint32_t)(slots.len / sizeof(struct pnic_slot)),
                .frames = (const struct pnic_frame *)frames.buf,
                .nframes = (uint32_t)(frames.len / sizeof(struct pnic_frame)),
                .blob = (const uint8_t *)blob.buf,
                .blob_len = (size_t)blob.len,
                .lead_ns = lead_ns,
                .drain_ns = drain_ns,
                .line = {.mode = mode, .fd = fd, .pid = pid, .signo = signo},
                .irq_mode = irq_mode,
                .storm_limit = storm_limit,
                .late = late,
                .tx_frames = (const uint32_t *)tx_frames.buf,
                .ntx = (uint32_t)(tx_frames.buf != NULL ? tx_frames.len / sizeof(uint32_t) : 0),
                .loopback = loopback,
                .tx_bits_per_s = tx_bps,
                .batch = batch,
                .total = total,
                .period_ns = period_ns,
            };
            union {
                struct pnic_e1000 e1000;
                struct pnic_virtio virtio;
            } model;
            struct pnic_model *m;
            if (seg.hdr->model == PNIC_MODEL_VIRTIO_NET) {
                pnic_virtio_init(&model.virtio, &seg);
                m = &model.virtio.model;
            } else {
                pnic_e1000_init(&model.e1000, &seg, irq_mode, &plan);
                m = &model.e1000.model;
            }
            Py_BEGIN_ALLOW_THREADS rc = pnic_send_run(&seg, &plan, m);
            Py_END_ALLOW_THREADS
        }
        if (rc == PNIC_OK) {
            result = Py_None;
            Py_INCREF(result);
        } else {
            fail(rc);
        }
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&slots);
    PyBuffer_Release(&frames);
    PyBuffer_Release(&blob);
    if (tx_frames.buf != NULL)
        PyBuffer_Release(&tx_frames);
    return result;
}

static PyObject *py_wait_irq_or_tx(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned long long seen, tx_seen;
    unsigned int index;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*KIK", &view, &seen, &index, &tx_seen))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        uint64_t db;
        Py_BEGIN_ALLOW_THREADS db = pnic_wait_irq_or_tx(&seg, seen, index, tx_seen);
        Py_END_ALLOW_THREADS result = PyLong_FromUnsignedLongLong(db);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_wait_running(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*", &view))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        Py_BEGIN_ALLOW_THREADS pnic_wait_running(&seg);
        Py_END_ALLOW_THREADS result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&view);
    return result;
}

/* A Python driver's rx_burst (nic.py): from descriptor `start` of `ring` (legacy receive descriptors), the
 * run of those written back (DD, read with acquire, as pnic_desc_status), at most `max`: each one's buffer
 * address, length, status and errors into the four arrays.  Returns how many. */
static PyObject *py_rx_burst(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer ring, addr, len, status, errors;
    unsigned int start, max;
    if (!PyArg_ParseTuple(args, "w*IIw*w*w*w*", &ring, &start, &max, &addr, &len, &status, &errors))
        return NULL;
    const uint32_t n = (uint32_t)((size_t)ring.len / sizeof(struct pnic_rx_desc));
    PyObject *result = NULL;
    if (n == 0 || start >= n || (size_t)addr.len < max * sizeof(uint64_t) || (size_t)len.len < max * sizeof(uint32_t) ||
        (size_t)status.len < max || (size_t)errors.len < max) {
        fail(PNIC_EINVAL);
    } else {
        struct pnic_rx_desc *d = ring.buf;
        uint32_t k = 0;
        for (uint32_t i = start; k < max; k++, i = i + 1 == n ? 0 : i + 1) {
            const uint8_t st = __atomic_load_n(&d[i].status, __ATOMIC_ACQUIRE);
            if (!(st & PNIC_RXD_STAT_DD))
                break;
            ((uint64_t *)addr.buf)[k] = d[i].buffer_addr;
            ((uint32_t *)len.buf)[k] = d[i].length;
            ((uint8_t *)status.buf)[k] = st;
            ((uint8_t *)errors.buf)[k] = d[i].errors;
        }
        result = PyLong_FromUnsignedLong(k);
    }
    PyBuffer_Release(&ring);
    PyBuffer_Release(&addr);
    PyBuffer_Release(&len);
    PyBuffer_Release(&status);
    PyBuffer_Release(&errors);
    return result;
}

/* deliver_many's copy (upper.py): `n` frames of `src` at the offsets and lengths given, back to back in one new
 * bytes object -- the socket buffers of a burst, made in one call. */
static PyObject *py_gather(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer src, offsets, lengths;
    unsigned int n;
    if (!PyArg_ParseTuple(args, "y*y*y*I", &src, &offsets, &lengths, &n))
        return NULL;
    PyObject *result = NULL;
    uint64_t total = 0;
    int ok = (size_t)offsets.len >= n * sizeof(uint64_t) && (size_t)lengths.len >= n * sizeof(uint32_t);
    for (uint32_t k = 0; ok && k < n; k++) {
        const uint64_t o = ((const uint64_t *)offsets.buf)[k], l = ((const uint32_t *)lengths.buf)[k];
        ok = o <= (uint64_t)src.len && l <= (uint64_t)src.len - o;
        total += l;
    }
    if (!ok) {
        fail(PNIC_EINVAL);
    } else if ((result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total)) != NULL) {
        uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
        for (uint32_t k = 0; k < n; k++) {
            const uint32_t l = ((const uint32_t *)lengths.buf)[k];
            memcpy(out, (const uint8_t *)src.buf + ((const uint64_t *)offsets.buf)[k], l);
            out += l;
        }
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&lengths);
    return result;
}

/* Stamp a frame as the host does before it hands it to a driver (pnic_stamp.h). */
static PyObject *py_stamp_frame(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer frame;
    unsigned int stamp_off, csum_off, seq;
    unsigned long long ts;
    if (!PyArg_ParseTuple(args, "w*IIIK", &frame, &stamp_off, &csum_off, &seq, &ts))
        return NULL;
    PyObject *result = NULL;
    if (stamp_off == 0 || stamp_off + 12u > (size_t)frame.len || stamp_off > 0xffffu || csum_off > 0xffffu ||
        (csum_off != 0 && csum_off + 2u > (size_t)frame.len)) {
        fail(PNIC_EFRAME);
    } else {
        pnic_stamp_frame(frame.buf, (uint16_t)stamp_off, (uint16_t)csum_off, seq, ts);
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&frame);
    return result;
}

static PyObject *py_wait_irq(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned long long seen;
    unsigned int index;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*KI", &view, &seen, &index))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        uint64_t db;
        Py_BEGIN_ALLOW_THREADS db = pnic_wait_irq(&seg, seen, index);
        Py_END_ALLOW_THREADS result = PyLong_FromUnsignedLongLong(db);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_read_icr(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*", &view))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        struct pnic_nic nic = {.dev = seg.dev, .drv = seg.drv};
        result = PyLong_FromUnsignedLong(pnic_icr_read(&nic));
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_write_rdt(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned int rdt;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*I", &view, &rdt))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        /* Under the sanitizer a write past the ring is a finding of the run, as for a C driver.  With the
         * receiver off RDT is only stored: the ring it indexes is the one enabling will latch. */
        uint64_t value;
        const int on = (seg.drv->rctl & PNIC_RCTL_EN) != 0 &&
                       pnic_ring_fault(&seg, seg.drv->rx_ring, seg.drv->rx_ringlen, PNIC_SAN_NONE, 0, &value) ==
                           PNIC_FAULT_NONE; /* a ring the device cannot use: the device stops on it, naming it */
        if (on && rdt >= seg.drv->rx_ringlen / sizeof(struct pnic_rx_desc) && !seg.hdr->sanitize) {
            fail(PNIC_EINVAL);
        } else {
            if (seg.hdr->sanitize)
                pnic_rdt_checked(&seg, rdt);
            else
                __atomic_store_n(&seg.drv->rdt, rdt, __ATOMIC_RELEASE);
            result = Py_None;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&view);
    return result;
}

/* The register window (pseudonic.h: pnic_reg_read, pnic_reg_write), for Python drivers: the same functions C
 * drivers compile in.  An RDT write goes through py_write_rdt's path (the sanitizer, when it is on), TDT
 * writes and enabled rings through the sanitizer's hooks, on the segment of the call. */
static struct pnic_segment *window_seg;

static void window_tdt_checked(struct pnic_nic *nic, uint32_t tdt)
{
    (void)nic;
    pnic_tdt_checked(window_seg, tdt);
}

static void window_ring_checked(struct pnic_nic *nic, int tx)
{
    (void)nic;
    pnic_ring_checked(window_seg, tx);
}

static int window(Py_buffer *view, struct pnic_segment *seg, struct pnic_nic *nic)
{
    if (attach(view, seg) != 0)
        return -1;
    if (seg->hdr->model != PNIC_MODEL_E1000) {
        fail(PNIC_EINVAL); /* the window is the 8254x's */
        return -1;
    }
    memset(nic, 0, sizeof(*nic));
    nic->abi = PNIC_DRIVER_ABI;
    nic->base = seg->base;
    nic->ring_size = seg->hdr->ring_size;
    nic->ring = seg->ring;
    nic->dev = seg->dev;
    nic->drv = seg->drv;
    if (seg->hdr->sanitize) {
        window_seg = seg;
        nic->tdt_checked = window_tdt_checked;
        nic->ring_checked = window_ring_checked;
    }
    return 0;
}

static PyObject *py_reg_read(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned int offset;
    struct pnic_segment seg;
    struct pnic_nic nic;
    if (!PyArg_ParseTuple(args, "w*I", &view, &offset))
        return NULL;
    PyObject *result = NULL;
    if (window(&view, &seg, &nic) == 0)
        result = PyLong_FromUnsignedLong(pnic_reg_read(&nic, offset));
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_write_rdt(PyObject *self, PyObject *args);

/* pnic_dma_alloc for Python drivers: the bus address of `size` bytes aligned to `align`, or -1. */
static PyObject *py_dma_alloc(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned long long size, align;
    struct pnic_segment seg;
    struct pnic_nic nic;
    if (!PyArg_ParseTuple(args, "w*KK", &view, &size, &align))
        return NULL;
    PyObject *result = NULL;
    if (window(&view, &seg, &nic) == 0) {
        uint64_t bus = 0;
        result = PyLong_FromLongLong(pnic_dma_alloc(&nic, size, align, &bus) != NULL ? (long long)bus : -1);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_reg_write(PyObject *self, PyObject *args)
{
    Py_buffer view;
    unsigned int offset, value;
    struct pnic_segment seg;
    struct pnic_nic nic;
    if (!PyArg_ParseTuple(args, "w*II", &view, &offset, &value))
        return NULL;
    PyObject *result = NULL;
    if (window(&view, &seg, &nic) == 0) {
        if (offset == PNIC_REG_RDT) {
            PyBuffer_Release(&view);
            PyObject *rdt_args = Py_BuildValue("(OI)", PyTuple_GET_ITEM(args, 0), value);
            if (rdt_args == NULL)
                return NULL;
            result = py_write_rdt(self, rdt_args);
            Py_DECREF(rdt_args);
            return result;
        }
        pnic_reg_write(&nic, offset, value);
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&view);
    return result;
}

/* virtio-net: publish avail.idx, through the sanitizer when it is on (pseudonic.h: pnic_vq_avail_publish). */
static PyObject *py_publish_avail(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned int idx;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*I", &view, &idx))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        if (seg.vq_avail == NULL || idx > 0xffff) {
            fail(PNIC_EINVAL);
        } else {
            if (seg.hdr->sanitize)
                pnic_avail_checked(&seg, (uint16_t)idx);
            else
                __atomic_store_n(&seg.vq_avail->idx, (uint16_t)idx, __ATOMIC_RELEASE);
            result = Py_None;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&view);
    return result;
}

/* seg, seen, index [, extra int] -> the line functions of pnic_wait.c */
static PyObject *py_wait_irq_eventfd(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned long long seen;
    unsigned int index;
    int fd;
    unsigned long long busy_poll_ns;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*KIiK", &view, &seen, &index, &fd, &busy_poll_ns))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        uint64_t db;
        Py_BEGIN_ALLOW_THREADS db = pnic_wait_irq_eventfd(&seg, seen, index, fd, busy_poll_ns);
        Py_END_ALLOW_THREADS result = PyLong_FromUnsignedLongLong(db);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_take_irq(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned long long seen;
    unsigned int index;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*KI", &view, &seen, &index))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0)
        result = PyLong_FromUnsignedLongLong(pnic_take_irq(&seg, seen, index));
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_idle_wait(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned long long seen;
    int signo;
    unsigned long long busy_poll_ns;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*KiK", &view, &seen, &signo, &busy_poll_ns))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        int more;
        Py_BEGIN_ALLOW_THREADS more = pnic_idle_wait(&seg, seen, signo, busy_poll_ns);
        Py_END_ALLOW_THREADS result = PyBool_FromLong(more);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_record_exit(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned int index;
    unsigned long long doorbell, delivered;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*IKK", &view, &index, &doorbell, &delivered))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        pnic_record_exit(&seg, index, doorbell, delivered);
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&view);
    return result;
}

/* IMS / IMC / ITR writes, through the same inline functions C drivers use. */
static PyObject *py_write_mask(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    const char *reg;
    unsigned int value;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*sI", &view, &reg, &value))
        return NULL;
    PyObject *result = NULL;
    if (attach(&view, &seg) == 0) {
        if (strcmp(reg, "ims") == 0)
            pnic_ims_write(seg.drv, value);
        else if (strcmp(reg, "imc") == 0)
            pnic_imc_write(seg.drv, value);
        else if (strcmp(reg, "itr") == 0 && value <= 0xffff)
            pnic_itr_write(seg.drv, value);
        else if (strcmp(reg, "rxcsum") == 0)
            __atomic_store_n(&seg.drv->rxcsum, value, __ATOMIC_RELEASE);
        else
            reg = NULL;
        if (reg == NULL) {
            fail(PNIC_EINVAL);
        } else {
            result = Py_None;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&view);
    return result;
}

/* stream.py's log-linear histogram: x counted in bucket e * 128 + (|x| >> e),
 * e the shift that leaves |x|'s top 8 bits; negative values by magnitude. */
static void hist_count(int64_t *pos, int64_t *neg, int64_t x)
{
    const uint64_t m = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    const int bits = m == 0 ? 0 : 64 - __builtin_clzll(m);
    const int e = bits > 8 ? bits - 8 : 0;
    const size_t b = (size_t)e * 128u + (size_t)(m >> e);
    if (x < 0)
        neg[b]++;
    else
        pos[b]++;
}

/* stream.py's log-linear histogram, one pass: each int64 counted in its
 * bucket (e * 128 + (v >> e), e the shift that leaves v's top 8 bits), the
 * negative ones by magnitude in `neg`; returns (n, sum, min, max). */
static PyObject *py_hist_add(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer pos, neg, values;
    if (!PyArg_ParseTuple(args, "w*w*y*", &pos, &neg, &values))
        return NULL;
    PyObject *result = NULL;
    const size_t nb = (size_t)pos.len / sizeof(int64_t);
    if (pos.len != neg.len || nb < 57 * 128 || values.len % sizeof(int64_t) != 0) {
        fail(PNIC_EINVAL);
    } else {
        int64_t *p = pos.buf, *q = neg.buf;
        const int64_t *v = values.buf;
        const size_t n = (size_t)values.len / sizeof(int64_t);
        double sum = 0;
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t k = 0; k < n; k++) {
            const int64_t x = v[k];
            sum += (double)x;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            hist_count(p, q, x);
        }
        result = Py_BuildValue("(ndLL)", (Py_ssize_t)n, sum, (long long)lo, (long long)hi);
    }
    PyBuffer_Release(&pos);
    PyBuffer_Release(&neg);
    PyBuffer_Release(&values);
    return result;
}

/* stream.py's Fold.packets in one pass over a ring of packet records (no
 * copy): records first .. first + n - 1 at (i & mask), entry i planned at
 * slot_due[i % nslots] + (i / nslots) * period_ns after t0.  Folds into
 * `acc` (stream.PACKET_ACC names its slots) and the send-time and
 * device-deviation histograms; the band is stream's, in parts per million. */
static PyObject *py_fold_packets(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer ring, due, acc, sp, sn, dp, dn;
    unsigned long long first, n, mask, period_ns, t0;
    unsigned int band_ppm;
    if (!PyArg_ParseTuple(args, "y*KKKy*KKIw*w*w*w*w*", &ring, &first, &n, &mask, &due, &period_ns, &t0, &band_ppm,
                          &acc, &sp, &sn, &dp, &dn))
        return NULL;
    PyObject *result = NULL;
    const size_t nslots = (size_t)due.len / sizeof(int64_t), nrec = (size_t)ring.len / sizeof(struct pnic_tx_record);
    const size_t nb = (size_t)sp.len / sizeof(int64_t);
    if (nslots == 0 || (uint64_t)mask + 1 != nrec || (nrec & mask) != 0 || acc.len != 16 * sizeof(int64_t) ||
        nb < 57 * 128 || sn.len != sp.len || dp.len != sp.len || dn.len != sp.len) {
        fail(PNIC_EINVAL);
    } else {
        const struct pnic_tx_record *rec = ring.buf;
        const int64_t *d = due.buf;
        int64_t *a = acc.buf;
        int64_t *spos = sp.buf, *sneg = sn.buf, *dpos = dp.buf, *dneg = dn.buf;
        /* acc: 0 stored, 1 send n, 2 send sum, 3 send min, 4 send max, 5 dev n, 6 dev sum, 7 dev min, 8 dev max,
         * 9 paced, 10 inside, 11 over 1 us, 12 stalls over 10 us, 13 longest stall, 14 last start, 15 its plan */
        for (uint64_t i = first; i < first + n; i++) {
            const struct pnic_tx_record *r = &rec[i & mask];
            const int64_t start = (int64_t)r->start_ns, end = (int64_t)r->end_ns;
            const int64_t planned = (int64_t)t0 + d[i % nslots] + (int64_t)((i / nslots) * period_ns);
            if (r->flags & PNIC_TX_STORED) {
                const int64_t st = end - start;
                a[0]++;
                a[1]++;
                a[2] += st;
                a[3] = a[1] == 1 || st < a[3] ? st : a[3];
                a[4] = a[1] == 1 || st > a[4] ? st : a[4];
                hist_count(spos, sneg, st);
            }
            if (r->spin_gap_ns > 10000u)
                a[12]++;
            if ((int64_t)r->spin_gap_ns > a[13])
                a[13] = (int64_t)r->spin_gap_ns;
            if (a[14] != 0) {
                const int64_t expected = planned - a[15], dev = (start - a[14]) - expected;
                a[5]++;
                a[6] += dev;
                a[7] = a[5] == 1 || dev < a[7] ? dev : a[7];
                a[8] = a[5] == 1 || dev > a[8] ? dev : a[8];
                hist_count(dpos, dneg, dev);
                const int64_t mag = dev < 0 ? -dev : dev;
                if (expected > 0) {
                    a[9]++;
                    if ((__int128)mag * 1000000 <= (__int128)band_ppm * expected)
                        a[10]++;
                }
                if (mag > 1000)
                    a[11]++;
            }
            a[14] = start;
            a[15] = planned;
        }
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&ring);
    PyBuffer_Release(&due);
    PyBuffer_Release(&acc);
    PyBuffer_Release(&sp);
    PyBuffer_Release(&sn);
    PyBuffer_Release(&dp);
    PyBuffer_Release(&dn);
    return result;
}

/* A long run's verifier (pnic_verify.c), kept in a capsule with its own copies of the plan's part. */
struct verifier_box {
    struct pnic_verifier v;
    void *frames, *blob, *frame_of;
};

static void box_free(struct verifier_box *b)
{
    pnic_verifier_free(&b->v);
    PyMem_Free(b->frames);
    PyMem_Free(b->blob);
    PyMem_Free(b->frame_of);
    PyMem_Free(b);
}

static void verifier_free(PyObject *capsule)
{
    struct verifier_box *b = PyCapsule_GetPointer(capsule, "pseudonic.verifier");
    if (b != NULL)
        box_free(b);
}

static struct pnic_verifier *verifier_of(PyObject *capsule)
{
    struct verifier_box *b = PyCapsule_GetPointer(capsule, "pseudonic.verifier");
    return b != NULL ? &b->v : NULL;
}

static void *copy_of(const Py_buffer *b)
{
    void *p = PyMem_Malloc(b->len > 0 ? (size_t)b->len : 1);
    if (p != NULL && b->len > 0)
        memcpy(p, b->buf, (size_t)b->len);
    return p;
}

static PyObject *py_verifier_new(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer frames, blob, frame_of;
    unsigned int total, window;
    if (!PyArg_ParseTuple(args, "y*y*y*II", &frames, &blob, &frame_of, &total, &window))
        return NULL;
    PyObject *cap = NULL;
    struct verifier_box *b = NULL;
    if (frames.len % sizeof(struct pnic_frame) != 0 || frame_of.len % sizeof(uint32_t) != 0 ||
        frames.len / sizeof(struct pnic_frame) > UINT32_MAX || frame_of.len / sizeof(uint32_t) > UINT32_MAX) {
        fail(PNIC_EINVAL);
    } else if ((b = PyMem_Calloc(1, sizeof(*b))) == NULL || (b->frames = copy_of(&frames)) == NULL ||
               (b->blob = copy_of(&blob)) == NULL || (b->frame_of = copy_of(&frame_of)) == NULL) {
        PyErr_NoMemory();
    } else {
        b->v.frames = b->frames;
        b->v.nframes = (uint32_t)(frames.len / sizeof(struct pnic_frame));
        b->v.blob = b->blob;
        b->v.blob_len = (uint64_t)blob.len;
        b->v.frame_of = b->frame_of;
        b->v.nslots = (uint32_t)(frame_of.len / sizeof(uint32_t));
        b->v.total = total;
        int rc = pnic_verifier_init(&b->v, window);
        if (rc != PNIC_OK)
            fail(rc);
        else if ((cap = PyCapsule_New(b, "pseudonic.verifier", verifier_free)) != NULL)
            b = NULL;
    }
    if (b != NULL)
        box_free(b);
    PyBuffer_Release(&frames);
    PyBuffer_Release(&blob);
    PyBuffer_Release(&frame_of);
    return cap;
}

/* `n` lengths in `lengths` whose frames fit back to back in `blob`. */
static int blob_holds(const Py_buffer *blob, const Py_buffer *lengths, uint32_t n)
{
    if ((size_t)lengths->len < n * sizeof(uint32_t))
        return 0;
    uint64_t total = 0;
    for (uint32_t k = 0; k < n; k++)
        total += ((const uint32_t *)lengths->buf)[k];
    return total <= (uint64_t)blob->len;
}

/* `n` frames back to back in `blob` (as gather made them), of the lengths given, checked as they come; with
 * `match`, only matched instead: each one's entry (or -1) returned as int64s, nothing counted. */
static PyObject *blob_frames(PyObject *args, int match)
{
    PyObject *cap;
    Py_buffer blob, lengths;
    unsigned int n;
    if (!PyArg_ParseTuple(args, "Oy*y*I", &cap, &blob, &lengths, &n))
        return NULL;
    PyObject *result = NULL;
    struct pnic_verifier *v = verifier_of(cap);
    if (v != NULL) {
        if (!blob_holds(&blob, &lengths, n)) {
            fail(PNIC_EINVAL);
        } else if (!match || (result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n * 8)) != NULL) {
            int64_t *seq = match ? (int64_t *)PyBytes_AS_STRING(result) : NULL;
            const uint8_t *p = blob.buf;
            for (uint32_t k = 0; k < n; k++) {
                const uint32_t l = ((const uint32_t *)lengths.buf)[k];
                if (match)
                    seq[k] = pnic_verify_match(v, p, l);
                else
                    pnic_verify_frame(v, p, l);
                p += l;
            }
            if (!match) {
                result = Py_None;
                Py_INCREF(result);
            }
        }
    }
    PyBuffer_Release(&blob);
    PyBuffer_Release(&lengths);
    return result;
}

static PyObject *py_verify_blob(PyObject *Py_UNUSED(self), PyObject *args)
{
    return blob_frames(args, 0);
}

static PyObject *py_verify_match_blob(PyObject *Py_UNUSED(self), PyObject *args)
{
    return blob_frames(args, 1);
}

/* Each item of a list of bytes-like socket buffers, in order. */
static PyObject *py_verify_list(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap, *list;
    if (!PyArg_ParseTuple(args, "OO!", &cap, &PyList_Type, &list))
        return NULL;
    struct pnic_verifier *v = verifier_of(cap);
    if (v == NULL)
        return NULL;
    const Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_buffer b;
        if (PyObject_GetBuffer(PyList_GET_ITEM(list, k), &b, PyBUF_SIMPLE) < 0)
            return NULL;
        pnic_verify_frame(v, b.buf, b.len > UINT32_MAX ? UINT32_MAX : (uint32_t)b.len);
        PyBuffer_Release(&b);
    }
    Py_RETURN_NONE;
}

/* Per socket buffer of a list, the entry it carries intact, or -1: int64s, native order. */
static PyObject *py_verify_match_list(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap, *list;
    if (!PyArg_ParseTuple(args, "OO!", &cap, &PyList_Type, &list))
        return NULL;
    const struct pnic_verifier *v = verifier_of(cap);
    if (v == NULL)
        return NULL;
    const Py_ssize_t n = PyList_GET_SIZE(list);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL)
        return NULL;
    int64_t *seq = (int64_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_buffer b;
        if (PyObject_GetBuffer(PyList_GET_ITEM(list, k), &b, PyBUF_SIMPLE) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        seq[k] = pnic_verify_match(v, b.buf, b.len > UINT32_MAX ? UINT32_MAX : (uint32_t)b.len);
        PyBuffer_Release(&b);
    }
    return out;
}

static PyObject *py_verifier_stats(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap))
        return NULL;
    const struct pnic_verifier *v = verifier_of(cap);
    if (v == NULL)
        return NULL;
    PyObject *bad = PyList_New(0);
    if (bad == NULL)
        return NULL;
    for (uint32_t k = 0; k < v->kept; k++) {
        PyObject *item = Py_BuildValue("(Ky#)", (unsigned long long)v->bad_index[k], (const char *)v->bad[k],
                                       (Py_ssize_t)v->bad_len[k]);
        if (item == NULL || PyList_Append(bad, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(bad);
            return NULL;
        }
        Py_DECREF(item);
    }
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:L,s:I,s:N}", "delivered", (unsigned long long)v->delivered,
                         "received", (unsigned long long)v->received, "duplicated", (unsigned long long)v->duplicated,
                         "reordered", (unsigned long long)v->reordered, "corrupted", (unsigned long long)v->corrupted,
                         "stale", (unsigned long long)v->stale, "highest", (long long)v->highest, "window", v->window,
                         "bad", bad);
}

/* A hosted C driver, kept in a capsule with the buffers it writes into. */
struct hosted {
    struct pnic_chost cd;
    struct pnic_tx_feed *feed; /* with its own copies of the frames (cdriver_transmit) */
    void *feed_frames, *feed_blob, *feed_order;
    uint8_t *checked; /* per delivery the store layer can keep: delivered as checksum-checked */
    Py_buffer seg_view, arena, lengths, stamps;
    int has_arena, has_stamps;
    PyObject *verifier; /* a long run's verifier, held while the driver delivers to it */
};

static void hosted_free(PyObject *capsule)
{
    struct hosted *h = PyCapsule_GetPointer(capsule, "pseudonic.cdriver");
    if (h == NULL)
        return;
    PyBuffer_Release(&h->seg_view);
    if (h->has_arena) {
        PyBuffer_Release(&h->arena);
        PyBuffer_Release(&h->lengths);
    }
    if (h->has_stamps)
        PyBuffer_Release(&h->stamps);
    PyMem_Free(h->checked);
    PyMem_Free(h->feed);
    PyMem_Free(h->feed_frames);
    PyMem_Free(h->feed_blob);
    PyMem_Free(h->feed_order);
    Py_XDECREF(h->verifier);
    PyMem_Free(h);
}

static struct hosted *hosted_of(PyObject *capsule)
{
    return PyCapsule_GetPointer(capsule, "pseudonic.cdriver");
}

static PyObject *py_cdriver_new(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *seg_obj, *arena_obj, *lengths_obj, *stamps_obj = Py_None;
    unsigned long long open_fn, irq_fn, close_fn, idle_fn;
    unsigned int budget;
    if (!PyArg_ParseTuple(args, "OKKKKIOO|O", &seg_obj, &open_fn, &irq_fn, &close_fn, &idle_fn, &budget, &arena_obj,
                          &lengths_obj, &stamps_obj))
        return NULL;
    if (open_fn == 0 || irq_fn == 0 || close_fn == 0)
        return fail(PNIC_EINVAL);
    struct hosted *h = PyMem_Calloc(1, sizeof(*h));
    if (h == NULL)
        return PyErr_NoMemory();
    if (PyObject_GetBuffer(seg_obj, &h->seg_view, PyBUF_WRITABLE) < 0) {
        PyMem_Free(h);
        return NULL;
    }
    struct pnic_segment seg;
    int rc = pnic_segment_attach((uint8_t *)h->seg_view.buf, (size_t)h->seg_view.len, &seg);
    if (rc == PNIC_OK && arena_obj != Py_None) {
        if (PyObject_GetBuffer(arena_obj, &h->arena, PyBUF_WRITABLE) < 0) {
            rc = PNIC_EINVAL;
        } else if (PyObject_GetBuffer(lengths_obj, &h->lengths, PyBUF_WRITABLE) < 0) {
            PyBuffer_Release(&h->arena);
            rc = PNIC_EINVAL;
        } else {
            h->has_arena = 1;
        }
    }
    /* Delivery stamps: one u64 for each length the store layer can keep. */
    if (rc == PNIC_OK && stamps_obj != Py_None) {
        if (!h->has_arena || PyObject_GetBuffer(stamps_obj, &h->stamps, PyBUF_WRITABLE) < 0) {
            rc = PNIC_EINVAL;
        } else if ((uint64_t)h->stamps.len / sizeof(uint64_t) < (uint64_t)h->lengths.len / sizeof(uint32_t)) {
            PyBuffer_Release(&h->stamps);
            rc = PNIC_EINVAL;
        } else {
            h->has_stamps = 1;
        }
    }
    if (rc != PNIC_OK) {
        PyErr_Clear();
        PyBuffer_Release(&h->seg_view);
        if (h->has_arena) {
            PyBuffer_Release(&h->arena);
            PyBuffer_Release(&h->lengths);
        }
        PyMem_Free(h);
        return fail(rc);
    }
    pnic_chost_init(&h->cd, &seg, budget, h->has_arena);
    h->cd.ops.open = (int (*)(struct pnic_nic *))(uintptr_t)open_fn;
    h->cd.ops.interrupt = (void (*)(struct pnic_nic *))(uintptr_t)irq_fn;
    h->cd.ops.close = (void (*)(struct pnic_nic *))(uintptr_t)close_fn;
    h->cd.ops.idle = (void (*)(struct pnic_nic *))(uintptr_t)idle_fn;
    if (h->has_arena) {
        h->cd.upper.arena = h->arena.buf;
        h->cd.upper.arena_len = (uint64_t)h->arena.len;
        h->cd.upper.lengths = h->lengths.buf;
        h->cd.upper.max_deliveries = (uint64_t)h->lengths.len / sizeof(uint32_t);
        h->checked = PyMem_Calloc(h->cd.upper.max_deliveries + 1, 1);
        h->cd.upper.checked = h->checked;
    }
    if (h->has_stamps)
        h->cd.upper.stamps = h->stamps.buf;
    PyObject *cap = PyCapsule_New(h, "pseudonic.cdriver", hosted_free);
    if (cap == NULL) {
        PyBuffer_Release(&h->seg_view);
        if (h->has_arena) {
            PyBuffer_Release(&h->arena);
            PyBuffer_Release(&h->lengths);
        }
        if (h->has_stamps)
            PyBuffer_Release(&h->stamps);
        PyMem_Free(h->checked);
        PyMem_Free(h);
    }
    return cap;
}

static PyObject *py_cdriver_open(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap))
        return NULL;
    struct hosted *h = hosted_of(cap);
    if (h == NULL)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = h->cd.ops.open(&h->cd.nic);
    Py_END_ALLOW_THREADS return PyLong_FromLong(rc);
}


/* The frames the host hands the driver's pnic_driver_transmit, in order (pnic_tx_feed). */
static PyObject *py_cdriver_transmit(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap;
    unsigned long long xmit_fn;
    Py_buffer frames, blob, order;
    if (!PyArg_ParseTuple(args, "OKy*y*y*", &cap, &xmit_fn, &frames, &blob, &order))
        return NULL;
    struct hosted *h = hosted_of(cap);
    PyObject *result = NULL;
    if (h != NULL) {
        const size_t nframes = (size_t)frames.len / sizeof(struct pnic_frame), count = (size_t)order.len / sizeof(uint32_t);
        int ok = xmit_fn != 0 && h->feed == NULL && frames.len % sizeof(struct pnic_frame) == 0 &&
                 order.len % sizeof(uint32_t) == 0 && count <= UINT32_MAX;
        for (size_t k = 0; ok && k < count; k++)
            ok = ((const uint32_t *)order.buf)[k] < nframes;
        for (size_t f = 0; ok && f < nframes; f++) {
            const struct pnic_frame *fr = &((const struct pnic_frame *)frames.buf)[f];
            ok = fr->length <= PNIC_MAX_FRAME && fr->data_off <= (uint64_t)blob.len &&
                 fr->length <= (uint64_t)blob.len - fr->data_off &&
                 (fr->stamp_off == 0 || (uint32_t)fr->stamp_off + 12u <= fr->length);
        }
        if (!ok) {
            fail(PNIC_EINVAL);
        } else if ((h->feed = PyMem_Calloc(1, sizeof(*h->feed))) == NULL ||
                   (h->feed_frames = copy_of(&frames)) == NULL || (h->feed_blob = copy_of(&blob)) == NULL ||
                   (h->feed_order = copy_of(&order)) == NULL) {
            PyErr_NoMemory();
        } else {
            h->feed->transmit = (int (*)(struct pnic_nic *, const uint8_t *, uint32_t))(uintptr_t)xmit_fn;
            h->feed->frames = h->feed_frames;
            h->feed->blob = h->feed_blob;
            h->feed->order = h->feed_order;
            h->feed->count = (uint32_t)count;
            h->feed->staged = UINT32_MAX;
            h->cd.tx = h->feed;
            result = Py_None;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&frames);
    PyBuffer_Release(&blob);
    PyBuffer_Release(&order);
    return result;
}

/* Deliveries checked as they come by a verifier (verifier_new), instead of the store layer. */
static PyObject *py_cdriver_verify(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap, *vcap;
    if (!PyArg_ParseTuple(args, "OO", &cap, &vcap))
        return NULL;
    struct hosted *h = hosted_of(cap);
    struct pnic_verifier *v = h != NULL ? verifier_of(vcap) : NULL;
    if (v == NULL)
        return NULL;
    Py_INCREF(vcap);
    Py_XSETREF(h->verifier, vcap);
    pnic_chost_verify(&h->cd, v);
    Py_RETURN_NONE;
}

static PyObject *py_cdriver_loop(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap;
    unsigned int mode;
    int fd, signo;
    unsigned long long busy_poll_ns;
    if (!PyArg_ParseTuple(args, "OIiiK", &cap, &mode, &fd, &signo, &busy_poll_ns))
        return NULL;
    struct hosted *h = hosted_of(cap);
    if (h == NULL)
        return NULL;
    if (mode > PNIC_LINE_SIGNAL)
        return fail(PNIC_EINVAL);
    struct pnic_line line = {.mode = mode, .fd = fd, .pid = 0, .signo = signo, .busy_poll_ns = busy_poll_ns};
    uint64_t runs;
    Py_BEGIN_ALLOW_THREADS runs = pnic_chost_loop(&h->cd, &line);
    Py_END_ALLOW_THREADS return PyLong_FromUnsignedLongLong(runs);
}

static PyObject *py_cdriver_close(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap))
        return NULL;
    struct hosted *h = hosted_of(cap);
    if (h == NULL)
        return NULL;
    Py_BEGIN_ALLOW_THREADS h->cd.ops.close(&h->cd.nic);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyObject *py_cdriver_stats(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap))
        return NULL;
    struct hosted *h = hosted_of(cap);
    if (h == NULL)
        return NULL;
    const struct pnic_upper *up = &h->cd.upper;
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:y#,s:K,s:K}", "delivered", (unsigned long long)up->count, "bytes",
                         (unsigned long long)up->used, "overflow", (unsigned long long)up->overflow, "rx_errors",
                         (unsigned long long)h->cd.nic.rx_errors, "checked",
                         h->checked != NULL ? (const char *)h->checked : "",
                         (Py_ssize_t)(h->checked != NULL ? up->count : 0), "tx_handed",
                         (unsigned long long)(h->feed != NULL ? h->feed->next : 0), "tx_refused",
                         (unsigned long long)(h->feed != NULL ? h->feed->refused : 0));
}

static PyObject *py_twocore_ring(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_ssize_t size;
    unsigned long long count;
    int producer, consumer;
    if (!PyArg_ParseTuple(args, "nKii", &size, &count, &producer, &consumer))
        return NULL;
    if (size <= 0 || count < 2 || producer < 0 || consumer < 0)
        return fail(PNIC_EINVAL);
    uint64_t span;
    Py_BEGIN_ALLOW_THREADS span = pnic_twocore_ring((size_t)size, count, producer, consumer);
    Py_END_ALLOW_THREADS return PyLong_FromUnsignedLongLong(span);
}

static PyObject *py_memcpy_bench(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer out;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "nw*", &size, &out))
        return NULL;
    if (size <= 0 || out.len % sizeof(uint64_t) != 0 || out.len == 0) {
        PyBuffer_Release(&out);
        return fail(PNIC_EINVAL);
    }
    uint32_t repeat = (uint32_t)(out.len / sizeof(uint64_t));
    Py_BEGIN_ALLOW_THREADS pnic_memcpy_bench((size_t)size, repeat, (uint64_t *)out.buf);
    Py_END_ALLOW_THREADS PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *py_spin_gaps(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer hist, starts, lengths;
    unsigned long long start_ns, duration_ns, threshold_ns;
    if (!PyArg_ParseTuple(args, "KKKw*w*w*", &start_ns, &duration_ns, &threshold_ns, &hist, &starts, &lengths))
        return NULL;
    PyObject *result = NULL;
    if (hist.len != PNIC_GAP_BUCKETS * sizeof(uint64_t) || starts.len % sizeof(uint64_t) != 0 ||
        lengths.len != starts.len || duration_ns > UINT64_MAX - start_ns) {
        fail(PNIC_EINVAL);
    } else {
        struct pnic_gaps g = {
            .hist = (uint64_t *)hist.buf,
            .starts = (uint64_t *)starts.buf,
            .lengths = (uint64_t *)lengths.buf,
            .capacity = (uint64_t)starts.len / sizeof(uint64_t),
        };
        Py_BEGIN_ALLOW_THREADS pnic_spin_gaps(start_ns, duration_ns, threshold_ns, &g);
        Py_END_ALLOW_THREADS result = Py_BuildValue("(KKKK)", (unsigned long long)g.loops, (unsigned long long)g.recorded,
                                                    (unsigned long long)g.overflowed, (unsigned long long)g.worst_ns);
    }
    PyBuffer_Release(&hist);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&lengths);
    return result;
}

static const struct {
    const char *name;
    unsigned int offset;
} register_names[] = {
    {"CTRL", PNIC_REG_CTRL},
    {"STATUS", PNIC_REG_STATUS},
    {"ICR", PNIC_REG_ICR},
    {"ITR", PNIC_REG_ITR},
    {"ICS", PNIC_REG_ICS},
    {"IMS", PNIC_REG_IMS},
    {"IMC", PNIC_REG_IMC},
    {"RCTL", PNIC_REG_RCTL},
    {"RDBAL", PNIC_REG_RDBAL},
    {"RDBAH", PNIC_REG_RDBAH},
    {"RDLEN", PNIC_REG_RDLEN},
    {"RDH", PNIC_REG_RDH},
    {"RDT", PNIC_REG_RDT},
    {"RDTR", PNIC_REG_RDTR},
    {"CRCERRS", PNIC_REG_CRCERRS},
    {"RXERRC", PNIC_REG_RXERRC},
    {"MPC", PNIC_REG_MPC},
    {"GPRC", PNIC_REG_GPRC},
    {"GORCL", PNIC_REG_GORCL},
    {"GORCH", PNIC_REG_GORCH},
    {"ROC", PNIC_REG_ROC},
    {"RXCSUM", PNIC_REG_RXCSUM},
    {"TCTL", PNIC_REG_TCTL},
    {"TIPG", PNIC_REG_TIPG},
    {"TDBAL", PNIC_REG_TDBAL},
    {"TDBAH", PNIC_REG_TDBAH},
    {"TDLEN", PNIC_REG_TDLEN},
    {"TDH", PNIC_REG_TDH},
    {"TDT", PNIC_REG_TDT},
    {"TIDV", PNIC_REG_TIDV},
    {"GPTC", PNIC_REG_GPTC},
    {"GOTCL", PNIC_REG_GOTCL},
    {"GOTCH", PNIC_REG_GOTCH},
    {"RAL0", PNIC_REG_RAL0},
    {"RAH0", PNIC_REG_RAH0},
    {"MTA", PNIC_REG_MTA},
    {"RADV", PNIC_REG_RADV},
    {"TADV", PNIC_REG_TADV},
    {"FCAL", PNIC_REG_FCAL},
    {"FCAH", PNIC_REG_FCAH},
    {"FCT", PNIC_REG_FCT},
    {"FCTTV", PNIC_REG_FCTTV},
    {"VET", PNIC_REG_VET},
};

static PyObject *py_registers(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    PyObject *out = PyDict_New();
    for (size_t i = 0; out != NULL && i < sizeof(register_names) / sizeof(register_names[0]); i++) {
        PyObject *v = PyLong_FromUnsignedLong(register_names[i].offset);
        if (v == NULL || PyDict_SetItemString(out, register_names[i].name, v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(v);
    }
    return out;
}

static PyObject *py_fcs_shift(PyObject *Py_UNUSED(self), PyObject *args)
{
    unsigned long long n;
    if (!PyArg_ParseTuple(args, "K", &n))
        return NULL;
    return PyLong_FromUnsignedLong(pnic_crc_shift(n));
}

static PyObject *py_mb(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    pnic_vq_mb();
    Py_RETURN_NONE;
}

static PyObject *py_now_ns(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    return PyLong_FromUnsignedLongLong(pnic_now_ns());
}

static PyMethodDef methods[] = {
    {"layout", py_layout, METH_VARARGS, "layout(ring_size, buf_size, capacity) -> region offsets"},
    {"structs", py_structs, METH_NOARGS, "sizes and field offsets of every shared struct"},
    {"segment_init", py_segment_init, METH_VARARGS, "segment_init(buffer, ring_size, buf_size, capacity)"},
    {"prefault", py_prefault, METH_VARARGS, "prefault(buffer): map every page now"},
    {"receive", py_receive, METH_VARARGS,
     "receive(seg, frame, stamp_off, csum_off, seq, stamp_ns, errors) -> slot, or -1 if dropped"},
    {"raise_irq", py_raise_irq, METH_VARARGS, "raise_irq(seg, packet) -> (raised, raise time ns)"},
    {"device_run", py_device_run, METH_VARARGS,
     "device_run(seg, slots, frames, blob, lead_ns, drain_ns, line_mode, fd, pid, signo, irq_mode, storm_limit, late"
     "[, tx_frames, loopback, tx_bps, batch, total, period_ns]): the send loop"},
    {"wait_irq", py_wait_irq, METH_VARARGS, "wait_irq(seg, seen, index) -> doorbell, or 0 when finished"},
    {"wait_irq_eventfd", py_wait_irq_eventfd, METH_VARARGS,
     "wait_irq_eventfd(seg, seen, index, fd, busy_poll_ns) -> doorbell, or 0 when finished"},
    {"take_irq", py_take_irq, METH_VARARGS, "take_irq(seg, seen, index) -> doorbell, or 0 if it has not moved"},
    {"idle_wait", py_idle_wait, METH_VARARGS, "idle_wait(seg, seen, signo, busy_poll_ns) -> False when finished"},
    {"record_exit", py_record_exit, METH_VARARGS, "record_exit(seg, index, doorbell, delivered): stamp the handler's exit"},
    {"write_mask", py_write_mask, METH_VARARGS, "write_mask(seg, 'ims'|'imc'|'itr', value)"},
    {"cdriver_new", py_cdriver_new, METH_VARARGS,
     "cdriver_new(seg, open, interrupt, close, idle, napi_budget, arena|None, lengths|None[, stamps|None]) -> handle"},
    {"cdriver_open", py_cdriver_open, METH_VARARGS, "cdriver_open(handle) -> the driver's return code"},
    {"cdriver_loop", py_cdriver_loop, METH_VARARGS, "cdriver_loop(handle, line_mode, fd, signo, busy_poll_ns) -> handler runs"},
    {"cdriver_close", py_cdriver_close, METH_VARARGS, "cdriver_close(handle)"},
    {"cdriver_transmit", py_cdriver_transmit, METH_VARARGS,
     "cdriver_transmit(handle, transmit, frames, blob, order): the frames to hand pnic_driver_transmit"},
    {"wait_irq_or_tx", py_wait_irq_or_tx, METH_VARARGS,
     "wait_irq_or_tx(seg, seen, index, tx_seen) -> doorbell, seen if the transmitter moved, 0 when finished"},
    {"wait_running", py_wait_running, METH_VARARGS, "wait_running(seg): until the device runs, or a stop"},
    {"rx_burst", py_rx_burst, METH_VARARGS,
     "rx_burst(ring, start, max, addr, length, status, errors) -> the written-back descriptors from start"},
    {"twocore_ring", py_twocore_ring, METH_VARARGS,
     "twocore_ring(size, count, producer_core, consumer_core) -> ns from the first frame taken to the last"},
    {"hist_add", py_hist_add, METH_VARARGS, "hist_add(pos, neg, values) -> (n, sum, min, max): stream.Histogram.add"},
    {"fold_packets", py_fold_packets, METH_VARARGS,
     "fold_packets(ring, first, n, mask, slot_due, period_ns, t0, band_ppm, acc, send_pos, send_neg, dev_pos, dev_neg)"},
    {"verifier_new", py_verifier_new, METH_VARARGS,
     "verifier_new(frames, blob, frame_of, total, window) -> a long run's verifier (pnic_verify.c)"},
    {"verify_blob", py_verify_blob, METH_VARARGS, "verify_blob(verifier, blob, lengths, n): n frames back to back"},
    {"verify_list", py_verify_list, METH_VARARGS, "verify_list(verifier, list of socket buffers)"},
    {"verify_match_blob", py_verify_match_blob, METH_VARARGS,
     "verify_match_blob(verifier, blob, lengths u32, n) -> int64 per frame: the entry it carries intact, or -1"},
    {"verify_match_list", py_verify_match_list, METH_VARARGS,
     "verify_match_list(verifier, list of socket buffers) -> int64 per buffer: the entry it carries intact, or -1"},
    {"verifier_stats", py_verifier_stats, METH_VARARGS, "verifier_stats(verifier) -> its counts and first bad frames"},
    {"cdriver_verify", py_cdriver_verify, METH_VARARGS, "cdriver_verify(handle, verifier): deliveries checked as they come"},
    {"gather", py_gather, METH_VARARGS, "gather(src, offsets, lengths, n) -> the n frames back to back"},
    {"stamp_frame", py_stamp_frame, METH_VARARGS, "stamp_frame(frame, stamp_off, csum_off, seq, ts): stamp in place"},
    {"cdriver_stats", py_cdriver_stats, METH_VARARGS, "cdriver_stats(handle) -> upper layer and driver counters"},
    {"read_icr", py_read_icr, METH_VARARGS, "read_icr(seg) -> ICR, cleared"},
    {"write_rdt", py_write_rdt, METH_VARARGS, "write_rdt(seg, value)"},
    {"publish_avail", py_publish_avail, METH_VARARGS, "publish_avail(seg, idx): virtio-net's avail.idx"},
    {"reg_read", py_reg_read, METH_VARARGS, "reg_read(seg, offset) -> the register's value (8254x SDM 13.4)"},
    {"reg_write", py_reg_write, METH_VARARGS, "reg_write(seg, offset, value)"},
    {"registers", py_registers, METH_NOARGS, "the register window's names and offsets"},
    {"dma_alloc", py_dma_alloc, METH_VARARGS, "dma_alloc(seg, size, align) -> bus address, or -1"},
    {"memcpy_bench", py_memcpy_bench, METH_VARARGS, "memcpy_bench(size, out_uint64_array)"},
    {"now_ns", py_now_ns, METH_NOARGS, "CLOCK_MONOTONIC in ns, as the engine reads it"},
    {"mb", py_mb, METH_NOARGS, "a full memory barrier (virtio_mb)"},
    {"fcs_shift", py_fcs_shift, METH_VARARGS, "fcs_shift(n) -> x^(8n) mod the FCS polynomial, reflected"},
    {"spin_gaps", py_spin_gaps, METH_VARARGS,
     "spin_gaps(start_ns, duration_ns, threshold_ns, hist, starts, lengths) -> (loops, recorded, overflowed, worst_ns)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "pseudonic._engine", NULL, -1, methods,
                                       NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__engine(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    EngineError = PyErr_NewException("pseudonic._engine.EngineError", PyExc_RuntimeError, NULL);
    if (PyModule_AddObjectRef(m, "EngineError", EngineError) < 0)
        return NULL;
#define CONST(name) PyModule_AddIntConstant(m, #name, PNIC_##name)
    if (CONST(MAGIC) < 0 || CONST(LAYOUT_VERSION) < 0 || CONST(RXD_STAT_DD) < 0 || CONST(RXD_STAT_EOP) < 0 ||
        CONST(RXD_ERR_CE) < 0 || CONST(RXD_ERR_SE) < 0 || CONST(RXD_ERR_SEQ) < 0 || CONST(RXD_ERR_CXE) < 0 ||
        CONST(RXD_ERR_TCPE) < 0 || CONST(RXD_ERR_IPE) < 0 || CONST(RXD_ERR_RXE) < 0 || CONST(ICR_RXDMT0) < 0 ||
        CONST(ICR_RXO) < 0 || CONST(ICR_RXT0) < 0 || CONST(DEV_IDLE) < 0 || CONST(DEV_RUNNING) < 0 ||
        CONST(DEV_DONE) < 0 || CONST(DEV_STOPPED) < 0 || CONST(TX_STORED) < 0 || CONST(TX_DROPPED) < 0 ||
        CONST(TX_RAISED) < 0 || CONST(TX_SPURIOUS) < 0 || CONST(SLOT_ERRORS_MASK) < 0 || CONST(SLOT_SPURIOUS) < 0 ||
        CONST(LINE_SPIN) < 0 || CONST(LINE_EVENTFD) < 0 || CONST(LINE_SIGNAL) < 0 || CONST(DRIVER_ABI) < 0 ||
        CONST(RXD_STAT_IXSM) < 0 || CONST(RXD_STAT_TCPCS) < 0 || CONST(RXD_STAT_IPCS) < 0 ||
        CONST(RXD_ERR_FRAME) < 0 || CONST(RXCSUM_IPOFL) < 0 || CONST(RXCSUM_TUOFL) < 0 || CONST(PCSS) < 0 ||
        CONST(DEV_STORM) < 0 || CONST(IRQ_EDGE) < 0 || CONST(IRQ_LEVEL) < 0 || CONST(LATE_CATCHUP) < 0 || CONST(LATE_SHIFT) < 0 || CONST(LATE_SLACK_NS) < 0 || CONST(SLOT_NO_RAISE) < 0 || CONST(TX_REFUSED) < 0 ||
        CONST(FRAME_IPV4) < 0 || CONST(FRAME_L4) < 0 || CONST(MAX_FRAME) < 0 || CONST(SAN_RDT_OUTSIDE) < 0 ||
        CONST(SAN_RDT_AT_HEAD) < 0 || CONST(SAN_RDT_OWNED) < 0 || CONST(SAN_DD_SET) < 0 || CONST(SAN_BUF_OUTSIDE) < 0 ||
        CONST(SAN_BUF_SHARED) < 0 || CONST(SAN_KINDS) < 0 || PyModule_AddIntConstant(m, "POISON", (long)PNIC_POISON) < 0 ||
        CONST(LINE_PAIR) < 0 || CONST(ITR_UNIT_NS) < 0 || CONST(MODEL_E1000) < 0 || CONST(MODEL_VIRTIO_NET) < 0 ||
        CONST(VIRTIO_NET_F_MRG_RXBUF) < 0 || CONST(VIRTIO_RING_F_EVENT_IDX) < 0 || CONST(VIRTIO_F_VERSION_1) < 0 ||
        PyModule_AddObject(m, "VIRTIO_OFFERED", PyLong_FromUnsignedLongLong(PNIC_VIRTIO_OFFERED)) < 0 ||
        CONST(VIRTQ_DESC_F_NEXT) < 0 || CONST(VIRTQ_DESC_F_WRITE) < 0 || CONST(VIRTQ_AVAIL_F_NO_INTERRUPT) < 0 ||
        CONST(VIRTQ_USED_F_NO_NOTIFY) < 0 || CONST(VIRTIO_MAX_QUEUE) < 0 || CONST(VIRTIO_NET_HDR) < 0 ||
        CONST(VIRTIO_HDR_ROOM) < 0 || CONST(VIRTIO_ISR_QUEUE) < 0 || CONST(SAN_AVAIL_OVERRUN) < 0 ||
        CONST(SAN_AVAIL_REUSED) < 0 || CONST(SAN_HEAD_OUTSIDE) < 0 || CONST(SAN_NOT_WRITABLE) < 0 ||
        CONST(STATUS_FD) < 0 || CONST(STATUS_LU) < 0 || CONST(STATUS_SPEED_1000) < 0 || CONST(RCTL_EN) < 0 ||
        CONST(RCTL_LPE) < 0 || CONST(RCTL_BAM) < 0 || CONST(RCTL_SECRC) < 0 || CONST(RCTL_DEFAULT) < 0 ||
        CONST(FCS) < 0 || CONST(RCTL_BSEX) < 0 || CONST(RCTL_BSIZE_SHIFT) < 0 || CONST(MAX_STANDARD_FRAME) < 0 ||
        CONST(TX_DISCARDED) < 0 || CONST(TX_RX_OFF) < 0 || CONST(MAX_RING) < 0 || CONST(TX_BUFFER) < 0 ||
        CONST(CTRL_RST) < 0 || CONST(TCTL_EN) < 0 || CONST(TCTL_PSP) < 0 || CONST(TXD_CMD_EOP) < 0 ||
        CONST(TXD_CMD_IFCS) < 0 || CONST(TXD_CMD_RS) < 0 || CONST(TXD_CMD_DEXT) < 0 || CONST(TXD_STAT_DD) < 0 ||
        CONST(MAX_TX_FRAME) < 0 || CONST(MIN_FRAME) < 0 || CONST(ICR_TXDW) < 0 || CONST(ICR_TXQE) < 0 ||
        CONST(DEV_FAULT) < 0 || CONST(FAULT_NONE) < 0 || CONST(FAULT_NO_RX_RING) < 0 || CONST(FAULT_RDLEN) < 0 ||
        CONST(FAULT_RDLEN_LARGE) < 0 || CONST(FAULT_RDBA) < 0 || CONST(FAULT_RDH) < 0 || CONST(FAULT_NO_TX_RING) < 0 ||
        CONST(FAULT_TDLEN) < 0 || CONST(FAULT_TDLEN_LARGE) < 0 || CONST(FAULT_TDBA) < 0 || CONST(FAULT_TDH) < 0 ||
        CONST(FAULT_TX_BUFFER) < 0 || CONST(FAULT_TX_LENGTH) < 0 || CONST(FAULT_TDT) < 0 || CONST(FAULT_TX_DEXT) < 0 || CONST(FAULTS) < 0 ||
        CONST(SAN_RING_INVALID) < 0 || CONST(SAN_TDT_OUTSIDE) < 0 || CONST(SAN_TDT_OWNED) < 0 ||
        CONST(SAN_TX_BUF_OUTSIDE) < 0 || CONST(TXV_STAMPED) < 0 || CONST(TXV_INTACT) < 0 || CONST(TXV_NO_EOP) < 0 ||
        CONST(TXV_PADDED) < 0 || CONST(TXV_NO_FCS) < 0 || CONST(TXV_LOOPED) < 0 || CONST(MIN_FRAME) < 0)
        return NULL;
    static const unsigned int sizes[] = PNIC_BUFFER_SIZES;
    PyObject *t = PyTuple_New(sizeof(sizes) / sizeof(sizes[0]));
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        PyObject *v = PyLong_FromUnsignedLong(sizes[i]);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, v);
    }
    int rc = PyModule_AddObjectRef(m, "BUFFER_SIZES", t);
    Py_DECREF(t);
    if (rc < 0)
        return NULL;
    return m;
}
