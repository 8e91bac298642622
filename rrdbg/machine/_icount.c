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
 * A block seen for the first time is decoded here with capstone when it lies
 * in pages Python marked as cacheable (executable and not writable), so
 * learning a block costs no trip back to Python.  Anything else (code in
 * writable pages, a block capstone cannot decode) still stops for Python.
 *
 * The module links against neither libunicorn nor libcapstone: Python hands
 * it the addresses of uc_emu_stop and cs_disasm_iter.
 *
 * The second hook here answers Unicorn's TLB fills from the guest's page
 * permissions, which makes memory faults exact (see "Page permissions"); the
 * third filters memory watches to their exact range ("Memory watches").
 * rrdbg/machine/icount.py holds the pure-Python twin of this
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
typedef int (*cs_disasm_iter_fn)(size_t handle, const uint8_t **code, size_t *size,
                                 uint64_t *address, void *insn);
#define PAGE_BITS 12
#define PAGE_COUNT (1u << (32 - PAGE_BITS))
#define MAX_INSN_LENGTH 15

typedef struct {
    /* The hook keeps only budget = limit - total, which saves a load and a
     * compare per block; total is derived from it. */
    uint64_t budget;
    uint64_t limit;
    /* The block last entered: its address and table entry. */
    struct {
        uint64_t addr;
        uint32_t entry;
    } last;
    uint64_t stop_addr;
    uint64_t pass_addr;
    uint32_t stop_reason;
    uint32_t stop_size;
    uint32_t pass_size;
    uint32_t pass_icount;
    uint32_t pass_valid;
    uc_emu_stop_fn emu_stop;
    /* Decoder (optional): guest address a lives at host_base + a. */
    const uint8_t *host_base;
    size_t cs_handle;
    cs_disasm_iter_fn cs_disasm_iter;
    void *cs_insn;
    uint64_t learned;
    /* Leave blocks with port I/O to Python (user-mode machines). */
    int io_check;
    uint32_t *root[ROOT_SIZE];
    uint8_t cacheable[PAGE_COUNT / 8];
} counter_state;

/* Every root slot points here until a block in its 64 KiB is cached, so the
 * hot path needs no NULL check. */
static uint32_t zero_leaf[LEAF_SIZE];

static int page_cacheable(const counter_state *s, uint32_t page)
{
    return (s->cacheable[page >> 3] >> (page & 7)) & 1;
}

static uint32_t *leaf_for(counter_state *s, uint32_t a)
{
    uint32_t **slot = &s->root[a >> LEAF_BITS];
    if (*slot == zero_leaf) {
        uint32_t *leaf = (uint32_t *)calloc(LEAF_SIZE, sizeof(uint32_t));
        if (leaf == NULL)
            return NULL;
        *slot = leaf;
    }
    return *slot;
}

/* Whether the instruction is port I/O (in, out, ins, outs).  Unicorn 2.1.1
 * lets any privilege level do I/O; Linux user code gets #GP (SIGSEGV), which
 * the CPU emulates with an exit at the instruction (see cpu.py). */
static int is_port_io(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len && (p[i] == 0x66 || p[i] == 0x67 || p[i] == 0xf2 || p[i] == 0xf3 ||
                       p[i] == 0x26 || p[i] == 0x2e || p[i] == 0x36 || p[i] == 0x3e ||
                       p[i] == 0x64 || p[i] == 0x65 || p[i] == 0xf0))
        i++;
    if (i >= len)
        return 0;
    uint8_t op = p[i];
    return (op >= 0xe4 && op <= 0xe7) || (op >= 0xec && op <= 0xef) || (op >= 0x6c && op <= 0x6f);
}

