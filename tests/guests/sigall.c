/* Every signal, one after another, each with a handler: the program behind
   tests/server/test_sigall.py, which drives gdb through them forwards (stop,
   handler, "signal 0") and then backwards over all of them, as gdb's own
   gdb.reverse/sigall-reverse.exp does.  Names Linux does not have (SIGEMT,
   SIGLOST, ...; SIGPOLL is SIGIO here) call their handler directly.
   Real-time signals start at 34: glibc keeps 32 and 33 for itself.
   build-flags: -O0 */
#include <signal.h>
#include <unistd.h>

volatile int handled;

void handle_ABRT(int sig) { (void)sig; handled++; }
void handle_HUP(int sig) { (void)sig; handled++; }
void handle_QUIT(int sig) { (void)sig; handled++; }
void handle_ILL(int sig) { (void)sig; handled++; }
void handle_EMT(int sig) { (void)sig; handled++; }
void handle_FPE(int sig) { (void)sig; handled++; }
void handle_BUS(int sig) { (void)sig; handled++; }
void handle_SEGV(int sig) { (void)sig; handled++; }
void handle_SYS(int sig) { (void)sig; handled++; }
void handle_PIPE(int sig) { (void)sig; handled++; }
void handle_ALRM(int sig) { (void)sig; handled++; }
void handle_URG(int sig) { (void)sig; handled++; }
void handle_TSTP(int sig) { (void)sig; handled++; }
void handle_CONT(int sig) { (void)sig; handled++; }
void handle_CHLD(int sig) { (void)sig; handled++; }
void handle_TTIN(int sig) { (void)sig; handled++; }
void handle_TTOU(int sig) { (void)sig; handled++; }
void handle_IO(int sig) { (void)sig; handled++; }
void handle_XCPU(int sig) { (void)sig; handled++; }
void handle_XFSZ(int sig) { (void)sig; handled++; }
void handle_VTALRM(int sig) { (void)sig; handled++; }
void handle_PROF(int sig) { (void)sig; handled++; }
void handle_WINCH(int sig) { (void)sig; handled++; }
void handle_LOST(int sig) { (void)sig; handled++; }
void handle_USR1(int sig) { (void)sig; handled++; }
void handle_USR2(int sig) { (void)sig; handled++; }
void handle_PWR(int sig) { (void)sig; handled++; }
void handle_POLL(int sig) { (void)sig; handled++; }
void handle_WIND(int sig) { (void)sig; handled++; }
void handle_PHONE(int sig) { (void)sig; handled++; }
void handle_WAITING(int sig) { (void)sig; handled++; }
void handle_LWP(int sig) { (void)sig; handled++; }
void handle_DANGER(int sig) { (void)sig; handled++; }
void handle_GRANT(int sig) { (void)sig; handled++; }
void handle_RETRACT(int sig) { (void)sig; handled++; }
void handle_MSG(int sig) { (void)sig; handled++; }
void handle_SOUND(int sig) { (void)sig; handled++; }
void handle_SAK(int sig) { (void)sig; handled++; }
void handle_PRIO(int sig) { (void)sig; handled++; }
void handle_34(int sig) { (void)sig; handled++; }
void handle_35(int sig) { (void)sig; handled++; }
void handle_36(int sig) { (void)sig; handled++; }
void handle_37(int sig) { (void)sig; handled++; }
void handle_38(int sig) { (void)sig; handled++; }
void handle_39(int sig) { (void)sig; handled++; }
void handle_40(int sig) { (void)sig; handled++; }
void handle_41(int sig) { (void)sig; handled++; }
void handle_42(int sig) { (void)sig; handled++; }
void handle_43(int sig) { (void)sig; handled++; }
void handle_44(int sig) { (void)sig; handled++; }
void handle_45(int sig) { (void)sig; handled++; }
void handle_46(int sig) { (void)sig; handled++; }
void handle_47(int sig) { (void)sig; handled++; }
void handle_48(int sig) { (void)sig; handled++; }
void handle_49(int sig) { (void)sig; handled++; }
void handle_50(int sig) { (void)sig; handled++; }
void handle_51(int sig) { (void)sig; handled++; }
void handle_52(int sig) { (void)sig; handled++; }
void handle_53(int sig) { (void)sig; handled++; }
void handle_54(int sig) { (void)sig; handled++; }
void handle_55(int sig) { (void)sig; handled++; }
void handle_56(int sig) { (void)sig; handled++; }
void handle_57(int sig) { (void)sig; handled++; }
void handle_58(int sig) { (void)sig; handled++; }
void handle_59(int sig) { (void)sig; handled++; }
void handle_60(int sig) { (void)sig; handled++; }
void handle_61(int sig) { (void)sig; handled++; }
void handle_62(int sig) { (void)sig; handled++; }
void handle_63(int sig) { (void)sig; handled++; }
void handle_TERM(int sig) { (void)sig; handled++; }
void gen_ABRT(void) { kill(getpid(), SIGABRT); }
void gen_HUP(void) { kill(getpid(), SIGHUP); }
void gen_QUIT(void) { kill(getpid(), SIGQUIT); }
void gen_ILL(void) { kill(getpid(), SIGILL); }
void gen_EMT(void) { handle_EMT(0); }
void gen_FPE(void) { kill(getpid(), SIGFPE); }
void gen_BUS(void) { kill(getpid(), SIGBUS); }
void gen_SEGV(void) { kill(getpid(), SIGSEGV); }
void gen_SYS(void) { kill(getpid(), SIGSYS); }
void gen_PIPE(void) { kill(getpid(), SIGPIPE); }
void gen_ALRM(void) { kill(getpid(), SIGALRM); }
void gen_URG(void) { kill(getpid(), SIGURG); }
void gen_TSTP(void) { kill(getpid(), SIGTSTP); }
void gen_CONT(void) { kill(getpid(), SIGCONT); }
void gen_CHLD(void) { kill(getpid(), SIGCHLD); }
void gen_TTIN(void) { kill(getpid(), SIGTTIN); }
void gen_TTOU(void) { kill(getpid(), SIGTTOU); }
void gen_IO(void) { kill(getpid(), SIGIO); }
void gen_XCPU(void) { kill(getpid(), SIGXCPU); }
void gen_XFSZ(void) { kill(getpid(), SIGXFSZ); }
void gen_VTALRM(void) { kill(getpid(), SIGVTALRM); }
void gen_PROF(void) { kill(getpid(), SIGPROF); }
void gen_WINCH(void) { kill(getpid(), SIGWINCH); }
void gen_LOST(void) { handle_LOST(0); }
void gen_USR1(void) { kill(getpid(), SIGUSR1); }
void gen_USR2(void) { kill(getpid(), SIGUSR2); }
void gen_PWR(void) { kill(getpid(), SIGPWR); }
void gen_POLL(void) { handle_POLL(0); }
void gen_WIND(void) { handle_WIND(0); }
void gen_PHONE(void) { handle_PHONE(0); }
void gen_WAITING(void) { handle_WAITING(0); }
void gen_LWP(void) { handle_LWP(0); }
void gen_DANGER(void) { handle_DANGER(0); }
void gen_GRANT(void) { handle_GRANT(0); }
void gen_RETRACT(void) { handle_RETRACT(0); }
void gen_MSG(void) { handle_MSG(0); }
void gen_SOUND(void) { handle_SOUND(0); }
void gen_SAK(void) { handle_SAK(0); }
void gen_PRIO(void) { handle_PRIO(0); }
void gen_34(void) { kill(getpid(), 34); }
void gen_35(void) { kill(getpid(), 35); }
void gen_36(void) { kill(getpid(), 36); }
void gen_37(void) { kill(getpid(), 37); }
void gen_38(void) { kill(getpid(), 38); }
void gen_39(void) { kill(getpid(), 39); }
void gen_40(void) { kill(getpid(), 40); }
void gen_41(void) { kill(getpid(), 41); }
void gen_42(void) { kill(getpid(), 42); }
void gen_43(void) { kill(getpid(), 43); }
void gen_44(void) { kill(getpid(), 44); }
void gen_45(void) { kill(getpid(), 45); }
void gen_46(void) { kill(getpid(), 46); }
void gen_47(void) { kill(getpid(), 47); }
void gen_48(void) { kill(getpid(), 48); }
void gen_49(void) { kill(getpid(), 49); }
void gen_50(void) { kill(getpid(), 50); }
void gen_51(void) { kill(getpid(), 51); }
void gen_52(void) { kill(getpid(), 52); }
void gen_53(void) { kill(getpid(), 53); }
void gen_54(void) { kill(getpid(), 54); }
void gen_55(void) { kill(getpid(), 55); }
void gen_56(void) { kill(getpid(), 56); }
void gen_57(void) { kill(getpid(), 57); }
void gen_58(void) { kill(getpid(), 58); }
void gen_59(void) { kill(getpid(), 59); }
void gen_60(void) { kill(getpid(), 60); }
void gen_61(void) { kill(getpid(), 61); }
void gen_62(void) { kill(getpid(), 62); }
void gen_63(void) { kill(getpid(), 63); }
void gen_TERM(void) { kill(getpid(), SIGTERM); }

