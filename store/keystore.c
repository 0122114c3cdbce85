/* The saef key store on LMDB. */
#define _GNU_SOURCE /* secure_getenv */
#include "ks-record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Layout: the unnamed LMDB database holds the records. Key = 1 type byte +
 * identity bytes; type 0 holds only the marker below (saef_ks_count relies
 * on it). Value = a versioned record, little-endian, see saef_ks_rec_encode().
 * The named database INDEX_DB (its name sorts after every record) maps each
 * non-empty peer to the keys of its records, so a client finds the keys for
 * one IdB without a walk; every write keeps it, and the first writable open
 * builds it for a store made before it existed.
 */
#define MARKER_KEY "\0saef-store"
#define MARKER_VAL "saef keystore v1"
#define INDEX_DB "\xffpeer"
/* Virtual size: the file grows only as records are written, and the map
   doubles when a write finds it full. SAEF_KS_MAP_SIZE sets another start. */
#define MAP_SIZE ((size_t)1 << 30)
#define MAP_SIZE_MIN ((size_t)1 << 16)
/* Reader slots in the lock file, for all processes (LMDB's default: 126).
   Each pooled or running read transaction holds one. */
#define MAX_READERS 510
/* Reset read transactions kept per environment for the next lookups. */
#define POOL 8
/* A write operation as the batch journal keeps it: op, identity length,
   record length (2 bytes), then the LMDB key and value. */
#define OP_HDR 4
#define OP_MAX (OP_HDR + 1 + SAEF_KS_ID_MAX + REC_MAX)
#define ID_TEXT_MAX (4 * SAEF_KS_ID_MAX + 1)

enum { OP_PUT, OP_ADD, OP_DEL };
enum { BATCH_NONE, BATCH_OPEN, BATCH_FAILED };

/*
 * LMDB allows one environment per store file in a process: closing a second
 * one drops the process's locks on the lock file, and another process may
 * then reset the reader table under the first. So every handle on the same
 * file (the shim, the provider, a writer opened for a moment) shares one.
 */
struct ks_env {
    struct ks_env *next;
    dev_t dev;
    ino_t ino;
    int refs;
    int writable; /* opened without MDB_RDONLY */
    MDB_env *env;
    MDB_dbi dbi;
    MDB_dbi idx;  /* INDEX_DB, when has_idx */
    int has_idx;  /* always in a writable environment: every writer keeps it */
    /* Held shared by every transaction, exclusively to remap the file. The
       default, reader-preferring kind: a batch or an iter callback takes it
       shared again, which a writer-preferring lock could deadlock. */
    pthread_rwlock_t map_lock;
    int unmapped; /* a remap failed after LMDB dropped the old map (map_lock) */
    _Atomic(MDB_txn *) pool[POOL];
};

struct saef_ks {
    char *path;
    unsigned flags;
    atomic_uint gen; /* fork generation that e belongs to */
    struct ks_env *e;
    int batch;
    MDB_txn *wtxn; /* the open batch; holds e->map_lock shared */
    unsigned char *jr; /* the batch's operations, replayed after the map grows */
    size_t jr_len, jr_cap;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ks_env *envs;      /* this process's environments */
static struct ks_env *inherited; /* the parent's, after fork(): never touched */
static atomic_uint fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static _Thread_local struct {
    const saef_ks *ks;
    char msg[512];
} last_err;

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
#define READ_FAULT (-30000) /* below LMDB's own codes */
static _Thread_local sigjmp_buf *fault_jump __attribute__((tls_model("initial-exec")));
static const int fault_sigs[] = {SIGBUS, SIGSEGV};
static struct sigaction prev_action[2];
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;

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
static void install_fault_guard(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++)
        sigaction(fault_sigs[i], &sa, &prev_action[i]);
}

/* mdb_get and, when rec, the record decoded into it (*ok). */
static int guarded_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, saef_ks_record *rec, int *ok)
{
    sigjmp_buf jb;
    MDB_val v;
    int rc;

    if (sigsetjmp(jb, 0) != 0)
        return READ_FAULT;
    fault_jump = &jb;
    rc = mdb_get(txn, dbi, k, &v);
    *ok = rc == 0 && rec != NULL && saef_ks_rec_decode(v.mv_data, v.mv_size, rec);
    fault_jump = NULL;
    return rc;
}

/* A cursor step with the key (copy_value: the value) copied into buf when it
   fits (its size in *len), and with rec the value decoded into it (*ok). */
static int guarded_step(MDB_cursor *cur, MDB_cursor_op op, MDB_val *k, int copy_value,
                        unsigned char *buf, size_t bufsize, size_t *len, saef_ks_record *rec,
                        int *ok)
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

static int guarded_dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
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