/* Decode and cache a block; returns its entry, or 0 when Python must look. */
static __attribute__((noinline)) uint32_t learn(counter_state *s, uint64_t address, uint32_t size)
{
    if (s->cs_disasm_iter == NULL || size > ENTRY_MAX_SIZE || address + size > 0x100000000ull)
        return 0;
    uint32_t a = (uint32_t)address;
    if (!page_cacheable(s, a >> PAGE_BITS) ||
        (size && !page_cacheable(s, (a + size - 1) >> PAGE_BITS)))
        return 0;
    const uint8_t *code = s->host_base + a;
    size_t left = size;
    uint64_t pc = address;
    uint32_t n = 0;
    const uint8_t *insn = code;
    while (left > 0 && s->cs_disasm_iter(s->cs_handle, &code, &left, &pc, s->cs_insn)) {
        if (s->io_check && is_port_io(insn, (size_t)(code - insn)))
            return 0; /* Python places an exit there: user code may not do I/O */
        insn = code;
        n++;
    }
    if (left > MAX_INSN_LENGTH)
        return 0;
    if (left > 0)
        n++; /* a final instruction cut short: it faults (see cpu.py) */
    if (n > 0xffffu)
        return 0;
    uint32_t *leaf = leaf_for(s, a);
    if (leaf == NULL)
        return 0;
    uint32_t e = ENTRY_VALID | (size << 16) | n;
    leaf[a & (LEAF_SIZE - 1)] = e;
    s->learned++;
    return e;
}

static void count_block(void *uc, counter_state *s, uint64_t address, uint32_t size, uint32_t n)
{
    if (n > s->budget) {
        s->stop_reason = STOP_LIMIT;
        s->stop_addr = address;
        s->stop_size = size;
        s->emu_stop(uc);
        return;
    }
    s->budget -= n;
    s->last.addr = address;
    s->last.entry = ENTRY_VALID | (size << 16) | n;
}

/* Everything but a cached block: kept out of line so that the hot path
 * below needs no stack frame at all. */
static __attribute__((noinline, cold)) void slow_block(void *uc, counter_state *s,
                                                       uint64_t address, uint32_t size)
{
    uint32_t e = learn(s, address, size);
    if (e != 0) {
        count_block(uc, s, address, size, e & 0xffffu);
    } else if (s->pass_valid && s->pass_addr == address && s->pass_size == size) {
        /* A block Python chose not to cache (code in writable memory). */
        s->pass_valid = 0;
        count_block(uc, s, address, size, s->pass_icount);
    } else {
        s->stop_reason = STOP_UNKNOWN;
        s->stop_addr = address;
        s->stop_size = size;
        s->emu_stop(uc);
    }
}

/* The limit stop and every block not in the table.  It takes the hook's own
 * arguments, so the hot path reaches it with a plain jump and needs no
 * register shuffling. */
static __attribute__((noipa, cold)) void block_miss(void *uc, uint64_t address, uint32_t size,
                                                       void *user_data)
{
    counter_state *s = (counter_state *)user_data;
    uint32_t a = (uint32_t)address;
    uint32_t e = s->root[a >> LEAF_BITS][a & (LEAF_SIZE - 1)];
    if ((e >> 16) == (size | (ENTRY_VALID >> 16)))
        count_block(uc, s, address, size, e & 0xffffu); /* the limit stop */
    else
        slow_block(uc, s, address, size);
}

/* The hot path, kept to a few instructions: it runs for every block the
 * guest executes, and on tight guest loops each instruction here costs
 * about a percent of emulation speed. */
static void block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    counter_state *s = (counter_state *)user_data;
    uint32_t a = (uint32_t)address;
    uint32_t e = s->root[a >> LEAF_BITS][a & (LEAF_SIZE - 1)];
    uint64_t left;
    /* One compare checks both "valid" and "same size"; the subtraction's
     * borrow is the limit check. */
    if (__builtin_expect(((e >> 16) ^ (ENTRY_VALID >> 16)) == size &&
                             !__builtin_sub_overflow(s->budget, (uint64_t)(e & 0xffffu), &left),
                         1)) {
        s->budget = left;
        s->last.addr = address;
        s->last.entry = e;
        return;
    }
    block_miss(uc, address, size, user_data);
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
    for (size_t i = 0; i < ROOT_SIZE; i++)
        if (self->s->root[i] == NULL)
            self->s->root[i] = zero_leaf;
    self->s->emu_stop = (uc_emu_stop_fn)(uintptr_t)stop_addr;
    self->s->limit = UINT64_MAX;
    self->s->budget = UINT64_MAX;
    return 0;
}

