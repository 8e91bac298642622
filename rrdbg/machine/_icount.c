/*
 * Native UC_HOOK_BLOCK callback that keeps rrdbg's exact instruction count.
 *
 * Role: Unicorn calls `block_hook` at the entry of every translated block.
 * The hook looks the block up in a two-level table (address -> size and
 * instruction count, filled by Python from capstone), adds the count to
 * `total` and remembers the block, so that Python can correct the count when
 * execution stops inside it.  It never calls Python: a block it does not know,
 * and a block that would take `total` past `limit`, both call uc_emu_stop()
 * and return.  Stopping from a block hook happens before the block executes,
 * so Python can decode the block (or place an exit inside it) and resume.
 *
 * The module does not link against libunicorn: Python hands it the address of
 * uc_emu_stop.  rrdbg/machine/icount.py holds the pure-Python twin of this
 * file; the two must give identical results (tests check it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STOP_NONE 0
#define STOP_LIMIT 1
#define STOP_UNKNOWN 2

/* Entry layout: bit 31 valid, bits 30..16 block size in bytes, 15..0 count. */
#define ENTRY_VALID 0x80000000u
#define ENTRY_MAX_SIZE 0x7fffu
#define LEAF_BITS 16
#define LEAF_SIZE (1u << LEAF_BITS)
#define ROOT_SIZE (1u << (32 - LEAF_BITS))

typedef int (*uc_emu_stop_fn)(void *uc);

typedef struct {
    uint64_t total;
    uint64_t limit;
    uint64_t last_addr;
    uint64_t stop_addr;
    uint64_t pass_addr;
    uint32_t last_size;
    uint32_t last_icount;
    uint32_t stop_reason;
    uint32_t stop_size;
    uint32_t pass_size;
    uint32_t pass_icount;
    uint32_t pass_valid;
    uc_emu_stop_fn emu_stop;
    uint32_t *root[ROOT_SIZE];
} counter_state;

static void block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    counter_state *s = (counter_state *)user_data;
    uint32_t a = (uint32_t)address;
    uint32_t *leaf = s->root[a >> LEAF_BITS];
    uint32_t e = leaf ? leaf[a & (LEAF_SIZE - 1)] : 0;
    uint32_t n;

    if ((e & ENTRY_VALID) && ((e >> 16) & ENTRY_MAX_SIZE) == size) {
        n = e & 0xffffu;
    } else if (s->pass_valid && s->pass_addr == address && s->pass_size == size) {
        /* A block Python chose not to cache (code in writable memory). */
        n = s->pass_icount;
        s->pass_valid = 0;
    } else {
        s->stop_reason = STOP_UNKNOWN;
        s->stop_addr = address;
        s->stop_size = size;
        s->emu_stop(uc);
        return;
    }
    if (s->total + n > s->limit) {
        s->stop_reason = STOP_LIMIT;
        s->stop_addr = address;
        s->stop_size = size;
        s->emu_stop(uc);
        return;
    }
    s->total += n;
    s->last_addr = address;
    s->last_size = size;
    s->last_icount = n;
}

typedef struct {
    PyObject_HEAD
    counter_state *s;
} Counter;