int main(void)
{
    signal(SIGABRT, handle_ABRT);
    signal(SIGHUP, handle_HUP);
    signal(SIGQUIT, handle_QUIT);
    signal(SIGILL, handle_ILL);
    signal(SIGFPE, handle_FPE);
    signal(SIGBUS, handle_BUS);
    signal(SIGSEGV, handle_SEGV);
    signal(SIGSYS, handle_SYS);
    signal(SIGPIPE, handle_PIPE);
    signal(SIGALRM, handle_ALRM);
    signal(SIGURG, handle_URG);
    signal(SIGTSTP, handle_TSTP);
    signal(SIGCONT, handle_CONT);
    signal(SIGCHLD, handle_CHLD);
    signal(SIGTTIN, handle_TTIN);
    signal(SIGTTOU, handle_TTOU);
    signal(SIGIO, handle_IO);
    signal(SIGXCPU, handle_XCPU);
    signal(SIGXFSZ, handle_XFSZ);
    signal(SIGVTALRM, handle_VTALRM);
    signal(SIGPROF, handle_PROF);
    signal(SIGWINCH, handle_WINCH);
    signal(SIGUSR1, handle_USR1);
    signal(SIGUSR2, handle_USR2);
    signal(SIGPWR, handle_PWR);
    signal(34, handle_34);
    signal(35, handle_35);
    signal(36, handle_36);
    signal(37, handle_37);
    signal(38, handle_38);
    signal(39, handle_39);
    signal(40, handle_40);
    signal(41, handle_41);
    signal(42, handle_42);
    signal(43, handle_43);
    signal(44, handle_44);
    signal(45, handle_45);
    signal(46, handle_46);
    signal(47, handle_47);
    signal(48, handle_48);
    signal(49, handle_49);
    signal(50, handle_50);
    signal(51, handle_51);
    signal(52, handle_52);
    signal(53, handle_53);
    signal(54, handle_54);
    signal(55, handle_55);
    signal(56, handle_56);
    signal(57, handle_57);
    signal(58, handle_58);
    signal(59, handle_59);
    signal(60, handle_60);
    signal(61, handle_61);
    signal(62, handle_62);
    signal(63, handle_63);
    signal(SIGTERM, handle_TERM);
    gen_ABRT();
    gen_HUP();
    gen_QUIT();
    gen_ILL();
    gen_EMT();
    gen_FPE();
    gen_BUS();
    gen_SEGV();
    gen_SYS();
    gen_PIPE();
    gen_ALRM();
    gen_URG();
    gen_TSTP();
    gen_CONT();
    gen_CHLD();
    gen_TTIN();
    gen_TTOU();
    gen_IO();
    gen_XCPU();
    gen_XFSZ();
    gen_VTALRM();
    gen_PROF();
    gen_WINCH();
    gen_LOST();
    gen_USR1();
    gen_USR2();
    gen_PWR();
    gen_POLL();
    gen_WIND();
    gen_PHONE();
    gen_WAITING();
    gen_LWP();
    gen_DANGER();
    gen_GRANT();
    gen_RETRACT();
    gen_MSG();
    gen_SOUND();
    gen_SAK();
    gen_PRIO();
    gen_34();
    gen_35();
    gen_36();
    gen_37();
    gen_38();
    gen_39();
    gen_40();
    gen_41();
    gen_42();
    gen_43();
    gen_44();
    gen_45();
    gen_46();
    gen_47();
    gen_48();
    gen_49();
    gen_50();
    gen_51();
    gen_52();
    gen_53();
    gen_54();
    gen_55();
    gen_56();
    gen_57();
    gen_58();
    gen_59();
    gen_60();
    gen_61();
    gen_62();
    gen_63();
    gen_TERM();
    return handled == 70 ? 0 : 1;
}