static void Counter_dealloc(Counter *self)
{
    if (self->s) {
        for (size_t i = 0; i < ROOT_SIZE; i++)
            if (self->s->root[i] != zero_leaf)
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
    uint32_t *leaf = leaf_for(self->s, a);
    if (leaf == NULL)
        return PyErr_NoMemory();
    leaf[a & (LEAF_SIZE - 1)] = ENTRY_VALID | (size << 16) | icount;
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
        if (leaf == zero_leaf)
            leaf = NULL;
        unsigned long long leaf_end = ((a >> LEAF_BITS) + 1) << LEAF_BITS;
        unsigned long long end = leaf_end < hi ? leaf_end : hi;
        if (leaf)
            memset(&leaf[a & (LEAF_SIZE - 1)], 0, (size_t)(end - a) * sizeof(uint32_t));
        a = end;
    }
    self->s->pass_valid = 0;
    Py_RETURN_NONE;
}

static PyObject *Counter_set_decoder(Counter *self, PyObject *args)
{
    unsigned long long base, handle, fn, insn;
    if (!PyArg_ParseTuple(args, "KKKK", &base, &handle, &fn, &insn))
        return NULL;
    self->s->host_base = (const uint8_t *)(uintptr_t)base;
    self->s->cs_handle = (size_t)handle;
    self->s->cs_disasm_iter = (cs_disasm_iter_fn)(uintptr_t)fn;
    self->s->cs_insn = (void *)(uintptr_t)insn;
    Py_RETURN_NONE;
}

/* count_prefix(addr, pc) -> int: how many instructions start in [addr, pc)
 * when decoding from addr (the caller checks that the bytes are mapped). */
static PyObject *Counter_count_prefix(Counter *self, PyObject *args)
{
    unsigned long long addr, pc;
    if (!PyArg_ParseTuple(args, "KK", &addr, &pc))
        return NULL;
    counter_state *s = self->s;
    if (s->cs_disasm_iter == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no decoder set");
        return NULL;
    }
    if (pc > 0x100000000ull || addr > pc) {
        PyErr_SetString(PyExc_ValueError, "bad range");
        return NULL;
    }
    const uint8_t *code = s->host_base + addr;
    size_t left = (size_t)(pc - addr);
    uint64_t a = addr;
    unsigned long n = 0;
    while (left > 0 && s->cs_disasm_iter(s->cs_handle, &code, &left, &a, s->cs_insn))
        n++;
    return PyLong_FromUnsignedLong(n);
}

static PyObject *Counter_set_io_check(Counter *self, PyObject *args)
{
    int flag;
    if (!PyArg_ParseTuple(args, "p", &flag))
        return NULL;
    self->s->io_check = flag;
    Py_RETURN_NONE;
}

static PyObject *Counter_set_cacheable(Counter *self, PyObject *args)
{
    unsigned long long lo, hi;
    int flag;
    if (!PyArg_ParseTuple(args, "KKp", &lo, &hi, &flag))
        return NULL;
    if (hi > 0x100000000ull)
        hi = 0x100000000ull;
    for (unsigned long long a = lo >> PAGE_BITS; a < (hi + (1u << PAGE_BITS) - 1) >> PAGE_BITS; a++) {
        if (flag)
            self->s->cacheable[a >> 3] |= (uint8_t)(1u << (a & 7));
        else
            self->s->cacheable[a >> 3] &= (uint8_t)~(1u << (a & 7));
    }
    Py_RETURN_NONE;
}

