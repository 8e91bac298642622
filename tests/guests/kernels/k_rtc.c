/* k_rtc: reads the CMOS real-time clock (ports 0x70/0x71) the way PC
 * kernels do and prints only facts that do not depend on the time of day:
 * the status registers and whether the date and time fields are valid.
 * The time itself is never printed.
 *
 *     k_rtc: status B 0x02 (24-hour, BCD)
 *     k_rtc: status D 0x80 (valid RAM and time)
 *     k_rtc: date and time fields valid: yes
 *     k_rtc: year 2020 or later: yes
 *
 * Exit code 0, or 1 when a check printed BAD. */
#include "runtime.h"

static int failed;

static const char *check(int ok)
{
    failed |= !ok;
    return ok ? "yes" : "BAD";
}

static uint8_t cmos_read(uint8_t reg)
{
    outb(0x70, reg); /* bit 7 clear: NMI stays enabled, as it was */
    return inb(0x71);
}

static int bcd_ok(uint8_t v, unsigned lo, unsigned hi)
{
    unsigned n = (v >> 4) * 10u + (v & 0xF);
    return (v & 0xF) <= 9 && (v >> 4) <= 9 && n >= lo && n <= hi;
}

static unsigned bcd(uint8_t v)
{
    return (v >> 4) * 10u + (v & 0xF);
}

struct rtc_time {
    uint8_t sec, min, hour, day, month, year, century;
};

static void rtc_read(struct rtc_time *t)
{
    /* Wait out an update in progress (status A bit 7), so no field is read
     * while the clock changes it.  An update takes under 2 ms; a bit that
     * never clears (no RTC behind the ports) fails the run instead of
     * hanging it. */
    for (uint32_t polls = 0; cmos_read(0x0A) & 0x80; polls++) {
        if (polls == 1000000) {
            kprintf("k_rtc: BAD: update in progress never ends\n");
            exit(EXIT_CHECK_FAILED);
        }
    }
    t->sec = cmos_read(0x00);
    t->min = cmos_read(0x02);
    t->hour = cmos_read(0x04);
    t->day = cmos_read(0x07);
    t->month = cmos_read(0x08);
    t->year = cmos_read(0x09);
    t->century = cmos_read(0x32);
}

int kmain(uint32_t magic, const struct multiboot_info *mbi)
{
    (void)magic;
    (void)mbi;
    serial_init();
    uint8_t b = cmos_read(0x0B);
    uint8_t d = cmos_read(0x0D);
    kprintf("k_rtc: status B 0x%02x (%s, %s)\n", b, b & 0x02 ? "24-hour" : "12-hour",
            b & 0x04 ? "binary" : "BCD");
    kprintf("k_rtc: status D 0x%02x (%s)\n", d, d & 0x80 ? "valid RAM and time" : "BAD");
    failed |= !(d & 0x80);

    /* Read until two reads agree: the standard way to avoid a torn value
     * when an update falls between the fields. */
    struct rtc_time t, again;
    rtc_read(&t);
    for (int tries = 0;; tries++) {
        if (tries == 10) {
            kprintf("k_rtc: BAD: the clock never reads the same twice\n");
            return EXIT_CHECK_FAILED;
        }
        rtc_read(&again);
        if (again.sec == t.sec && again.min == t.min && again.hour == t.hour &&
            again.day == t.day && again.month == t.month && again.year == t.year &&
            again.century == t.century) {
            break;
        }
        t = again;
    }
    /* The checks below assume what QEMU and rrdbg provide: 24-hour BCD. */
    int valid = (b & 0x06) == 0x02 && bcd_ok(t.sec, 0, 59) && bcd_ok(t.min, 0, 59) &&
                bcd_ok(t.hour, 0, 23) && bcd_ok(t.day, 1, 31) && bcd_ok(t.month, 1, 12) &&
                bcd_ok(t.year, 0, 99) && bcd_ok(t.century, 19, 99);
    kprintf("k_rtc: date and time fields valid: %s\n", check(valid));
    kprintf("k_rtc: year 2020 or later: %s\n", check(bcd(t.century) * 100 + bcd(t.year) >= 2020));
    return failed ? EXIT_CHECK_FAILED : EXIT_OK;
}