/* The registry is consistent in the child because fork waits for reg_lock. */
static void before_fork(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

static void after_fork_child(void)
{
    struct ks_env **tail = &inherited;

    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = envs;
    envs = NULL;
    atomic_fetch_add(&fork_gen, 1);
    pthread_mutex_unlock(&reg_lock);
}

static void install_atfork(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static SAEF_KS_ERR fail(const saef_ks *ks, SAEF_KS_ERR err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static SAEF_KS_ERR fail(const saef_ks *ks, SAEF_KS_ERR err, const char *fmt, ...)
{
    va_list ap;

    last_err.ks = ks;
    va_start(ap, fmt);
    vsnprintf(last_err.msg, sizeof(last_err.msg), fmt, ap);
    va_end(ap);
    return err;
}

const char *saef_ks_last_error(const saef_ks *ks)
{
    return last_err.ks == ks ? last_err.msg : "";
}

static SAEF_KS_ERR from_mdb(const saef_ks *ks, int rc, const char *what)
{
    switch (rc) {
    case MDB_NOTFOUND: return SAEF_KS_ENOTFOUND;
    case MDB_KEYEXIST: return SAEF_KS_EEXISTS;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
        return fail(ks, SAEF_KS_ECORRUPT,
                    "store %s is corrupt or not a saef store (%s: %s): restore it from a "
                    "backup",
                    ks->path, what, mdb_strerror(rc));
    case READ_FAULT:
        return fail(ks, SAEF_KS_ECORRUPT,
                    "store %s is corrupt: a read (%s) went outside the file: restore it "
                    "from a backup",
                    ks->path, what);
    case MDB_READERS_FULL:
        return fail(ks, SAEF_KS_EIO,
                    "store %s: all %d reader slots are taken (%s): too many processes or "
                    "threads read it at once",
                    ks->path, MAX_READERS, what);
    case ENOMEM:
        return fail(ks, SAEF_KS_EIO,
                    "store %s: no memory or address space to map it (%s): restart the "
                    "program, with a lower SAEF_KS_MAP_SIZE if address space is limited",
                    ks->path, what);
    case EACCES:
    case EPERM:
        return fail(ks, SAEF_KS_EPERM,
                    "store %s: %s: permission denied (readers need to read it and write "
                    "%s" SAEF_LOCK_SUFFIX "; writers need to write both)",
                    ks->path, what, ks->path);
    }
    return fail(ks, SAEF_KS_EIO, "store %s: %s: %s", ks->path, what, mdb_strerror(rc));
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* version, flags (0), key_len(2), created(8), not_after(8), suid(4),
   peer_len, self_len, meta_len(2), then key, peer, self, meta. */
size_t saef_ks_rec_encode(const saef_ks_record *r, size_t peer_len, size_t self_len,
                          size_t meta_len, unsigned char *buf)
{
    unsigned char *p = buf + REC_HDR;

    buf[0] = REC_VERSION;
    buf[1] = 0;
    put_le(buf + 2, r->key_len, 2);
    put_le(buf + 4, (uint64_t)r->created, 8);
    put_le(buf + 12, (uint64_t)r->not_after, 8);
    put_le(buf + 20, (uint32_t)r->suid, 4);
    buf[24] = (unsigned char)peer_len;
    buf[25] = (unsigned char)self_len;
    put_le(buf + 26, meta_len, 2);
    memcpy(p, r->key, r->key_len);
    memcpy(p += r->key_len, r->peer, peer_len);
    memcpy(p += peer_len, r->self, self_len);
    memcpy(p += self_len, r->meta, meta_len);
    return (size_t)(p + meta_len - buf);
}

/* Checks every length before writing anything to r. */
int saef_ks_rec_decode(const void *data, size_t size, saef_ks_record *r)
{
    const unsigned char *b = data, *p = b + REC_HDR;
    size_t key_len, peer_len, self_len, meta_len;

    if (size < REC_HDR || b[0] != REC_VERSION || b[1] != 0)
        return 0;
    key_len = get_le(b + 2, 2);
    peer_len = b[24];
    self_len = b[25];
    meta_len = get_le(b + 26, 2);
    if (key_len == 0 || key_len > SAEF_KS_KEY_MAX || peer_len > SAEF_KS_ENTITY_MAX ||
        self_len > SAEF_KS_ENTITY_MAX || meta_len > SAEF_KS_META_MAX ||
        size != REC_HDR + key_len + peer_len + self_len + meta_len)
        return 0;
    r->key_len = key_len;
    r->created = (int64_t)get_le(b + 4, 8);
    r->not_after = (int64_t)get_le(b + 12, 8);
    r->suid = (int32_t)get_le(b + 20, 4);
    memcpy(r->key, p, key_len);
    memcpy(r->peer, p += key_len, peer_len);
    r->peer[peer_len] = '\0';
    memcpy(r->self, p += peer_len, self_len);
    r->self[self_len] = '\0';
    memcpy(r->meta, p += self_len, meta_len);
    r->meta[meta_len] = '\0';
    return 1;
}

void saef_ks_record_wipe(saef_ks_record *rec)
{
    /* The key with OpenSSL's cleanse, which the compiler cannot drop; the
       rest (not secret, 1.5 KiB, wiped at every handshake) with memset. */
    if (rec != NULL) {
        OPENSSL_cleanse(rec->key, sizeof(rec->key));
        memset(&rec->key_len, 0, sizeof(*rec) - offsetof(saef_ks_record, key_len));
    }
}

/* ---- opening ---------------------------------------------------------- */

static SAEF_KS_ERR check_mode(const saef_ks *ks, const struct stat *st)
{
    mode_t m = st->st_mode & 0777;
    const char *fix = ks->flags & SAEF_KS_GROUP_READ ? "640" : "600";

    if (!S_ISREG(st->st_mode))
        return fail(ks, SAEF_KS_ECORRUPT, "store %s is not a regular file", ks->path);
    /* In a sticky directory (/tmp) anyone may make the file first. */
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return fail(ks, SAEF_KS_EPERM,
                    "store %s belongs to another user (uid %u), not to root or uid %u who runs "
                    "saef: remove it and create it again with saef-key -s %s init",
                    ks->path, (unsigned)st->st_uid, (unsigned)geteuid(), ks->path);
    if (m & 0022)
        return fail(ks, SAEF_KS_EPERM, "store %s is writable by %s (mode %04o): chmod %s %s",
                    ks->path, m & 0002 ? "others" : "its group", (unsigned)m, fix, ks->path);
    if (m & 0004)
        return fail(ks, SAEF_KS_EPERM, "store %s is readable by others (mode %04o): chmod %s %s",
                    ks->path, (unsigned)m, fix, ks->path);
    if ((m & 0040) && !(ks->flags & SAEF_KS_GROUP_READ))
        return fail(ks, SAEF_KS_EPERM,
                    "store %s is readable by its group (mode %04o): chmod 600 %s, or allow "
                    "it with store_group_read = yes",
                    ks->path, (unsigned)m, ks->path);
    return SAEF_KS_OK;
}

/* Whoever can replace the store or its lock file can choose the keys (or
   stop every reader): refuse a store in a place others may write. */
static SAEF_KS_ERR check_place(const saef_ks *ks)
{
    char why[PATH_MAX + 128], *lock;
    struct stat st;
    int found;

    if (!saef_path_is_safe(ks->path, -1, why, sizeof(why)))
        return fail(ks, SAEF_KS_EPERM, "store %s: %s (saef refuses a store others can replace)",
                    ks->path, why);
    if ((lock = malloc(strlen(ks->path) + 6)) == NULL)
        return fail(ks, SAEF_KS_EIO, "out of memory");
    saef_lock_path(ks->path, lock, strlen(ks->path) + sizeof(SAEF_LOCK_SUFFIX));
    found = stat(lock, &st) == 0;
    free(lock);
    if (found && (st.st_mode & 0002))
        return fail(ks, SAEF_KS_EPERM,
                    "store %s: its lock file %s" SAEF_LOCK_SUFFIX " is writable by others: "
                    "chmod o-w %s" SAEF_LOCK_SUFFIX,
                    ks->path, ks->path, ks->path);
    /* Its owner could hold a byte lock on it and stop every reader. */
    if (found && st.st_uid != 0 && st.st_uid != geteuid())
        return fail(ks, SAEF_KS_EPERM,
                    "store %s: its lock file %s" SAEF_LOCK_SUFFIX
                    " belongs to another user (uid %u): remove "
                    "it (saef makes it again)",
                    ks->path, ks->path, (unsigned)st.st_uid);
    return SAEF_KS_OK;
}

static SAEF_KS_ERR stat_store(const saef_ks *ks, struct stat *st)
{
    if (stat(ks->path, st) == 0)
        return SAEF_KS_OK;
    if (errno == ENOENT)
        return fail(ks, SAEF_KS_ENOSTORE,
                    "store %s does not exist: create it with saef-key -s %s init", ks->path,
                    ks->path);
    return fail(ks, errno == EACCES ? SAEF_KS_EPERM : SAEF_KS_EIO, "store %s: %s", ks->path,
                strerror(errno));
}

static SAEF_KS_ERR map_size(const saef_ks *ks, size_t *size)
{
    const char *s = secure_getenv("SAEF_KS_MAP_SIZE");
    unsigned long long v;
    char *end;

    *size = MAP_SIZE;
    if (s == NULL)
        return SAEF_KS_OK;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v < MAP_SIZE_MIN || v > SIZE_MAX)
        return fail(ks, SAEF_KS_EINVAL,
                    "SAEF_KS_MAP_SIZE=%s is not a map size in bytes (%zu or more)", s,
                    MAP_SIZE_MIN);
    *size = (size_t)v;
    return SAEF_KS_OK;
}

/* mdb_env_open with our settings; returns an LMDB or errno code. */
static int lmdb_open(const saef_ks *ks, const char *file, unsigned eflags, size_t map,
                     MDB_env **env)
{
    mode_t lock_mode = ks->flags & SAEF_KS_GROUP_READ ? 0660 : 0600;
    int rc;

    if ((rc = mdb_env_create(env)) != 0)
        return rc;
    if ((rc = mdb_env_set_mapsize(*env, map)) != 0 ||
        (rc = mdb_env_set_maxreaders(*env, MAX_READERS)) != 0 ||
        (rc = mdb_env_set_maxdbs(*env, 1)) != 0 ||
        (rc = mdb_env_open(*env, file, MDB_NOSUBDIR | MDB_NOTLS | eflags, lock_mode)) != 0) {
        mdb_env_close(*env);
        *env = NULL;
    }
    return rc;
}

/*
 * A new store is built under a temporary name and linked into place, so
 * nobody ever opens a half-made one.
 */
static SAEF_KS_ERR create_store(const saef_ks *ks)
{
    size_t n = strlen(ks->path), map;
    char *tmp = malloc(n + 8), *lock = malloc(n + 13);
    MDB_val k = {sizeof(MARKER_KEY) - 1, MARKER_KEY}, v = {sizeof(MARKER_VAL) - 1, MARKER_VAL};
    MDB_env *env = NULL;
    MDB_txn *txn;
    MDB_dbi dbi;
    SAEF_KS_ERR err = SAEF_KS_OK;
    int fd, rc;

    if (tmp == NULL || lock == NULL) {
        err = fail(ks, SAEF_KS_EIO, "out of memory");
        goto out;
    }
    if ((err = map_size(ks, &map)) != SAEF_KS_OK)
        goto out;
    snprintf(tmp, n + 8, "%s.XXXXXX", ks->path);
    if ((fd = mkstemp(tmp)) < 0) {
        err = fail(ks, errno == EACCES ? SAEF_KS_EPERM : SAEF_KS_EIO,
                   "cannot create store %s: %s", ks->path, strerror(errno));
        goto out;
    }
    saef_lock_path(tmp, lock, n + 13);
    if ((ks->flags & SAEF_KS_GROUP_READ) && fchmod(fd, 0640) != 0)
        err = fail(ks, SAEF_KS_EIO, "cannot create store %s: chmod: %s", ks->path,
                   strerror(errno));
    close(fd);
    if (err == SAEF_KS_OK) {
        if ((rc = lmdb_open(ks, tmp, 0, map, &env)) == 0 &&
            (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0) {
            if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
                (rc = mdb_put(txn, dbi, &k, &v, 0)) != 0)
                mdb_txn_abort(txn);
            else
                rc = mdb_txn_commit(txn);
        }
        if (rc != 0)
            err = from_mdb(ks, rc, "create");
        mdb_env_close(env);
        unlink(lock);
    }
    /* Somebody else made it meanwhile: theirs is as good. */
    if (err == SAEF_KS_OK && link(tmp, ks->path) != 0 && errno != EEXIST)
        err = fail(ks, errno == EACCES ? SAEF_KS_EPERM : SAEF_KS_EIO,
                   "cannot create store %s: %s", ks->path, strerror(errno));
    unlink(tmp);
out:
    free(tmp);
    free(lock);
    return err;
}

/*
 * LMDB counts pages a write allocated and freed again without writing them:
 * after a commit the file may end before its last page number. The check
 * below cannot tell that from a truncated file, so writers extend the file
 * to it (posix_fallocate never shrinks, whatever another writer did since).
 */
static void cover_last_page(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat fs;
    int fd;

    if (mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &st) == 0 &&
        mdb_env_get_fd(env, &fd) == 0 && fstat(fd, &fs) == 0 &&
        (uint64_t)fs.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
        (void)posix_fallocate(fd, 0, (off_t)((info.me_last_pgno + 1) * st.ms_psize));
}

/* A truncated file would fault (SIGBUS) when a page past its end is read. */
static SAEF_KS_ERR check_size(const saef_ks *ks, MDB_env *env, const struct stat *fs)
{
    MDB_envinfo info;
    MDB_stat st;

    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0)
        return fail(ks, SAEF_KS_EIO, "store %s: cannot read its size", ks->path);
    if ((uint64_t)fs->st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
        return fail(ks, SAEF_KS_ECORRUPT,
                    "store %s is truncated (%lld bytes, needs %llu): restore it from a backup",
                    ks->path, (long long)fs->st_size,
                    (unsigned long long)(info.me_last_pgno + 1) * st.ms_psize);
    return SAEF_KS_OK;
}

/* 0 if the marker is there, MDB_NOTFOUND if not, or the read's error. */
static int guarded_marker(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    sigjmp_buf jb;
    MDB_val v;
    int rc;

    if (sigsetjmp(jb, 0) != 0)
        return READ_FAULT;
    fault_jump = &jb;
    rc = mdb_get(txn, dbi, k, &v);
    if (rc == 0 &&
        (v.mv_size != sizeof(MARKER_VAL) - 1 || memcmp(v.mv_data, MARKER_VAL, v.mv_size)))
        rc = MDB_NOTFOUND;
    fault_jump = NULL;
    return rc;
}

static SAEF_KS_ERR check_marker(const saef_ks *ks, MDB_env *env, MDB_dbi *dbi)
{
    MDB_val k = {sizeof(MARKER_KEY) - 1, MARKER_KEY};
    MDB_txn *txn;
    int rc;

    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
        return from_mdb(ks, rc, "open");
    if ((rc = mdb_dbi_open(txn, NULL, 0, dbi)) == 0)
        rc = guarded_marker(txn, *dbi, &k);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return fail(ks, SAEF_KS_ECORRUPT, "%s is an LMDB file but not a saef store", ks->path);
    return rc == 0 ? SAEF_KS_OK : from_mdb(ks, rc, "open");
}

/* Group readers write the lock file too; LMDB made it under the umask. */
static void share_lock_file(const saef_ks *ks)
{
    size_t n = strlen(ks->path) + 6;
    char *lock = malloc(n);
    struct stat st;

    if (lock == NULL)
        return;
    saef_lock_path(ks->path, lock, n);
    if (stat(lock, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 0060) != 0060)
        chmod(lock, (st.st_mode & 0777) | 0060);
    free(lock);
}

/*
 * LMDB frees the reader slots of processes that died (kill -9 of a worker)
 * only when asked. Until then they count against MAX_READERS and, if one died
 * inside a read, keep every page freed since from reuse, so the file grows.
 * 1 if any were freed.
 */
static int reap_dead_readers(struct ks_env *e)
{
    int dead = 0;

    return mdb_reader_check(e->env, &dead) == 0 && dead > 0;
}

/* The peer of an encoded record, without touching its key bytes; 0 if
   none or the record is malformed. */
static size_t rec_peer(const MDB_val *v, const unsigned char **peer)
{
    const unsigned char *b = v->mv_data;
    size_t key_len;

    if (v->mv_size < REC_HDR || b[0] != REC_VERSION)
        return 0;
    key_len = get_le(b + 2, 2);
    if (REC_HDR + key_len + b[24] > v->mv_size)
        return 0;
    *peer = b + REC_HDR + key_len;
    return b[24];
}

/* Index entries for every record: a store made before the index. */
static int index_fill(MDB_txn *txn, const struct ks_env *e)
{
    unsigned char first = SAEF_KS_KPSA;
    const unsigned char *peer;
    MDB_val k = {1, &first}, v, pk;
    MDB_cursor *cur;
    int rc;

    if ((rc = mdb_cursor_open(txn, e->dbi, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (((const unsigned char *)k.mv_data)[0] > SAEF_KS_TYPE_LAST)
            break;
        if ((pk.mv_size = rec_peer(&v, &peer)) == 0)
            continue;
        pk.mv_data = (void *)peer;
        if ((rc = mdb_put(txn, e->idx, &pk, &k, MDB_NODUPDATA)) != 0 && rc != MDB_KEYEXIST)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == MDB_KEYEXIST ? 0 : rc;
}

/* Opens INDEX_DB; a writable environment builds it when it is missing (the
   map may have to grow for it: nothing else uses the environment yet). */
static int index_attach(struct ks_env *e)
{
    MDB_txn *txn;
    MDB_envinfo info;
    int rc;

    if ((rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn)) != 0)
        return rc;
    if ((rc = guarded_dbi_open(txn, INDEX_DB, MDB_DUPSORT, &e->idx)) == 0) {
        if ((rc = mdb_txn_commit(txn)) == 0)
            e->has_idx = 1;
        return rc;
    }
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND || !e->writable)
        return rc == MDB_NOTFOUND ? 0 : rc;
    do {
        if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0)
            return rc;
        if ((rc = mdb_dbi_open(txn, INDEX_DB, MDB_DUPSORT | MDB_CREATE, &e->idx)) == 0 &&
            (rc = index_fill(txn, e)) == 0) {
            if ((rc = mdb_txn_commit(txn)) == 0)
                cover_last_page(e->env);
        } else {
            mdb_txn_abort(txn);
        }
    } while (rc == MDB_MAP_FULL && mdb_env_info(e->env, &info) == 0 &&
             info.me_mapsize <= SIZE_MAX / 2 &&
             mdb_env_set_mapsize(e->env, info.me_mapsize * 2) == 0);
    e->has_idx = rc == 0;
    return rc;
}

static void env_free(struct ks_env *e)
{
    for (int i = 0; i < POOL; i++)
        if (e->pool[i] != NULL)
            mdb_txn_abort(e->pool[i]);
    mdb_env_close(e->env);
    pthread_rwlock_destroy(&e->map_lock);
    free(e);
}

/* Attaches ks to the process's environment of its store, opening it if
   needed. Called with reg_lock held. */
static SAEF_KS_ERR env_attach(saef_ks *ks)
{
    struct ks_env *e;
    struct stat st;
    SAEF_KS_ERR err;
    size_t map;
    int rc, fd;

    if ((err = stat_store(ks, &st)) != SAEF_KS_OK || (err = check_mode(ks, &st)) != SAEF_KS_OK ||
        (err = check_place(ks)) != SAEF_KS_OK)
        return err;
    /* LMDB would silently make an empty file a new store. */
    if (st.st_size == 0)
        return fail(ks, SAEF_KS_ECORRUPT,
                    "store %s is empty, not a saef store: remove it, then saef-key -s %s init",
                    ks->path, ks->path);
    for (e = envs; e != NULL; e = e->next)
        if (e->dev == st.st_dev && e->ino == st.st_ino)
            break;
    if (e != NULL) {
        if (!e->writable && !(ks->flags & SAEF_KS_RDONLY))
            return fail(ks, SAEF_KS_EPERM, "store %s is not writable by this user", ks->path);
        e->refs++;
        ks->e = e;
        return SAEF_KS_OK;
    }
    if ((err = map_size(ks, &map)) != SAEF_KS_OK)
        return err;
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return fail(ks, SAEF_KS_EIO, "out of memory");
    /* Read-write when this user may: a later writable handle shares it. */
    e->writable = 1;
    rc = lmdb_open(ks, ks->path, 0, map, &e->env);
    if ((rc == EACCES || rc == EROFS) && (ks->flags & SAEF_KS_RDONLY)) {
        e->writable = 0;
        rc = lmdb_open(ks, ks->path, MDB_RDONLY, map, &e->env);
    }
    if (rc != 0) {
        free(e);
        return from_mdb(ks, rc, "open");
    }
    /* The file LMDB opened is the one to judge, whatever the path is now. */
    if (mdb_env_get_fd(e->env, &fd) != 0 || fstat(fd, &st) != 0)
        err = fail(ks, SAEF_KS_EIO, "store %s: %s", ks->path, strerror(errno));
    if (err == SAEF_KS_OK && (err = check_mode(ks, &st)) == SAEF_KS_OK &&
        (err = check_size(ks, e->env, &st)) == SAEF_KS_OK &&
        (err = check_marker(ks, e->env, &e->dbi)) == SAEF_KS_OK &&
        (rc = index_attach(e)) != 0)
        err = from_mdb(ks, rc, "open the peer index");
    if (err != SAEF_KS_OK) {
        mdb_env_close(e->env);
        free(e);
        return err;
    }
    reap_dead_readers(e);
    if (ks->flags & SAEF_KS_GROUP_READ)
        share_lock_file(ks);
    pthread_rwlock_init(&e->map_lock, NULL);
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->refs = 1;
    e->next = envs;
    envs = e;
    ks->e = e;
    return SAEF_KS_OK;
}

static void env_detach(saef_ks *ks)
{
    struct ks_env **p;

    if (ks->e == NULL || --ks->e->refs > 0)
        return;
    for (p = &envs; *p != ks->e; p = &(*p)->next)
        ;
    *p = ks->e->next;
    env_free(ks->e);
}

SAEF_KS_ERR saef_ks_open(const char *path, unsigned flags, saef_ks **out)
{
    saef_ks *ks;
    struct stat st;
    SAEF_KS_ERR err = SAEF_KS_OK;

    pthread_once(&atfork_once, install_atfork);
    pthread_once(&fault_once, install_fault_guard);
    if (out == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no place for the handle");
    *out = NULL;
    if (path == NULL || *path == '\0')
        return fail(NULL, SAEF_KS_EINVAL, "no store path given");
    /* Relative, it names another store in another working directory. */
    if (*path != '/')
        return fail(NULL, SAEF_KS_EINVAL, "store path %s is relative: give an absolute path", path);
    if (flags & ~(unsigned)(SAEF_KS_RDONLY | SAEF_KS_CREATE | SAEF_KS_GROUP_READ))
        return fail(NULL, SAEF_KS_EINVAL, "unknown open flags 0x%x", flags);
    if ((ks = calloc(1, sizeof(*ks))) == NULL || (ks->path = strdup(path)) == NULL) {
        free(ks);
        return fail(NULL, SAEF_KS_EIO, "out of memory");
    }
    ks->flags = flags;
    if ((flags & SAEF_KS_CREATE) && !(flags & SAEF_KS_RDONLY) && stat(path, &st) != 0 &&
        errno == ENOENT && (err = check_place(ks)) == SAEF_KS_OK)
        err = create_store(ks);
    if (err == SAEF_KS_OK) {
        pthread_mutex_lock(&reg_lock);
        err = env_attach(ks);
        atomic_store(&ks->gen, atomic_load(&fork_gen));
        pthread_mutex_unlock(&reg_lock);
    }
    if (err != SAEF_KS_OK) {
        last_err.ks = NULL;
        free(ks->path);
        free(ks);
        return err;
    }
    *out = ks;
    return SAEF_KS_OK;
}

static void jr_clear(saef_ks *ks)
{
    if (ks->jr != NULL)
        OPENSSL_cleanse(ks->jr, ks->jr_len);
    ks->jr_len = 0;
}

/*
 * The environment of ks in this process. After fork() the inherited one
 * belongs to the parent: LMDB forbids using it, and closing it (or ending
 * its transactions) would clear reader slots that carry a pid the parent or
 * our own new environment uses, and release this process's locks on the
 * lock file. So it is left as it is, and the store is opened afresh.
 */
static SAEF_KS_ERR use_env(saef_ks *ks)
{
    SAEF_KS_ERR err = SAEF_KS_OK;

    if (atomic_load_explicit(&ks->gen, memory_order_acquire) ==
        atomic_load_explicit(&fork_gen, memory_order_relaxed))
        return SAEF_KS_OK;
    pthread_mutex_lock(&reg_lock);
    if (atomic_load(&ks->gen) != atomic_load(&fork_gen)) {
        ks->e = NULL;
        ks->wtxn = NULL;
        ks->batch = BATCH_NONE;
        jr_clear(ks);
        if ((err = env_attach(ks)) == SAEF_KS_OK)
            atomic_store_explicit(&ks->gen, atomic_load(&fork_gen), memory_order_release);
    }
    pthread_mutex_unlock(&reg_lock);
    return err;
}

void saef_ks_close(saef_ks *ks)
{
    if (ks == NULL)
        return;
    saef_ks_write_abort(ks);
    pthread_mutex_lock(&reg_lock);
    if (atomic_load(&ks->gen) == atomic_load(&fork_gen))
        env_detach(ks);
    pthread_mutex_unlock(&reg_lock);
    free(ks->jr);
    free(ks->path);
    free(ks);
}

/* ---- the map: every transaction holds map_lock shared ------------------ */

static size_t mapped(struct ks_env *e)
{
    MDB_envinfo info;

    return mdb_env_info(e->env, &info) == 0 ? info.me_mapsize : 0;
}

/* With map_lock held exclusively. LMDB unmaps before it maps anew: once
   that fails, any transaction would read unmapped memory. */
static int remap(struct ks_env *e, size_t size)
{
    int rc = mdb_env_set_mapsize(e->env, size);

    if (rc != 0)
        e->unmapped = 1;
    return rc;
}

/* Another process grew the store past our map: take the size it recorded. */
static int adopt_map(struct ks_env *e)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = 0;

    pthread_rwlock_wrlock(&e->map_lock);
    if (mdb_env_info(e->env, &info) != 0 || mdb_env_stat(e->env, &st) != 0 ||
        ((size_t)info.me_last_pgno + 1) * st.ms_psize > info.me_mapsize)
        rc = remap(e, 0);
    pthread_rwlock_unlock(&e->map_lock);
    return rc;
}

/* A write found the map full at size `seen`: double it (once per fill). */
static int grow_map(struct ks_env *e, size_t seen)
{
    int rc = 0;
    void *probe;

    pthread_rwlock_wrlock(&e->map_lock);
    if (mapped(e) == seen) {
        /* LMDB unmaps before mapping anew, and a failed map leaves the
           environment unusable: make sure the address space is there. */
        probe = seen <= SIZE_MAX / 2 ? mmap(NULL, seen * 2, PROT_NONE,
                                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                                     : MAP_FAILED;
        if (probe == MAP_FAILED) {
            rc = MDB_MAP_FULL;
        } else {
            munmap(probe, seen * 2);
            rc = remap(e, seen * 2);
        }
    }
    pthread_rwlock_unlock(&e->map_lock);
    return rc;
}

static int txn_begin(struct ks_env *e, unsigned flags, MDB_txn **txn)
{
    int rc = MDB_MAP_RESIZED, adopted;

    for (int tries = 0; tries < 4 && (rc == MDB_MAP_RESIZED || rc == MDB_READERS_FULL); tries++) {
        pthread_rwlock_rdlock(&e->map_lock);
        if (e->unmapped)
            rc = ENOMEM;
        else if ((rc = mdb_txn_begin(e->env, NULL, flags, txn)) == 0)
            return 0;
        pthread_rwlock_unlock(&e->map_lock);
        if (rc == MDB_MAP_RESIZED && (adopted = adopt_map(e)) != 0)
            return adopted;
        if (rc == MDB_READERS_FULL && !reap_dead_readers(e))
            break;
    }
    return rc;
}

/* A read transaction: a pooled one renewed (sees the latest commit), or new. */
static int rd_begin(struct ks_env *e, MDB_txn **txn)
{
    MDB_txn *t = NULL;
    int rc;

    pthread_rwlock_rdlock(&e->map_lock);
    for (int i = 0; i < POOL && t == NULL && !e->unmapped; i++)
        if (atomic_load_explicit(&e->pool[i], memory_order_relaxed) != NULL)
            t = atomic_exchange_explicit(&e->pool[i], NULL, memory_order_acquire);
    if (t != NULL) {
        if ((rc = mdb_txn_renew(t)) == 0) {
            *txn = t;
            return 0;
        }
        mdb_txn_abort(t);
    }
    pthread_rwlock_unlock(&e->map_lock);
    return txn_begin(e, MDB_RDONLY, txn);
}

static void rd_end(struct ks_env *e, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    for (int i = 0; i < POOL && txn != NULL; i++) {
        MDB_txn *none = NULL;
        if (atomic_compare_exchange_strong_explicit(&e->pool[i], &none, txn,
                                                    memory_order_release, memory_order_relaxed))
            txn = NULL;
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&e->map_lock);
}

/* ---- lookups ----------------------------------------------------------- */

static SAEF_KS_ERR check_id(const saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len)
{
    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if (saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km, kc or creg)", (int)type);
    if (id == NULL || id_len == 0)
        return fail(ks, SAEF_KS_EINVAL, "empty identity");
    if (id_len > SAEF_KS_ID_MAX)
        return fail(ks, SAEF_KS_EINVAL, "identity is %zu bytes; the limit is %d", id_len,
                    SAEF_KS_ID_MAX);
    return SAEF_KS_OK;
}

static void make_key(SAEF_KS_TYPE type, const void *id, size_t id_len,
                     unsigned char buf[1 + SAEF_KS_ID_MAX], MDB_val *k)
{
    buf[0] = (unsigned char)type;
    memcpy(buf + 1, id, id_len);
    k->mv_size = id_len + 1;
    k->mv_data = buf;
}

SAEF_KS_ERR saef_ks_get(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len,
                        saef_ks_record *out)
{
    unsigned char kbuf[1 + SAEF_KS_ID_MAX];
    char text[ID_TEXT_MAX];
    MDB_val k;
    MDB_txn *txn;
    SAEF_KS_ERR err;
    int rc, ok = 0;

    if ((err = check_id(ks, type, id, id_len)) != SAEF_KS_OK)
        return err;
    if (out == NULL)
        return fail(ks, SAEF_KS_EINVAL, "no record to fill");
    if ((err = use_env(ks)) != SAEF_KS_OK) {
        saef_ks_record_wipe(out);
        return err;
    }
    make_key(type, id, id_len, kbuf, &k);
    if ((rc = rd_begin(ks->e, &txn)) == 0) {
        rc = guarded_get(txn, ks->e->dbi, &k, out, &ok);
        rd_end(ks->e, txn);
    }
    if (rc == 0 && ok)
        return SAEF_KS_OK;
    /* No stale fields for a caller that fills the record in itself. */
    saef_ks_record_wipe(out);
    if (rc == MDB_NOTFOUND)
        return fail(ks, SAEF_KS_ENOTFOUND, "no %s key %s", saef_ks_type_name(type),
                    saef_escape(id, id_len, text, sizeof(text)));
    if (rc != 0)
        return from_mdb(ks, rc, "read");
    return fail(ks, SAEF_KS_ECORRUPT, "store %s: the %s record %s is malformed", ks->path,
                saef_ks_type_name(type), saef_escape(id, id_len, text, sizeof(text)));
}

/* ---- writes ------------------------------------------------------------ */

static size_t op_encode(int op, SAEF_KS_TYPE type, const void *id, size_t id_len,
                        const unsigned char *val, size_t val_len, unsigned char *buf)
{
    buf[0] = (unsigned char)op;
    buf[1] = (unsigned char)(id_len + 1);
    put_le(buf + 2, val_len, 2);
    buf[OP_HDR] = (unsigned char)type;
    memcpy(buf + OP_HDR + 1, id, id_len);
    if (val_len > 0) /* a delete has none */
        memcpy(buf + OP_HDR + 1 + id_len, val, val_len);
    return OP_HDR + 1 + id_len + val_len;
}

static size_t op_size(const unsigned char *op)
{
    return OP_HDR + op[1] + get_le(op + 2, 2);
}

/* The record, then its peer index entry (moved when the peer changed). */
static int op_apply(MDB_txn *txn, const struct ks_env *e, const unsigned char *op)
{
    MDB_val k = {op[1], (void *)(op + OP_HDR)};
    MDB_val v = {get_le(op + 2, 2), (void *)(op + OP_HDR + op[1])}, old, pk;
    unsigned char old_peer[SAEF_KS_ENTITY_MAX];
    const unsigned char *peer;
    size_t old_len = 0, new_len = 0;
    int rc;

    if (e->has_idx && (rc = mdb_get(txn, e->dbi, &k, &old)) == 0 &&
        (old_len = rec_peer(&old, &peer)) > 0)
        memcpy(old_peer, peer, old_len); /* the map may move under a write */
    if (op[0] == OP_DEL)
        rc = mdb_del(txn, e->dbi, &k, NULL);
    else
        rc = mdb_put(txn, e->dbi, &k, &v, op[0] == OP_ADD ? MDB_NOOVERWRITE : 0);
    if (rc != 0 || !e->has_idx)
        return rc;
    if (op[0] != OP_DEL)
        new_len = rec_peer(&v, &peer);
    if (new_len == old_len && (old_len == 0 || memcmp(old_peer, peer, old_len) == 0))
        return 0;
    if (old_len > 0) {
        pk = (MDB_val){old_len, old_peer};
        if ((rc = mdb_del(txn, e->idx, &pk, &k)) != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    if (new_len > 0) {
        pk = (MDB_val){new_len, (void *)peer};
        if ((rc = mdb_put(txn, e->idx, &pk, &k, MDB_NODUPDATA)) != 0 && rc != MDB_KEYEXIST)
            return rc;
    }
    return 0;
}

static SAEF_KS_ERR full(const saef_ks *ks, size_t seen)
{
    return fail(ks, SAEF_KS_EIO, "store %s is full: its map cannot grow past %zu MiB", ks->path,
                seen >> 20);
}

/* One operation in a transaction of its own. */
static SAEF_KS_ERR write_one(saef_ks *ks, const unsigned char *op)
{
    struct ks_env *e = ks->e;
    MDB_txn *txn;
    size_t seen;
    int rc;

    for (;;) {
        if ((rc = txn_begin(e, 0, &txn)) != 0)
            return from_mdb(ks, rc, "begin a write");
        if ((rc = op_apply(txn, e, op)) != 0)
            mdb_txn_abort(txn);
        else if ((rc = mdb_txn_commit(txn)) == 0)
            cover_last_page(e->env);
        seen = mapped(e);
        pthread_rwlock_unlock(&e->map_lock);
        if (rc != MDB_MAP_FULL)
            break;
        if (!reap_dead_readers(e) && grow_map(e, seen) != 0)
            return full(ks, seen);
    }
    return rc == 0 ? SAEF_KS_OK : from_mdb(ks, rc, "write");
}

/* The batch cannot go on: drop it; only write_abort clears this state. */
static void batch_fail(saef_ks *ks)
{
    if (ks->wtxn != NULL) {
        mdb_txn_abort(ks->wtxn);
        pthread_rwlock_unlock(&ks->e->map_lock);
        ks->wtxn = NULL;
    }
    ks->batch = BATCH_FAILED;
    jr_clear(ks);
}

/*
 * The batch's transaction ended on MDB_MAP_FULL (the lock is still held):
 * grow the map and replay the journal in a new transaction.
 */
static SAEF_KS_ERR batch_regrow(saef_ks *ks)
{
    struct ks_env *e = ks->e;
    size_t seen;
    int rc;

    do {
        seen = mapped(e);
        ks->wtxn = NULL;
        pthread_rwlock_unlock(&e->map_lock);
        if (!reap_dead_readers(e) && grow_map(e, seen) != 0) {
            batch_fail(ks);
            return full(ks, seen);
        }
        if ((rc = txn_begin(e, 0, &ks->wtxn)) != 0) {
            ks->wtxn = NULL;
            batch_fail(ks);
            return from_mdb(ks, rc, "begin a write");
        }
        rc = 0;
        for (size_t off = 0; off < ks->jr_len && rc == 0; off += op_size(ks->jr + off))
            rc = op_apply(ks->wtxn, e, ks->jr + off);
        if (rc == MDB_MAP_FULL)
            mdb_txn_abort(ks->wtxn);
    } while (rc == MDB_MAP_FULL);
    if (rc == 0)
        return SAEF_KS_OK;
    batch_fail(ks);
    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND)
        return fail(ks, SAEF_KS_EIO,
                    "store %s changed while the batch grew it: nothing of the batch was "
                    "written; run it again",
                    ks->path);
    return from_mdb(ks, rc, "write");
}

static int jr_append(saef_ks *ks, const unsigned char *op, size_t len)
{
    unsigned char *grown;
    size_t cap = ks->jr_cap ? ks->jr_cap : 1 << 16;

    while (cap - ks->jr_len < len)
        cap *= 2;
    if (cap != ks->jr_cap) {
        /* Not realloc: the old block holds key bytes and must be wiped. */
        if ((grown = malloc(cap)) == NULL)
            return 0;
        if (ks->jr != NULL) {
            memcpy(grown, ks->jr, ks->jr_len);
            OPENSSL_cleanse(ks->jr, ks->jr_len);
            free(ks->jr);
        }
        ks->jr = grown;
        ks->jr_cap = cap;
    }
    memcpy(ks->jr + ks->jr_len, op, len);
    ks->jr_len += len;
    return 1;
}

static SAEF_KS_ERR batch_one(saef_ks *ks, const unsigned char *op)
{
    size_t len = op_size(op);
    int rc;

    if (!jr_append(ks, op, len))
        return fail(ks, SAEF_KS_EIO, "out of memory");
    rc = op_apply(ks->wtxn, ks->e, op);
    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND) {
        /* Changed nothing, and the transaction goes on. */
        ks->jr_len -= len;
        OPENSSL_cleanse(ks->jr + ks->jr_len, len);
        return from_mdb(ks, rc, "write");
    }
    if (rc == MDB_MAP_FULL) {
        mdb_txn_abort(ks->wtxn);
        return batch_regrow(ks);
    }
    if (rc != 0) {
        batch_fail(ks);
        return from_mdb(ks, rc, "write");
    }
    return SAEF_KS_OK;
}

static SAEF_KS_ERR batch_failed(const saef_ks *ks)
{
    return fail(ks, SAEF_KS_EIO, "store %s: the open batch failed and wrote nothing: abort it",
                ks->path);
}

static SAEF_KS_ERR write_op(saef_ks *ks, const unsigned char *op)
{
    if (ks->batch == BATCH_FAILED)
        return batch_failed(ks);
    return ks->batch == BATCH_OPEN ? batch_one(ks, op) : write_one(ks, op);
}

static SAEF_KS_ERR writable(saef_ks *ks)
{
    SAEF_KS_ERR err;

    if (ks->flags & SAEF_KS_RDONLY)
        return fail(ks, SAEF_KS_EINVAL, "store %s is open read-only", ks->path);
    if ((err = use_env(ks)) != SAEF_KS_OK)
        return err;
    if (!ks->e->writable)
        return fail(ks, SAEF_KS_EPERM, "store %s is not writable by this user", ks->path);
    return SAEF_KS_OK;
}

SAEF_KS_ERR saef_ks_put(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len,
                        const saef_ks_record *rec, unsigned flags)
{
    unsigned char val[REC_MAX], op[OP_MAX];
    char text[ID_TEXT_MAX];
    size_t peer_len, self_len, meta_len, val_len;
    saef_ks_record r;
    SAEF_KS_ERR err;

    if ((err = check_id(ks, type, id, id_len)) != SAEF_KS_OK)
        return err;
    if (rec == NULL || rec->key_len == 0 || rec->key_len > SAEF_KS_KEY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "key is %zu bytes; it must be 1 to %d",
                    rec != NULL ? rec->key_len : 0, SAEF_KS_KEY_MAX);
    if ((peer_len = strnlen(rec->peer, sizeof(rec->peer))) > SAEF_KS_ENTITY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "peer entity ID is longer than %d bytes",
                    SAEF_KS_ENTITY_MAX);
    if ((self_len = strnlen(rec->self, sizeof(rec->self))) > SAEF_KS_ENTITY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "self entity ID is longer than %d bytes",
                    SAEF_KS_ENTITY_MAX);
    if ((meta_len = strnlen(rec->meta, sizeof(rec->meta))) > SAEF_KS_META_MAX)
        return fail(ks, SAEF_KS_EINVAL, "metadata is longer than %d bytes", SAEF_KS_META_MAX);
    if (rec->not_after < 0)
        return fail(ks, SAEF_KS_EINVAL, "expiry time %lld is before 1970",
                    (long long)rec->not_after);
    if ((err = writable(ks)) != SAEF_KS_OK)
        return err;
    r = *rec;
    if (r.created == 0)
        r.created = (int64_t)time(NULL);
    val_len = saef_ks_rec_encode(&r, peer_len, self_len, meta_len, val);
    op_encode(flags & SAEF_KS_REPLACE ? OP_PUT : OP_ADD, type, id, id_len, val, val_len, op);
    err = write_op(ks, op);
    OPENSSL_cleanse(op, sizeof(op));
    OPENSSL_cleanse(val, sizeof(val));
    saef_ks_record_wipe(&r);
    if (err == SAEF_KS_EEXISTS)
        return fail(ks, err, "%s key %s already exists (--replace overwrites it)",
                    saef_ks_type_name(type), saef_escape(id, id_len, text, sizeof(text)));
    return err;
}

SAEF_KS_ERR saef_ks_del(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len)
{
    unsigned char op[OP_HDR + 1 + SAEF_KS_ID_MAX];
    char text[ID_TEXT_MAX];
    SAEF_KS_ERR err;

    if ((err = check_id(ks, type, id, id_len)) != SAEF_KS_OK || (err = writable(ks)) != SAEF_KS_OK)
        return err;
    op_encode(OP_DEL, type, id, id_len, NULL, 0, op);
    err = write_op(ks, op);
    if (err == SAEF_KS_ENOTFOUND)
        return fail(ks, err, "no %s key %s", saef_ks_type_name(type),
                    saef_escape(id, id_len, text, sizeof(text)));
    return err;
}

SAEF_KS_ERR saef_ks_write_begin(saef_ks *ks)
{
    SAEF_KS_ERR err;
    int rc;

    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if ((err = writable(ks)) != SAEF_KS_OK)
        return err;
    if (ks->batch != BATCH_NONE)
        return fail(ks, SAEF_KS_EINVAL, "a batch is already open on store %s", ks->path);
    if ((rc = txn_begin(ks->e, 0, &ks->wtxn)) != 0) {
        ks->wtxn = NULL;
        return from_mdb(ks, rc, "begin a write");
    }
    ks->batch = BATCH_OPEN;
    ks->jr_len = 0;
    return SAEF_KS_OK;
}

SAEF_KS_ERR saef_ks_write_commit(saef_ks *ks)
{
    SAEF_KS_ERR err;
    int rc;

    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if ((err = use_env(ks)) != SAEF_KS_OK)
        return err;
    if (ks->batch == BATCH_FAILED)
        return batch_failed(ks);
    if (ks->batch != BATCH_OPEN)
        return fail(ks, SAEF_KS_EINVAL, "no batch is open on store %s", ks->path);
    /* Commit can also need pages (the free list), so it may grow and replay. */
    while ((rc = mdb_txn_commit(ks->wtxn)) == MDB_MAP_FULL)
        if ((err = batch_regrow(ks)) != SAEF_KS_OK)
            return err;
    if (rc == 0)
        cover_last_page(ks->e->env);
    ks->wtxn = NULL;
    pthread_rwlock_unlock(&ks->e->map_lock);
    ks->batch = BATCH_NONE;
    jr_clear(ks);
    return rc == 0 ? SAEF_KS_OK : from_mdb(ks, rc, "commit");
}

void saef_ks_write_abort(saef_ks *ks)
{
    if (ks == NULL)
        return;
    /* A batch inherited over fork() is the parent's: forget it. */
    if (ks->wtxn != NULL && atomic_load(&ks->gen) == atomic_load(&fork_gen)) {
        mdb_txn_abort(ks->wtxn);
        pthread_rwlock_unlock(&ks->e->map_lock);
        ks->wtxn = NULL;
    }
    ks->batch = BATCH_NONE;
    jr_clear(ks);
}

/* ---- walks ------------------------------------------------------------- */

/* Walks records of `type` (0 = all); fn NULL just counts. */
static SAEF_KS_ERR walk(saef_ks *ks, SAEF_KS_TYPE type, saef_ks_iter_fn fn, void *arg,
                        size_t *count)
{
    unsigned char first = type != 0 ? (unsigned char)type : SAEF_KS_KPSA;
    unsigned char kb[1 + SAEF_KS_ID_MAX];
    char id[SAEF_KS_ID_MAX + 1], text[ID_TEXT_MAX];
    MDB_val k = {1, &first};
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_stat st;
    saef_ks_record r;
    SAEF_KS_ERR err = SAEF_KS_OK;
    size_t klen = 0;
    int rc, ok = 0;

    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if (type != 0 && saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km, kc or creg)", (int)type);
    if ((err = use_env(ks)) != SAEF_KS_OK)
        return err;
    if ((rc = rd_begin(ks->e, &txn)) != 0)
        return from_mdb(ks, rc, "read");
    *count = 0;
    /* Every record but the marker and the index, without a walk. */
    if (fn == NULL && type == 0 && (rc = mdb_stat(txn, ks->e->dbi, &st)) == 0) {
        MDB_val name = {sizeof(INDEX_DB) - 1, INDEX_DB};
        *count = st.ms_entries > 0 ? st.ms_entries - 1 : 0;
        if (*count > 0 && (rc = guarded_get(txn, ks->e->dbi, &name, NULL, &ok)) == 0)
            (*count)--;
        rd_end(ks->e, txn);
        return rc == READ_FAULT ? from_mdb(ks, rc, "count") : SAEF_KS_OK;
    }
    if ((rc = mdb_cursor_open(txn, ks->e->dbi, &cur)) != 0) {
        rd_end(ks->e, txn);
        return from_mdb(ks, rc, "read");
    }
    for (rc = guarded_step(cur, MDB_SET_RANGE, &k, 0, kb, sizeof(kb), &klen, fn ? &r : NULL, &ok);
         rc == 0;
         rc = guarded_step(cur, MDB_NEXT, &k, 0, kb, sizeof(kb), &klen, fn ? &r : NULL, &ok)) {
        size_t id_len = klen - 1;
        if (klen == sizeof(INDEX_DB) - 1 && memcmp(kb, INDEX_DB, klen) == 0)
            break;
        if (klen < 2 || klen > 1 + SAEF_KS_ID_MAX || kb[0] == 0 || kb[0] > SAEF_KS_TYPE_LAST) {
            err = fail(ks, SAEF_KS_ECORRUPT, "store %s holds a malformed key: restore it from "
                       "a backup", ks->path);
            break;
        }
        if (type != 0 && kb[0] != type)
            break;
        (*count)++;
        if (fn == NULL)
            continue;
        if (!ok) {
            err = fail(ks, SAEF_KS_ECORRUPT, "store %s: the %s record %s is malformed", ks->path,
                       saef_ks_type_name(kb[0]), saef_escape(kb + 1, id_len, text, sizeof(text)));
            break;
        }
        memcpy(id, kb + 1, id_len);
        id[id_len] = '\0';
        int stop = fn((SAEF_KS_TYPE)kb[0], id, id_len, &r, arg);
        saef_ks_record_wipe(&r);
        if (stop)
            break;
    }
    saef_ks_record_wipe(&r); /* decoded for a record of another type */
    if (err == SAEF_KS_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = from_mdb(ks, rc, "read");
    mdb_cursor_close(cur);
    rd_end(ks->e, txn);
    return err;
}

SAEF_KS_ERR saef_ks_iter(saef_ks *ks, SAEF_KS_TYPE type, saef_ks_iter_fn fn, void *arg)
{
    size_t n;

    if (fn == NULL)
        return fail(ks, SAEF_KS_EINVAL, "no callback");
    return walk(ks, type, fn, arg, &n);
}

typedef struct {
    const char *peer;
    SAEF_KS_TYPE type;
    saef_ks_iter_fn fn;
    void *arg;
} peer_filter;

static int peer_only(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                     void *arg)
{
    peer_filter *f = arg;

    if ((f->type != 0 && type != f->type) || strcmp(rec->peer, f->peer) != 0)
        return 0;
    return f->fn(type, id, id_len, rec, f->arg);
}

SAEF_KS_ERR saef_ks_iter_peer(saef_ks *ks, SAEF_KS_TYPE type, const char *peer,
                              saef_ks_iter_fn fn, void *arg)
{
    unsigned char kb[1 + SAEF_KS_ID_MAX];
    char id[SAEF_KS_ID_MAX + 1], text[ID_TEXT_MAX];
    MDB_val pk, k;
    MDB_cursor *cur;
    MDB_txn *txn;
    saef_ks_record r;
    SAEF_KS_ERR err = SAEF_KS_OK;
    size_t klen = 0;
    int rc, stop = 0, ok;

    if (fn == NULL || peer == NULL || *peer == '\0' || strlen(peer) > SAEF_KS_ENTITY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "no callback, or no peer of 1 to %d bytes",
                    SAEF_KS_ENTITY_MAX);
    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if (type != 0 && saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km, kc or creg)", (int)type);
    if ((err = use_env(ks)) != SAEF_KS_OK)
        return err;
    /* A store no writer of this version has opened yet: walk it. */
    if (!ks->e->has_idx) {
        peer_filter f = {peer, type, fn, arg};
        return saef_ks_iter(ks, type, peer_only, &f);
    }
    if ((rc = rd_begin(ks->e, &txn)) != 0)
        return from_mdb(ks, rc, "read");
    if ((rc = mdb_cursor_open(txn, ks->e->idx, &cur)) != 0) {
        rd_end(ks->e, txn);
        return from_mdb(ks, rc, "read");
    }
    pk = (MDB_val){strlen(peer), (void *)peer};
    for (rc = guarded_step(cur, MDB_SET, &pk, 1, kb, sizeof(kb), &klen, NULL, &ok); rc == 0;
         rc = guarded_step(cur, MDB_NEXT_DUP, &pk, 1, kb, sizeof(kb), &klen, NULL, &ok)) {
        size_t id_len = klen - 1;
        if (klen < 2 || klen > 1 + SAEF_KS_ID_MAX || kb[0] == 0 || kb[0] > SAEF_KS_TYPE_LAST ||
            (type != 0 && kb[0] != type))
            continue;
        /* An entry without its record: the index is kept in the same
           transaction as the records, so only a foreign writer leaves one. */
        k = (MDB_val){klen, kb};
        if ((rc = guarded_get(txn, ks->e->dbi, &k, &r, &ok)) == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            break;
        if (!ok) {
            err = fail(ks, SAEF_KS_ECORRUPT, "store %s: the %s record %s is malformed", ks->path,
                       saef_ks_type_name(kb[0]), saef_escape(kb + 1, id_len, text, sizeof(text)));
            break;
        }
        memcpy(id, kb + 1, id_len);
        id[id_len] = '\0';
        stop = fn((SAEF_KS_TYPE)kb[0], id, id_len, &r, arg);
        saef_ks_record_wipe(&r);
        if (stop)
            break;
    }
    if (err == SAEF_KS_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = from_mdb(ks, rc, "read");
    mdb_cursor_close(cur);
    rd_end(ks->e, txn);
    return err;
}

SAEF_KS_ERR saef_ks_count(saef_ks *ks, SAEF_KS_TYPE type, size_t *count)
{
    if (count == NULL)
        return fail(ks, SAEF_KS_EINVAL, "no place for the count");
    return walk(ks, type, NULL, NULL, count);
}

/* ---- purge ------------------------------------------------------------- */

/* In txn: deletes the expired records among at most `visit` of `type` from
   identity `from` on, counted in *n; `next` gets where the walk stopped. */
static int purge_txn(MDB_txn *txn, const struct ks_env *e, SAEF_KS_TYPE type, int64_t now,
                     size_t visit, const char *from, unsigned char *gone, size_t *n, char *next)
{
    unsigned char start[1 + SAEF_KS_ID_MAX], op[OP_HDR + 1 + SAEF_KS_ID_MAX];
    size_t from_len = strlen(from), visited = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    saef_ks_record r;
    int rc;

    *n = 0;
    next[0] = '\0';
    make_key(type, from, from_len, start, &k);
    if ((rc = mdb_cursor_open(txn, e->dbi, &cur)) != 0)
        return rc;
    /* Deletes wait until the cursor is closed: the walk never sees its own. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && visited < visit;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kb = k.mv_data;
        if (k.mv_size < 2 || k.mv_size > 1 + SAEF_KS_ID_MAX || kb[0] != type)
            break;
        visited++;
        if (!saef_ks_rec_decode(v.mv_data, v.mv_size, &r))
            continue;
        if (r.not_after != 0 && r.not_after <= now) {
            unsigned char *g = gone + *n * (1 + SAEF_KS_ID_MAX);
            g[0] = (unsigned char)(k.mv_size - 1);
            memcpy(g + 1, kb + 1, k.mv_size - 1);
            (*n)++;
        }
        saef_ks_record_wipe(&r);
    }
    if (rc == 0 && visited == visit && k.mv_size >= 2 && k.mv_size <= 1 + SAEF_KS_ID_MAX &&
        ((const unsigned char *)k.mv_data)[0] == type) {
        memcpy(next, (const unsigned char *)k.mv_data + 1, k.mv_size - 1);
        next[k.mv_size - 1] = '\0';
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    rc = 0;
    for (size_t i = 0; i < *n && rc == 0; i++) {
        const unsigned char *g = gone + i * (1 + SAEF_KS_ID_MAX);
        op_encode(OP_DEL, type, g + 1, g[0], NULL, 0, op);
        rc = op_apply(txn, e, op);
    }
    return rc;
}

SAEF_KS_ERR saef_ks_purge(saef_ks *ks, SAEF_KS_TYPE type, int64_t now, size_t visit, char *from,
                          size_t *removed)
{
    char next[SAEF_KS_ID_MAX + 1];
    unsigned char *gone;
    struct ks_env *e;
    MDB_txn *txn;
    SAEF_KS_ERR err;
    size_t n = 0, seen;
    int rc;

    if (removed != NULL)
        *removed = 0;
    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if (saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km, kc or creg)", (int)type);
    if (visit == 0 || visit > SAEF_KS_PURGE_MAX)
        return fail(ks, SAEF_KS_EINVAL, "a purge visits 1 to %d records, not %zu",
                    SAEF_KS_PURGE_MAX, visit);
    if (from != NULL && strnlen(from, SAEF_KS_ID_MAX + 1) > SAEF_KS_ID_MAX)
        return fail(ks, SAEF_KS_EINVAL, "the identity to purge from is longer than %d bytes",
                    SAEF_KS_ID_MAX);
    if ((err = writable(ks)) != SAEF_KS_OK)
        return err;
    if (ks->batch != BATCH_NONE)
        return fail(ks, SAEF_KS_EINVAL, "a batch is open on store %s: end it before a purge",
                    ks->path);
    if ((gone = malloc(visit * (1 + SAEF_KS_ID_MAX))) == NULL)
        return fail(ks, SAEF_KS_EIO, "out of memory");
    e = ks->e;
    for (;;) {
        if ((rc = txn_begin(e, 0, &txn)) != 0) {
            free(gone);
            return from_mdb(ks, rc, "begin a write");
        }
        rc = purge_txn(txn, e, type, now, visit, from != NULL ? from : "", gone, &n, next);
        /* Nothing to delete: no commit, so no disk write. */
        if (rc != 0 || n == 0)
            mdb_txn_abort(txn);
        else if ((rc = mdb_txn_commit(txn)) == 0)
            cover_last_page(e->env);
        seen = mapped(e);
        pthread_rwlock_unlock(&e->map_lock);
        if (rc != MDB_MAP_FULL)
            break;
        if (!reap_dead_readers(e) && grow_map(e, seen) != 0) {
            free(gone);
            return full(ks, seen);
        }
    }
    free(gone);
    if (rc != 0)
        return from_mdb(ks, rc, "purge");
    if (from != NULL)
        memcpy(from, next, strlen(next) + 1);
    if (removed != NULL)
        *removed = n;
    return SAEF_KS_OK;
}