/* entries() -> bytes: every cached block as little-endian (u32 addr, u32 size, u32 count). */
static PyObject *Counter_entries(Counter *self, PyObject *Py_UNUSED(ignored))
{
    size_t n = 0;
    for (size_t i = 0; i < ROOT_SIZE; i++) {
        const uint32_t *leaf = self->s->root[i];
        if (leaf == zero_leaf)
            continue;
        for (size_t j = 0; j < LEAF_SIZE; j++)
            n += (leaf[j] & ENTRY_VALID) != 0;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 12));
    if (out == NULL)
        return NULL;
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(out);
    for (size_t i = 0; i < ROOT_SIZE; i++) {
        const uint32_t *leaf = self->s->root[i];
        if (leaf == zero_leaf)
            continue;
        for (size_t j = 0; j < LEAF_SIZE; j++) {
            uint32_t e = leaf[j];
            if (!(e & ENTRY_VALID))
                continue;
            uint32_t v[3] = {(uint32_t)((i << LEAF_BITS) | j), (e >> 16) & ENTRY_MAX_SIZE,
                             e & 0xffffu};
            for (int k = 0; k < 3; k++)
                for (int b = 0; b < 4; b++)
                    *p++ = (uint8_t)(v[k] >> (8 * b));
        }
    }
    return out;
}

