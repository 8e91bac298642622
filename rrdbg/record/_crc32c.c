/*
 * CRC-32C (Castagnoli, reflected, init/final xor 0xFFFFFFFF) for the replay
 * log's chunk checksums: a table-driven, slicing-by-8 C version of
 * rrdbg.record.log.py_crc32c, which gives identical results (tests compare
 * them).  About 1 GB/s instead of the pure-Python 30 MB/s.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static uint32_t table[8][256];

static void init_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    crc ^= 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^
              table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc ^ 0xFFFFFFFFu;
}

static PyObject *py_crc32c(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    unsigned int crc = 0;
    if (!PyArg_ParseTuple(args, "y*|I", &buf, &crc))
        return NULL;
    uint32_t out;
    Py_BEGIN_ALLOW_THREADS
    out = crc32c((uint32_t)crc, (const uint8_t *)buf.buf, (size_t)buf.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return PyLong_FromUnsignedLong(out);
}

static PyMethodDef methods[] = {
    {"crc32c", py_crc32c, METH_VARARGS, "crc32c(data, crc=0) -> int: CRC-32C, chainable"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_crc32c", "CRC-32C for replay-log checksums.", -1, methods,
};

PyMODINIT_FUNC PyInit__crc32c(void)
{
    init_tables();
    return PyModule_Create(&module);
}
