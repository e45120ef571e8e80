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

#include "pnic_engine.h"

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
    unsigned int ring, bufsz, cap;
    struct pnic_header h;
    if (!PyArg_ParseTuple(args, "III", &ring, &bufsz, &cap))
        return NULL;
    pnic_layout_size(ring, bufsz, cap, &h);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "total_size", h.total_size, "dev_regs",
                         h.dev_regs_off, "irq_line", h.irq_line_off, "drv_regs", h.drv_regs_off, "ctl", h.ctl_off, "ring", h.ring_off,
                         "buffers", h.buf_off, "tx_records", h.tx_rec_off, "raise_records", h.raise_rec_off,
                         "irq_records", h.irq_rec_off);
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
    FIELD(header, raise_rec_off), FIELD(header, irq_rec_off), FIELD(header, t0_ns),
    SIZE(dev_regs), FIELD(dev_regs, rdh), FIELD(dev_regs, icr), FIELD(dev_regs, mpc), FIELD(dev_regs, gprc),
    FIELD(dev_regs, gorc), FIELD(dev_regs, sent),
    SIZE(irq_line), FIELD(irq_line, doorbell), FIELD(irq_line, state),
    SIZE(drv_regs), FIELD(drv_regs, rdt), FIELD(drv_regs, ims), FIELD(drv_regs, itr), FIELD(drv_regs, ready),
    FIELD(drv_regs, handled),
    SIZE(ctl), FIELD(ctl, stop),
    SIZE(slot), FIELD(slot, due_ns), FIELD(slot, frame), FIELD(slot, flags),
    SIZE(frame), FIELD(frame, data_off), FIELD(frame, length), FIELD(frame, stamp_off), FIELD(frame, csum_off),
    SIZE(tx_record), FIELD(tx_record, start_ns), FIELD(tx_record, end_ns), FIELD(tx_record, spin_gap_ns),
    FIELD(tx_record, slot), FIELD(tx_record, flags),
    SIZE(raise_record), FIELD(raise_record, raised_ns), FIELD(raise_record, packet), FIELD(raise_record, icr),
    SIZE(irq_record), FIELD(irq_record, entry_ns), FIELD(irq_record, exit_ns), FIELD(irq_record, doorbell),
    FIELD(irq_record, spin_gap_ns),
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
    unsigned int ring, bufsz, cap;
    if (!PyArg_ParseTuple(args, "w*III", &view, &ring, &bufsz, &cap))
        return NULL;
    int rc = pnic_segment_init((uint8_t *)view.buf, (size_t)view.len, ring, bufsz, cap);
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
    Py_buffer view, slots, frames, blob;
    unsigned long long lead_ns;
    struct pnic_segment seg;
    if (!PyArg_ParseTuple(args, "w*y*y*y*K", &view, &slots, &frames, &blob, &lead_ns))
        return NULL;
    PyObject *result = NULL;
    int rc = PNIC_EINVAL;
    if (attach(&view, &seg) == 0) {
        if (slots.len % sizeof(struct pnic_slot) == 0 && frames.len % sizeof(struct pnic_frame) == 0 &&
            slots.len / sizeof(struct pnic_slot) <= UINT32_MAX && frames.len / sizeof(struct pnic_frame) <= UINT32_MAX) {
            struct pnic_send_plan plan = {
                .slots = (const struct pnic_slot *)slots.buf,
                .nslots = (uint32_t)(slots.len / sizeof(struct pnic_slot)),
                .frames = (const struct pnic_frame *)frames.buf,
                .nframes = (uint32_t)(frames.len / sizeof(struct pnic_frame)),
                .blob = (const uint8_t *)blob.buf,
                .blob_len = (size_t)blob.len,
                .lead_ns = lead_ns,
            };
            Py_BEGIN_ALLOW_THREADS rc = pnic_device_run(&seg, &plan);
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
    if (attach(&view, &seg) == 0)
        result = PyLong_FromUnsignedLong(pnic_read_icr(&seg));
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
        if (rdt >= seg.hdr->ring_size) {
            fail(PNIC_EINVAL);
        } else {
            pnic_write_rdt(&seg, rdt);
            result = Py_None;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&view);
    return result;
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
    {"device_run", py_device_run, METH_VARARGS, "device_run(seg, slots, frames, blob, lead_ns): the send loop"},
    {"wait_irq", py_wait_irq, METH_VARARGS, "wait_irq(seg, seen, index) -> doorbell, or 0 when finished"},
    {"read_icr", py_read_icr, METH_VARARGS, "read_icr(seg) -> ICR, cleared"},
    {"write_rdt", py_write_rdt, METH_VARARGS, "write_rdt(seg, value)"},
    {"memcpy_bench", py_memcpy_bench, METH_VARARGS, "memcpy_bench(size, out_uint64_array)"},
    {"now_ns", py_now_ns, METH_NOARGS, "CLOCK_MONOTONIC in ns, as the engine reads it"},
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
        CONST(TX_RAISED) < 0 || CONST(SLOT_ERRORS_MASK) < 0)
        return NULL;
    return m;
}