static PyObject *Counter_forget_all(Counter *self, PyObject *Py_UNUSED(ignored))
{
    for (size_t i = 0; i < ROOT_SIZE; i++) {
        if (self->s->root[i] != zero_leaf)
            free(self->s->root[i]);
        self->s->root[i] = zero_leaf;
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

U64_GETSET(stop_reason)
U64_GETSET(stop_addr)
U64_GETSET(stop_size)
U64_GETSET(learned)

static int to_u64(PyObject *v, unsigned long long *out)
{
    if (v == NULL) {
        PyErr_SetString(PyExc_TypeError, "cannot delete this attribute");
        return -1;
    }
    *out = PyLong_AsUnsignedLongLong(v);
    return (*out == (unsigned long long)-1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *get_total(Counter *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->s->limit - self->s->budget);
}

static int set_total(Counter *self, PyObject *v, void *c)
{
    unsigned long long x;
    if (to_u64(v, &x) < 0)
        return -1;
    if (x > self->s->limit) {
        PyErr_SetString(PyExc_ValueError, "total above limit");
        return -1;
    }
    self->s->budget = self->s->limit - x;
    return 0;
}

static PyObject *get_limit(Counter *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->s->limit);
}

static int set_limit(Counter *self, PyObject *v, void *c)
{
    unsigned long long x;
    if (to_u64(v, &x) < 0)
        return -1;
    uint64_t total = self->s->limit - self->s->budget;
    if (x < total) {
        PyErr_SetString(PyExc_ValueError, "limit below total");
        return -1;
    }
    self->s->limit = x;
    self->s->budget = x - total;
    return 0;
}

/* The last block as one 64-bit value: entry in the high half. */
static uint64_t last_packed(const counter_state *s)
{
    return ((uint64_t)s->last.entry << 32) | s->last.addr;
}

static int set_last_field(Counter *self, PyObject *v, int shift, uint64_t mask)
{
    unsigned long long x;
    if (to_u64(v, &x) < 0)
        return -1;
    uint64_t packed = (last_packed(self->s) & ~(mask << shift)) | (((uint64_t)x & mask) << shift);
    self->s->last.addr = (uint32_t)packed;
    self->s->last.entry = (uint32_t)(packed >> 32);
    return 0;
}

static PyObject *get_last_addr(Counter *self, void *c)
{
    return PyLong_FromUnsignedLongLong(last_packed(self->s) & 0xffffffffu);
}

static int set_last_addr(Counter *self, PyObject *v, void *c)
{
    return set_last_field(self, v, 0, 0xffffffffu);
}

static PyObject *get_last_size(Counter *self, void *c)
{
    return PyLong_FromUnsignedLongLong((last_packed(self->s) >> 48) & ENTRY_MAX_SIZE);
}

static int set_last_size(Counter *self, PyObject *v, void *c)
{
    return set_last_field(self, v, 48, ENTRY_MAX_SIZE);
}

static PyObject *get_last_icount(Counter *self, void *c)
{
    return PyLong_FromUnsignedLongLong((last_packed(self->s) >> 32) & 0xffffu);
}

static int set_last_icount(Counter *self, PyObject *v, void *c)
{
    return set_last_field(self, v, 32, 0xffffu);
}

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
    GS(stop_reason), GS(stop_addr), GS(stop_size), GS(learned),
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
    {"set_decoder", (PyCFunction)Counter_set_decoder, METH_VARARGS,
     "set_decoder(host_base, cs_handle, cs_disasm_iter, cs_insn): decode new blocks natively"},
    {"count_prefix", (PyCFunction)Counter_count_prefix, METH_VARARGS,
     "count_prefix(addr, pc) -> int: instructions decoded from addr that start before pc"},
    {"set_io_check", (PyCFunction)Counter_set_io_check, METH_VARARGS,
     "set_io_check(flag): leave blocks with port I/O to Python instead of learning them"},
    {"set_cacheable", (PyCFunction)Counter_set_cacheable, METH_VARARGS,
     "set_cacheable(lo, hi, flag): whether blocks in these pages may be cached"},
    {"entries", (PyCFunction)Counter_entries, METH_NOARGS,
     "entries() -> bytes: the cached blocks as (u32 addr, u32 size, u32 count) records"},
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

/* ---------------------------------------------------------------------
 * Page permissions for Unicorn's virtual TLB (UC_HOOK_TLB_FILL).
 *
 * Unicorn 2.1.1 reports a data access to unmapped or protected memory
 * without restoring the guest state to the faulting instruction: EIP is left
 * at the start of the translated block and the lazily computed flags may be
 * stale.  A refusal from a TLB fill hook instead raises the fault through
 * QEMU's precise path (cpu_loop_exit_restore).  So the machine runs with the
 * virtual TLB and this hook answers every fill from the guest's page map:
 * identity address, the page's PROT_* bits.  When the bits do not allow the
 * access, Unicorn stops with UC_ERR_EXCEPTION at the exact instruction and
 * the hook has recorded which access (type and page) was refused.
 *
 * Instruction fetches are always allowed here: Unicorn also fills for
 * fetches outside of any guest run (when it drops translations), where a
 * refusal would unwind through the wrong frame.  Unicorn's own region checks
 * still refuse fetches from unmapped or non-executable memory, and a fetch
 * fault happens at a block's first instruction, where EIP is exact anyway.
 * ------------------------------------------------------------------- */
#define MEM_READ 16
#define MEM_WRITE 17
#define MEM_FETCH 18

typedef struct {
    uint64_t paddr;
    int perms;
} tlb_entry;

typedef struct {
    uint64_t fault_page;
    uint32_t fault_type;
    uint32_t fault_trapped;
    uint32_t fills;
    uint8_t perms[PAGE_COUNT];
    /* Watch traps: PROT_READ / PROT_WRITE bits withheld from the TLB on
     * pages a memory watch covers, so that the first such access there
     * stops exactly before its instruction (cpu.py "Page traps"). */
    uint8_t trap[PAGE_COUNT];
} page_state;

static int tlb_fill(void *uc, uint64_t vaddr, int type, tlb_entry *e, void *user_data)
{
    page_state *s = (page_state *)user_data;
    int need = type == MEM_READ ? 1 : type == MEM_WRITE ? 2 : 0;
    int inside = vaddr < 0x100000000ull;
    int perms = inside ? s->perms[vaddr >> PAGE_BITS] : 0;
    int trap = inside ? s->trap[vaddr >> PAGE_BITS] : 0;
    s->fills++;
    e->paddr = vaddr;
    if (type == MEM_FETCH) {
        /* One TLB entry serves every kind of access: withhold the trapped
         * ones here too, or a data access would hit this entry. */
        e->perms = 7 & ~trap;
        return 1;
    }
    e->perms = perms & ~trap;
    if ((e->perms & need) != need) {
        s->fault_page = vaddr;
        s->fault_type = (uint32_t)type;
        s->fault_trapped = (perms & need) == need;
    }
    return 1;
}

typedef struct {
    PyObject_HEAD
    page_state *s;
} Pages;

static int Pages_init(Pages *self, PyObject *args, PyObject *kwds)
{
    if (!PyArg_ParseTuple(args, ""))
        return -1;
    if (self->s == NULL) {
        self->s = (page_state *)calloc(1, sizeof(page_state));
        if (self->s == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static void Pages_dealloc(Pages *self)
{
    free(self->s);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Set table[p] = value for every page p that [lo, hi) touches (args: lo,
 * hi, value; hi clipped to 4 GiB). */
static PyObject *fill_pages(uint8_t *table, PyObject *args, unsigned int mask)
{
    unsigned long long lo, hi;
    unsigned int value;
    if (!PyArg_ParseTuple(args, "KKI", &lo, &hi, &value))
        return NULL;
    if (hi > 0x100000000ull)
        hi = 0x100000000ull;
    for (unsigned long long p = lo >> PAGE_BITS; p < (hi + (1u << PAGE_BITS) - 1) >> PAGE_BITS; p++)
        table[p] = (uint8_t)(value & mask);
    Py_RETURN_NONE;
}

static PyObject *Pages_set_perms(Pages *self, PyObject *args)
{
    return fill_pages(self->s->perms, args, 0xff);
}

static PyObject *Pages_set_traps(Pages *self, PyObject *args)
{
    return fill_pages(self->s->trap, args, 3);
}

/* take_fault() -> (uc_mem_type, page, trapped) of the last refused access,
 * or None; clears it.  ``trapped``: only a watch trap refused it. */
static PyObject *Pages_take_fault(Pages *self, PyObject *Py_UNUSED(ignored))
{
    if (self->s->fault_type == 0)
        Py_RETURN_NONE;
    PyObject *out = Py_BuildValue("(IKO)", self->s->fault_type,
                                  (unsigned long long)self->s->fault_page,
                                  self->s->fault_trapped ? Py_True : Py_False);
    self->s->fault_type = 0;
    self->s->fault_trapped = 0;
    return out;
}

static PyObject *Pages_get_hook_address(Pages *self, void *c)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&tlb_fill);
}

static PyObject *Pages_get_user_data(Pages *self, void *c)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self->s);
}

static PyObject *Pages_get_fills(Pages *self, void *c)
{
    return PyLong_FromUnsignedLong(self->s->fills);
}

static PyGetSetDef Pages_getset[] = {
    {"hook_address", (getter)Pages_get_hook_address, NULL, "address of the C TLB fill hook", NULL},
    {"user_data", (getter)Pages_get_user_data, NULL, "user_data pointer to pass to uc_hook_add", NULL},
    {"fills", (getter)Pages_get_fills, NULL, "TLB fills answered so far", NULL},
    {NULL}
};

static PyMethodDef Pages_methods[] = {
    {"set_perms", (PyCFunction)Pages_set_perms, METH_VARARGS,
     "set_perms(lo, hi, perms): the PROT_* bits of the pages of [lo, hi)"},
    {"set_traps", (PyCFunction)Pages_set_traps, METH_VARARGS,
     "set_traps(lo, hi, bits): withhold PROT_READ/PROT_WRITE bits on the pages of [lo, hi)"},
    {"take_fault", (PyCFunction)Pages_take_fault, METH_NOARGS,
     "take_fault() -> (uc_mem_type, page, trapped) | None: the access last refused (cleared)"},
    {NULL}
};

static PyTypeObject PagesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rrdbg.machine._icount.NativePages",
    .tp_doc = "The guest's page permissions, answering Unicorn's TLB fills in C.",
    .tp_basicsize = sizeof(Pages),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Pages_init,
    .tp_dealloc = (destructor)Pages_dealloc,
    .tp_methods = Pages_methods,
    .tp_getset = Pages_getset,
};

/* ---------------------------------------------------------------------
 * Memory watches (UC_HOOK_MEM_READ / UC_HOOK_MEM_WRITE), filtered in C.
 *
 * Unicorn compares a hook's bounds with the first byte of an access only,
 * so rrdbg registers a watch's hook from 16 bytes below the watched range
 * (an access overlapping it from below starts there) and this filter keeps
 * the accesses that really overlap [lo, hi): Python is called only for
 * those.  A neighbour written every few instructions, on the same cache
 * line, then costs a compare in C instead of a trip into Python.  (Unicorn
 * reports a load that crosses a page also as its aligned halves, so a
 * range next to such a load can see an access it did not overlap.)
 * ------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    uint64_t lo;
    uint64_t hi;
    uint64_t seen;
    PyObject *callback;
} Watch;

static void watch_hook(void *uc, int type, uint64_t address, int size, int64_t value,
                       void *user_data)
{
    Watch *w = (Watch *)user_data;
    w->seen++;
    if (address >= w->hi || address + (uint64_t)size <= w->lo || w->callback == NULL)
        return;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction(w->callback, "Ki", (unsigned long long)address, size);
    if (r == NULL)
        PyErr_WriteUnraisable(w->callback);  /* the callback traps its own errors */
    else
        Py_DECREF(r);
    PyGILState_Release(gil);
}