static int Counter_init(Counter *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"emu_stop_address", NULL};
    unsigned long long stop_addr = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "K", kwlist, &stop_addr))
        return -1;
    if (stop_addr == 0) {
        PyErr_SetString(PyExc_ValueError, "emu_stop_address must be non-zero");
        return -1;
    }
    if (self->s == NULL) {
        self->s = (counter_state *)calloc(1, sizeof(counter_state));
        if (self->s == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    self->s->emu_stop = (uc_emu_stop_fn)(uintptr_t)stop_addr;
    self->s->limit = UINT64_MAX;
    return 0;
}

static void Counter_dealloc(Counter *self)
{
    if (self->s) {
        for (size_t i = 0; i < ROOT_SIZE; i++)
            free(self->s->root[i]);
        free(self->s);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Counter_set_entry(Counter *self, PyObject *args)
{
    unsigned long long addr;
    unsigned int size, icount;
    if (!PyArg_ParseTuple(args, "KII", &addr, &size, &icount))
        return NULL;
    if (addr > 0xffffffffull || size > ENTRY_MAX_SIZE || icount > 0xffffu) {
        /* Not representable: the caller falls back to pass_once(). */
        Py_RETURN_FALSE;
    }
    uint32_t a = (uint32_t)addr;
    uint32_t **slot = &self->s->root[a >> LEAF_BITS];
    if (*slot == NULL) {
        *slot = (uint32_t *)calloc(LEAF_SIZE, sizeof(uint32_t));
        if (*slot == NULL)
            return PyErr_NoMemory();
    }
    (*slot)[a & (LEAF_SIZE - 1)] = ENTRY_VALID | (size << 16) | icount;
    Py_RETURN_TRUE;
}

static PyObject *Counter_pass_once(Counter *self, PyObject *args)
{
    unsigned long long addr;
    unsigned int size, icount;
    if (!PyArg_ParseTuple(args, "KII", &addr, &size, &icount))
        return NULL;
    self->s->pass_addr = addr;
    self->s->pass_size = size;
    self->s->pass_icount = icount;
    self->s->pass_valid = 1;
    Py_RETURN_NONE;
}

static PyObject *Counter_forget(Counter *self, PyObject *args)
{
    unsigned long long lo, hi;
    if (!PyArg_ParseTuple(args, "KK", &lo, &hi))
        return NULL;
    if (hi > 0x100000000ull)
        hi = 0x100000000ull;
    for (unsigned long long a = lo; a < hi;) {
        uint32_t *leaf = self->s->root[a >> LEAF_BITS];
        unsigned long long leaf_end = ((a >> LEAF_BITS) + 1) << LEAF_BITS;
        unsigned long long end = leaf_end < hi ? leaf_end : hi;
        if (leaf)
            memset(&leaf[a & (LEAF_SIZE - 1)], 0, (size_t)(end - a) * sizeof(uint32_t));
        a = end;
    }
    self->s->pass_valid = 0;
    Py_RETURN_NONE;
}

static PyObject *Counter_forget_all(Counter *self, PyObject *Py_UNUSED(ignored))
{
    for (size_t i = 0; i < ROOT_SIZE; i++) {
        free(self->s->root[i]);
        self->s->root[i] = NULL;
    }
    self->s->pass_valid = 0;
    Py_RETURN_NONE;
}

#define U64_GETSET(field)                                                        \
    static PyObject *get_##field(Counter *self, void *c)                         \
    {                                                                            \
        return PyLong_FromUnsignedLongLong(self->s->field);                      \
    }                                                                            \
    static int set_##field(Counter *self, PyObject *v, void *c)                  \
    {                                                                            \
        if (v == NULL) {                                                         \
            PyErr_SetString(PyExc_TypeError, "cannot delete " #field);           \
            return -1;                                                           \
        }                                                                        \
        unsigned long long x = PyLong_AsUnsignedLongLong(v);                     \
        if (x == (unsigned long long)-1 && PyErr_Occurred())                     \
            return -1;                                                           \
        self->s->field = x;                                                      \
        return 0;                                                                \
    }

U64_GETSET(total)
U64_GETSET(limit)
U64_GETSET(last_addr)
U64_GETSET(last_size)
U64_GETSET(last_icount)
U64_GETSET(stop_reason)
U64_GETSET(stop_addr)
U64_GETSET(stop_size)

static PyObject *get_hook_address(Counter *self, void *c)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&block_hook);
}

static PyObject *get_user_data(Counter *self, void *c)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self->s);
}

#define GS(name) {#name, (getter)get_##name, (setter)set_##name, NULL, NULL}
static PyGetSetDef Counter_getset[] = {
    GS(total), GS(limit), GS(last_addr), GS(last_size), GS(last_icount),
    GS(stop_reason), GS(stop_addr), GS(stop_size),
    {"hook_address", (getter)get_hook_address, NULL, "address of the C block hook", NULL},
    {"user_data", (getter)get_user_data, NULL, "user_data pointer to pass to uc_hook_add", NULL},
    {NULL}
};

static PyMethodDef Counter_methods[] = {
    {"set_entry", (PyCFunction)Counter_set_entry, METH_VARARGS,
     "set_entry(addr, size, icount) -> bool: cache a block's instruction count"},
    {"pass_once", (PyCFunction)Counter_pass_once, METH_VARARGS,
     "pass_once(addr, size, icount): count the next entry of this block without caching it"},
    {"forget", (PyCFunction)Counter_forget, METH_VARARGS,
     "forget(lo, hi): drop cached blocks starting in [lo, hi)"},
    {"forget_all", (PyCFunction)Counter_forget_all, METH_NOARGS, "drop every cached block"},
    {NULL}
};

static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rrdbg.machine._icount.NativeCounter",
    .tp_doc = "Block-granular instruction counter whose hook runs in C.",
    .tp_basicsize = sizeof(Counter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Counter_init,
    .tp_dealloc = (destructor)Counter_dealloc,
    .tp_methods = Counter_methods,
    .tp_getset = Counter_getset,
};

static struct PyModuleDef icount_module = {
    PyModuleDef_HEAD_INIT, "_icount", "Native block hook for exact instruction counting.", -1, NULL,
};

PyMODINIT_FUNC PyInit__icount(void)
{
    if (PyType_Ready(&CounterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&icount_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CounterType);
    if (PyModule_AddObject(m, "NativeCounter", (PyObject *)&CounterType) < 0) {
        Py_DECREF(&CounterType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "STOP_NONE", STOP_NONE);
    PyModule_AddIntConstant(m, "STOP_LIMIT", STOP_LIMIT);
    PyModule_AddIntConstant(m, "STOP_UNKNOWN", STOP_UNKNOWN);
    return m;
}
