/* fpmath: libm results that depend on the x87 and SSE being exact, printed
 * to the last digit: glibc's i386 fmod and remainder loop on FPREM and
 * FPREM1, fmodl works in extended precision, sqrt and rint round as the
 * control word says, and the SSE arithmetic gcc emits for floats (with
 * -msse2 -mfpmath=sse) propagates NaNs as the hardware does.  Compared with
 * the native run (tests/machine/test_guests.py); before issue 19 rrdbg's
 * fmod(1e300, 3.14159) was 0.  build-flags: -msse2 -mfpmath=sse */
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(void)
{
    volatile double xs[] = {1e300, 123456789.123, 7.5, -1e22, 3.0e-300, 1e18, 5e-320};
    volatile double ys[] = {3.14159, 0.1, 2.0, 7.0, 1.1e-305, 3.3, 3e-321};
    for (int i = 0; i < 7; i++) {
        printf("fmod(%a, %a) = %a remainder = %a\n", xs[i], ys[i], fmod(xs[i], ys[i]),
               remainder(xs[i], ys[i]));
    }
    volatile long double a = 1e4000L, b = 3.0L, c = 1.0L / 3.0L;
    printf("fmodl = %La, 1/3 = %La, sqrtl(2) = %La\n", fmodl(a, b), c, sqrtl(2.0L));
    static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    for (int i = 0; i < 4; i++) {
        fesetround(modes[i]);
        volatile double q = 2.0, h = 2.5;
        printf("mode %d: sqrt(2) = %a, rint(2.5) = %a, 1/3 = %a\n", i, sqrt(q), rint(h),
               1.0 / (q + 1.0));
    }
    fesetround(FE_TONEAREST);
    /* two NaN operands: SSE keeps the first one's payload */
    volatile float n1 = __builtin_nanf("0x100000"), n2 = __builtin_nanf("0x200000");
    printf("nan * nan = %08x, %08x\n", bits(n1 * n2), bits(n2 * n1));
    feclearexcept(FE_ALL_EXCEPT);
    volatile int three = 3;
    volatile float third = 1.0f / (float)three;
    (void)third;
    printf("inexact after 1/3f: %d\n", fetestexcept(FE_INEXACT) != 0);
    return 0;
}