static int Watch_init(Watch *self, PyObject *args, PyObject *kwds)
{
    unsigned long long lo, hi;
    PyObject *callback;
    if (!PyArg_ParseTuple(args, "KKO", &lo, &hi, &callback))
        return -1;
    if (!PyCallable_Check(callback)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable");
        return -1;
    }
    if (hi <= lo) {
        PyErr_SetString(PyExc_ValueError, "empty watch range");
        return -1;
    }
    self->lo = lo;
    self->hi = hi;
    Py_INCREF(callback);
    Py_XSETREF(self->callback, callback);
    return 0;
}

/* The callback usually refers back to the CPU that holds this watch: a
 * cycle, so the type takes part in garbage collection. */
static int Watch_traverse(Watch *self, visitproc visit, void *arg)
{
    Py_VISIT(self->callback);
    return 0;
}

static int Watch_clear(Watch *self)
{
    Py_CLEAR(self->callback);
    return 0;
}

static void Watch_dealloc(Watch *self)
{
    PyObject_GC_UnTrack(self);
    Watch_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Watch_get_hook_address(Watch *self, void *c)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)&watch_hook);
}

static PyObject *Watch_get_user_data(Watch *self, void *c)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self);
}

static PyObject *Watch_get_seen(Watch *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->seen);
}

