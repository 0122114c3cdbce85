/*
 * The read guard: a fault inside a read of a corrupt map fails that read,
 * not the process. Apart because it owns process-wide signal handlers and
 * the per-thread jump that only these reads may use.
 */
#include "ks-internal.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>

/*
 * LMDB trusts its pages: a corrupt page header (two bytes of mp_lower) sends
 * a read past the end of the file (SIGBUS) or, through a node read from the
 * wrong place, to a page number outside the map (SIGSEGV); reads cannot
 * check every page of a B-tree they do not walk themselves. So every read
 * of the map runs under a guard that turns such a fault into READ_FAULT; a
 * fault outside a guard goes to what the program had installed before.
 * Only reads: LMDB's writes link stack cursors into the transaction, which
 * a jump out would leave dangling.
 */
static _Thread_local sigjmp_buf *fault_jump __attribute__((tls_model("initial-exec")));
static const int fault_sigs[] = {SIGBUS, SIGSEGV};
static struct sigaction prev_action[2];
pthread_once_t fault_once = PTHREAD_ONCE_INIT;

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
    sigjmp_buf *jb = fault_jump;
    const struct sigaction *prev = &prev_action[sig == SIGSEGV];

    if (jb != NULL) {
        fault_jump = NULL;
        siglongjmp(*jb, 1);
    }
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, ctx);
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
    } else if (si->si_code > 0 || prev->sa_handler == SIG_DFL) {
        /* As if saef were not there: a fault repeats, a kill() is sent again
           (si_code <= 0: sent by a process, not by the CPU). */
        sigaction(sig, prev, NULL);
        if (si->si_code <= 0)
            raise(sig);
    } /* else a kill() the program ignores */
}

/* SA_NODEFER: the jump out leaves the signal mask as it was, so sigsetjmp
   need not save it (a system call per read). */
void install_fault_guard(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++)
        sigaction(fault_sigs[i], &sa, &prev_action[i]);
}

/* mdb_get and, inside the guard (the value lies in the map), with rec the
   record decoded into it (*ok), with want the value compared with it
   (MDB_NOTFOUND when it differs). */
static int get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, saef_ks_record *rec, int *ok,
               const char *want)
{
    sigjmp_buf jb;
    MDB_val v;
    int rc;

    if (sigsetjmp(jb, 0) != 0)
        return READ_FAULT;
    fault_jump = &jb;
    rc = mdb_get(txn, dbi, k, &v);
    *ok = rc == 0 && rec != NULL && saef_ks_rec_decode(v.mv_data, v.mv_size, rec);
    if (rc == 0 && want != NULL &&
        (v.mv_size != strlen(want) || memcmp(v.mv_data, want, v.mv_size) != 0))
        rc = MDB_NOTFOUND;
    fault_jump = NULL;
    return rc;
}

int guarded_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, saef_ks_record *rec, int *ok)
{
    return get(txn, dbi, k, rec, ok, NULL);
}

/* A cursor step with the key (copy_value: the value) copied into buf when it
   fits (its size in *len), and with rec the value decoded into it (*ok). */
int guarded_step(MDB_cursor *cur, MDB_cursor_op op, MDB_val *k, int copy_value, unsigned char *buf,
                 size_t bufsize, size_t *len, saef_ks_record *rec, int *ok)
{
    sigjmp_buf jb;
    MDB_val v, *copy;
    int rc;

    if (sigsetjmp(jb, 0) != 0)
        return READ_FAULT;
    fault_jump = &jb;
    if ((rc = mdb_cursor_get(cur, k, &v, op)) == 0) {
        copy = copy_value ? &v : k;
        *len = copy->mv_size;
        if (copy->mv_size <= bufsize)
            memcpy(buf, copy->mv_data, copy->mv_size);
        *ok = rec != NULL && saef_ks_rec_decode(v.mv_data, v.mv_size, rec);
    }
    fault_jump = NULL;
    return rc;
}

int guarded_dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
    sigjmp_buf jb;
    int rc;

    if (sigsetjmp(jb, 0) != 0)
        return READ_FAULT;
    fault_jump = &jb;
    rc = mdb_dbi_open(txn, name, flags, dbi);
    fault_jump = NULL;
    return rc;
}

/* 0 if the marker is there with the value want, MDB_NOTFOUND if not, or
   the read's error. */
int guarded_marker(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const char *want)
{
    int ok;

    return get(txn, dbi, k, NULL, &ok, want);
}
