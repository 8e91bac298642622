/* A small shared library for the dynamic-linking tests: the program finds it
   through its RUNPATH (/opt/rrdbg-test/lib), which exists only under a
   --sysroot (or with LD_LIBRARY_PATH natively). */
int guest_calls;

int guest_sum(const int *a, int n)
{
    int s = 0;
    guest_calls++;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}