static PyGetSetDef Watch_getset[] = {
    {"hook_address", (getter)Watch_get_hook_address, NULL, "address of the C memory hook", NULL},
    {"user_data", (getter)Watch_get_user_data, NULL, "user_data pointer to pass to uc_hook_add", NULL},
    {"seen", (getter)Watch_get_seen, NULL, "accesses Unicorn passed to the filter", NULL},
    {NULL}
};

static PyTypeObject WatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rrdbg.machine._icount.NativeWatch",
    .tp_doc = "A memory watch whose exact range is checked in C.",
    .tp_basicsize = sizeof(Watch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Watch_init,
    .tp_dealloc = (destructor)Watch_dealloc,
    .tp_traverse = (traverseproc)Watch_traverse,
    .tp_clear = (inquiry)Watch_clear,
    .tp_getset = Watch_getset,
};

static struct PyModuleDef icount_module = {
    PyModuleDef_HEAD_INIT, "_icount", "Native hooks: exact instruction counting, the page map for TLB fills, memory watches.", -1, NULL,
};

PyMODINIT_FUNC PyInit__icount(void)
{
    if (PyType_Ready(&CounterType) < 0 || PyType_Ready(&PagesType) < 0 ||
        PyType_Ready(&WatchType) < 0)
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
    Py_INCREF(&PagesType);
    if (PyModule_AddObject(m, "NativePages", (PyObject *)&PagesType) < 0) {
        Py_DECREF(&PagesType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&WatchType);
    if (PyModule_AddObject(m, "NativeWatch", (PyObject *)&WatchType) < 0) {
        Py_DECREF(&WatchType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "STOP_NONE", STOP_NONE);
    PyModule_AddIntConstant(m, "STOP_LIMIT", STOP_LIMIT);
    PyModule_AddIntConstant(m, "STOP_UNKNOWN", STOP_UNKNOWN);
    return m;
}
