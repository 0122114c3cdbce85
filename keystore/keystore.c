/* The saef key store on LMDB. */
#include "saef_keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Layout: one unnamed LMDB database. Key = 1 type byte + identity bytes;
 * type 0 holds store metadata (the marker below). Value = a versioned record,
 * little-endian, see rec_encode().
 */
#define MARKER_KEY "\0saef-store"
#define MARKER_VAL "saef keystore v1"
#define REC_VERSION 1
#define REC_HDR 28
#define REC_MAX (REC_HDR + SAEF_KS_KEY_MAX + 2 * SAEF_KS_ENTITY_MAX + SAEF_KS_META_MAX)
/* Virtual size only: the file grows as records are written. */
#define MAP_SIZE ((size_t)16 << 30)

struct saef_ks {
    char *path;
    unsigned flags;
    unsigned gen; /* fork generation the env belongs to */
    struct shared_env *sh; /* the process's environment for this file */
    MDB_env *env;          /* sh->env, and sh->dbi */
    MDB_dbi dbi;
    MDB_txn *inherited_txn; /* the parent's read txn after fork: kept, never aborted */
    pthread_mutex_t rd_lock; /* guards rd_txn, the reusable read transaction */
    MDB_txn *rd_txn;
    MDB_txn *wtxn; /* open batch, or NULL */
    char err[512];
};

/*
 * LMDB allows one environment per file per process: closing a second one
 * drops the process's locks and reader slots under the first. Handles on
 * the same file (by device and inode) share one, opened read-write whenever
 * the process may write the file; SAEF_KS_RDONLY is enforced per handle.
 */
typedef struct shared_env {
    struct shared_env *next;
    dev_t dev;
    ino_t ino;
    unsigned gen; /* fork generation; older ones belong to the parent */
    unsigned refs;
    int rdonly;
    MDB_env *env;
    MDB_dbi dbi;
} shared_env;

static _Thread_local char open_err[512];
static unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static shared_env *envs; /* guarded by envs_lock */
static pthread_mutex_t envs_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_fork_child(void)
{
    fork_gen++;
    /* Another thread may have held it at fork(); the parent's envs stay
       listed (reachable) but are never used or closed here. */
    pthread_mutex_init(&envs_lock, NULL);
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static SAEF_KS_ERR fail(saef_ks *ks, SAEF_KS_ERR err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static SAEF_KS_ERR fail(saef_ks *ks, SAEF_KS_ERR err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ks != NULL ? ks->err : open_err, sizeof(open_err), fmt, ap);
    va_end(ap);
    return err;
}

const char *saef_ks_last_error(const saef_ks *ks)
{
    return ks != NULL ? ks->err : open_err;
}

static SAEF_KS_ERR from_mdb(saef_ks *ks, int rc, const char *what)
{
    switch (rc) {
    case MDB_NOTFOUND: return SAEF_KS_ENOTFOUND;
    case MDB_KEYEXIST: return SAEF_KS_EEXISTS;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
        return fail(ks, SAEF_KS_ECORRUPT, "store %s is corrupt or not a saef store (%s: %s)",
                    ks->path, what, mdb_strerror(rc));
    case MDB_MAP_FULL:
        return fail(ks, SAEF_KS_EIO, "store %s is full (%zu GiB): %s", ks->path,
                    MAP_SIZE >> 30, what);
    case EACCES:
    case EPERM:
        return fail(ks, SAEF_KS_EPERM, "store %s: %s: permission denied", ks->path, what);
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

/* version, reserved, key_len(2), created(8), not_after(8), suid(4),
   peer_len, self_len, meta_len(2), then key, peer, self, meta. */
static size_t rec_encode(const saef_ks_record *r, size_t peer_len, size_t self_len,
                         unsigned char *buf)
{
    size_t meta_len = strnlen(r->meta, sizeof(r->meta));

    buf[0] = REC_VERSION;
    buf[1] = 0;
    put_le(buf + 2, r->key_len, 2);
    put_le(buf + 4, (uint64_t)r->created, 8);
    put_le(buf + 12, (uint64_t)r->not_after, 8);
    put_le(buf + 20, (uint32_t)r->suid, 4);
    buf[24] = (unsigned char)peer_len;
    buf[25] = (unsigned char)self_len;
    put_le(buf + 26, meta_len, 2);
    memcpy(buf + REC_HDR, r->key, r->key_len);
    memcpy(buf + REC_HDR + r->key_len, r->peer, peer_len);
    memcpy(buf + REC_HDR + r->key_len + peer_len, r->self, self_len);
    memcpy(buf + REC_HDR + r->key_len + peer_len + self_len, r->meta, meta_len);
    return REC_HDR + r->key_len + peer_len + self_len + meta_len;
}

static int rec_decode(const MDB_val *v, saef_ks_record *r)
{
    const unsigned char *b = v->mv_data;
    size_t key_len, peer_len, self_len, meta_len;

    if (v->mv_size < REC_HDR || b[0] != REC_VERSION)
        return 0;
    key_len = get_le(b + 2, 2);
    peer_len = b[24];
    self_len = b[25];
    meta_len = get_le(b + 26, 2);
    if (key_len == 0 || key_len > SAEF_KS_KEY_MAX || meta_len > SAEF_KS_META_MAX ||
        v->mv_size != REC_HDR + key_len + peer_len + self_len + meta_len)
        return 0;
    r->key_len = key_len;
    r->created = (int64_t)get_le(b + 4, 8);
    r->not_after = (int64_t)get_le(b + 12, 8);
    r->suid = (int32_t)get_le(b + 20, 4);
    memcpy(r->key, b + REC_HDR, key_len);
    memcpy(r->peer, b + REC_HDR + key_len, peer_len);
    r->peer[peer_len] = '\0';
    memcpy(r->self, b + REC_HDR + key_len + peer_len, self_len);
    r->self[self_len] = '\0';
    memcpy(r->meta, b + REC_HDR + key_len + peer_len + self_len, meta_len);
    r->meta[meta_len] = '\0';
    return 1;
}

void saef_ks_record_wipe(saef_ks_record *rec)
{
    if (rec != NULL)
        OPENSSL_cleanse(rec, sizeof(*rec));
}

static SAEF_KS_ERR check_mode(saef_ks *ks, const struct stat *st)
{
    mode_t m = st->st_mode & 0777;
    const char *fix = ks->flags & SAEF_KS_GROUP_READ ? "640" : "600";

    if (!S_ISREG(st->st_mode))
        return fail(ks, SAEF_KS_ECORRUPT, "store %s is not a regular file", ks->path);
    if (m & 0022)
        return fail(ks, SAEF_KS_EPERM,
                    "store %s is writable by %s (mode %04o): chmod %s %s", ks->path,
                    m & 0002 ? "others" : "its group", (unsigned)m, fix, ks->path);
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

/* A truncated file would fault (SIGBUS) when a page past its end is read. */
static SAEF_KS_ERR check_size(saef_ks *ks)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat fs;

    if (mdb_env_info(ks->env, &info) != 0 || mdb_env_stat(ks->env, &st) != 0 ||
        stat(ks->path, &fs) != 0)
        return fail(ks, SAEF_KS_EIO, "store %s: cannot read its size", ks->path);
    if ((uint64_t)fs.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
        return fail(ks, SAEF_KS_ECORRUPT,
                    "store %s is truncated (%lld bytes, needs %llu): restore it from a backup",
                    ks->path, (long long)fs.st_size,
                    (unsigned long long)(info.me_last_pgno + 1) * st.ms_psize);
    return SAEF_KS_OK;
}

static SAEF_KS_ERR env_open_new(saef_ks *ks, int creating, int rdonly);

static SAEF_KS_ERR env_open(saef_ks *ks, int creating)
{
    struct stat st;
    shared_env *sh;
    SAEF_KS_ERR err = SAEF_KS_OK;
    int rdonly;

    if (stat(ks->path, &st) != 0)
        return fail(ks, SAEF_KS_EIO, "store %s: %s", ks->path, strerror(errno));
    rdonly = access(ks->path, W_OK) != 0;
    if (rdonly && !(ks->flags & SAEF_KS_RDONLY))
        return fail(ks, SAEF_KS_EPERM, "store %s is not writable by this user", ks->path);
    pthread_mutex_lock(&envs_lock);
    for (sh = envs; sh != NULL; sh = sh->next)
        if (sh->gen == fork_gen && sh->dev == st.st_dev && sh->ino == st.st_ino)
            break;
    if (sh != NULL) {
        sh->refs++;
    } else if ((err = env_open_new(ks, creating, rdonly)) == SAEF_KS_OK) {
        if ((sh = calloc(1, sizeof(*sh))) == NULL) {
            mdb_env_close(ks->env);
            err = fail(ks, SAEF_KS_EIO, "out of memory");
        } else {
            *sh = (shared_env){envs, st.st_dev, st.st_ino, fork_gen, 1, rdonly, ks->env, ks->dbi};
            envs = sh;
        }
    }
    pthread_mutex_unlock(&envs_lock);
    if (err != SAEF_KS_OK)
        return err;
    ks->sh = sh;
    ks->env = sh->env;
    ks->dbi = sh->dbi;
    ks->gen = fork_gen;
    return SAEF_KS_OK;
}

static SAEF_KS_ERR env_open_new(saef_ks *ks, int creating, int rdonly)
{
    unsigned eflags = MDB_NOSUBDIR | MDB_NOTLS;
    mode_t mode = ks->flags & SAEF_KS_GROUP_READ ? 0640 : 0600;
    MDB_txn *txn = NULL;
    MDB_val k = {sizeof(MARKER_KEY) - 1, MARKER_KEY}, v;
    SAEF_KS_ERR err;
    int rc;

    if (rdonly)
        eflags |= MDB_RDONLY;
    if ((rc = mdb_env_create(&ks->env)) != 0 ||
        (rc = mdb_env_set_mapsize(ks->env, MAP_SIZE)) != 0)
        return from_mdb(ks, rc, "create environment");
    if ((rc = mdb_env_open(ks->env, ks->path, eflags, mode)) != 0) {
        err = from_mdb(ks, rc, "open");
        goto fail;
    }
    if ((err = check_size(ks)) != SAEF_KS_OK)
        goto fail;
    if ((rc = mdb_txn_begin(ks->env, NULL, creating ? 0 : MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &ks->dbi)) != 0) {
        err = from_mdb(ks, rc, "begin");
        goto fail;
    }
    if (creating) {
        v.mv_size = sizeof(MARKER_VAL) - 1;
        v.mv_data = MARKER_VAL;
        if ((rc = mdb_put(txn, ks->dbi, &k, &v, 0)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
            txn = NULL;
            err = from_mdb(ks, rc, "initialise");
            goto fail;
        }
        txn = NULL;
    } else {
        rc = mdb_get(txn, ks->dbi, &k, &v);
        if (rc != 0 || v.mv_size != sizeof(MARKER_VAL) - 1 ||
            memcmp(v.mv_data, MARKER_VAL, v.mv_size) != 0) {
            err = fail(ks, SAEF_KS_ECORRUPT, "%s is an LMDB file but not a saef store",
                       ks->path);
            goto fail;
        }
        mdb_txn_abort(txn);
        txn = NULL;
    }
    return SAEF_KS_OK;
fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(ks->env);
    ks->env = NULL;
    return err;
}

/* Both files of a group-readable store: readers need write access to the lock. */
static void set_modes(saef_ks *ks)
{
    char lock[4096];

    if (ks->flags & SAEF_KS_GROUP_READ) {
        chmod(ks->path, 0640);
        snprintf(lock, sizeof(lock), "%s-lock", ks->path);
        chmod(lock, 0660);
    }
}

SAEF_KS_ERR saef_ks_open(const char *path, unsigned flags, saef_ks **out)
{
    saef_ks *ks;
    struct stat st;
    SAEF_KS_ERR err;
    int creating = 0;

    *out = NULL;
    pthread_once(&atfork_once, install_atfork);
    if (path == NULL || *path == '\0')
        return fail(NULL, SAEF_KS_EINVAL, "no store path given");
    if ((ks = calloc(1, sizeof(*ks))) == NULL || (ks->path = strdup(path)) == NULL) {
        free(ks);
        return fail(NULL, SAEF_KS_EIO, "out of memory");
    }
    ks->flags = flags;
    pthread_mutex_init(&ks->rd_lock, NULL);
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            err = fail(ks, errno == EACCES ? SAEF_KS_EPERM : SAEF_KS_EIO, "store %s: %s", path,
                       strerror(errno));
            goto fail;
        }
        if (!(flags & SAEF_KS_CREATE) || (flags & SAEF_KS_RDONLY)) {
            err = fail(ks, SAEF_KS_ENOSTORE,
                       "store %s does not exist: create it with saef-key -s %s init", path,
                       path);
            goto fail;
        }
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                      flags & SAEF_KS_GROUP_READ ? 0640 : 0600);
        if (fd < 0) {
            err = fail(ks, errno == EACCES ? SAEF_KS_EPERM : SAEF_KS_EIO,
                       "cannot create store %s: %s", path, strerror(errno));
            goto fail;
        }
        close(fd);
        creating = 1;
    } else {
        if ((err = check_mode(ks, &st)) != SAEF_KS_OK)
            goto fail;
        /* LMDB would silently initialise an empty file as a new store. */
        if (st.st_size == 0) {
            err = fail(ks, SAEF_KS_ECORRUPT, "store %s is empty: not a saef store", path);
            goto fail;
        }
    }
    if ((err = env_open(ks, creating)) != SAEF_KS_OK) {
        if (creating)
            unlink(path);
        goto fail;
    }
    if (creating)
        set_modes(ks);
    *out = ks;
    return SAEF_KS_OK;
fail:
    memcpy(open_err, ks->err, sizeof(open_err));
    pthread_mutex_destroy(&ks->rd_lock);
    free(ks->path);
    free(ks);
    return err;
}

/*
 * After fork() the inherited environment belongs to the parent: LMDB forbids
 * using it, and mdb_env_close() here would clear the parent's reader slots
 * (they carry the opener's pid). So it is dropped without closing, and the
 * store is opened afresh.
 */
static SAEF_KS_ERR ensure_env(saef_ks *ks)
{
    if (ks->gen == fork_gen && ks->env != NULL)
        return SAEF_KS_OK;
    if (ks->env != NULL)
        ks->inherited_txn = ks->rd_txn;
    ks->sh = NULL;
    ks->env = NULL;
    ks->rd_txn = NULL;
    ks->wtxn = NULL;
    pthread_mutex_init(&ks->rd_lock, NULL);
    return env_open(ks, 0);
}

void saef_ks_close(saef_ks *ks)
{
    if (ks == NULL)
        return;
    if (ks->gen == fork_gen && ks->env != NULL) {
        if (ks->wtxn != NULL)
            mdb_txn_abort(ks->wtxn);
        if (ks->rd_txn != NULL)
            mdb_txn_abort(ks->rd_txn);
        pthread_mutex_lock(&envs_lock);
        if (--ks->sh->refs == 0) {
            shared_env **p = &envs;
            while (*p != ks->sh)
                p = &(*p)->next;
            *p = ks->sh->next;
            mdb_env_close(ks->sh->env);
            free(ks->sh);
        }
        pthread_mutex_unlock(&envs_lock);
    }
    pthread_mutex_destroy(&ks->rd_lock);
    free(ks->path);
    free(ks);
}

/* A read transaction: the handle's reusable one if free, else a fresh one. */
static int rd_begin(saef_ks *ks, MDB_txn **txn, int *cached)
{
    int rc;

    for (int tries = 0; tries < 2; tries++) {
        *cached = pthread_mutex_trylock(&ks->rd_lock) == 0;
        if (*cached && ks->rd_txn != NULL) {
            rc = mdb_txn_renew(ks->rd_txn);
            *txn = ks->rd_txn;
        } else {
            rc = mdb_txn_begin(ks->env, NULL, MDB_RDONLY, txn);
            if (rc == 0 && *cached)
                ks->rd_txn = *txn;
        }
        if (rc == 0)
            return 0;
        if (*cached) {
            if (ks->rd_txn != NULL) {
                mdb_txn_abort(ks->rd_txn);
                ks->rd_txn = NULL;
            }
            pthread_mutex_unlock(&ks->rd_lock);
        }
        /* Another process grew the map: adopt its size and try again. */
        if (rc != MDB_MAP_RESIZED || mdb_env_set_mapsize(ks->env, 0) != 0)
            break;
    }
    return rc;
}

static void rd_end(saef_ks *ks, MDB_txn *txn, int cached)
{
    if (cached) {
        mdb_txn_reset(txn);
        pthread_mutex_unlock(&ks->rd_lock);
    } else {
        mdb_txn_abort(txn);
    }
}

static SAEF_KS_ERR check_id(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len)
{
    if (saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km or kc)", (int)type);
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
    MDB_val k, v;
    MDB_txn *txn;
    SAEF_KS_ERR err;
    int rc, cached, ok;

    if ((err = check_id(ks, type, id, id_len)) != SAEF_KS_OK ||
        (err = ensure_env(ks)) != SAEF_KS_OK)
        return err;
    make_key(type, id, id_len, kbuf, &k);
    if ((rc = rd_begin(ks, &txn, &cached)) != 0)
        return from_mdb(ks, rc, "read");
    rc = mdb_get(txn, ks->dbi, &k, &v);
    ok = rc == 0 && rec_decode(&v, out);
    rd_end(ks, txn, cached);
    if (rc == MDB_NOTFOUND)
        return fail(ks, SAEF_KS_ENOTFOUND, "no %s key %.*s", saef_ks_type_name(type),
                    (int)id_len, (const char *)id);
    if (rc != 0)
        return from_mdb(ks, rc, "read");
    if (!ok) {
        saef_ks_record_wipe(out);
        return fail(ks, SAEF_KS_ECORRUPT, "store %s: the %s record %.*s is malformed", ks->path,
                    saef_ks_type_name(type), (int)id_len, (const char *)id);
    }
    return SAEF_KS_OK;
}

static SAEF_KS_ERR writable(saef_ks *ks)
{
    if (ks->flags & SAEF_KS_RDONLY)
        return fail(ks, SAEF_KS_EINVAL, "store %s is open read-only", ks->path);
    return ensure_env(ks);
}

/* Runs op inside the open batch, or in a transaction of its own. */
static SAEF_KS_ERR write_op(saef_ks *ks, MDB_val *k, MDB_val *v, unsigned mflags)
{
    MDB_txn *txn = ks->wtxn;
    int rc;

    if (txn == NULL && (rc = mdb_txn_begin(ks->env, NULL, 0, &txn)) != 0)
        return from_mdb(ks, rc, "begin write");
    rc = v != NULL ? mdb_put(txn, ks->dbi, k, v, mflags) : mdb_del(txn, ks->dbi, k, NULL);
    if (ks->wtxn == NULL) {
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    return rc == 0 ? SAEF_KS_OK : from_mdb(ks, rc, "write");
}

SAEF_KS_ERR saef_ks_put(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len,
                        const saef_ks_record *rec, unsigned flags)
{
    unsigned char kbuf[1 + SAEF_KS_ID_MAX], vbuf[REC_MAX];
    size_t peer_len, self_len;
    saef_ks_record r;
    MDB_val k, v;
    SAEF_KS_ERR err;

    if ((err = check_id(ks, type, id, id_len)) != SAEF_KS_OK || (err = writable(ks)) != SAEF_KS_OK)
        return err;
    if (rec == NULL || rec->key_len == 0 || rec->key_len > SAEF_KS_KEY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "key is %zu bytes; it must be 1 to %d",
                    rec != NULL ? rec->key_len : 0, SAEF_KS_KEY_MAX);
    peer_len = strnlen(rec->peer, sizeof(rec->peer));
    self_len = strnlen(rec->self, sizeof(rec->self));
    if (peer_len > SAEF_KS_ENTITY_MAX || self_len > SAEF_KS_ENTITY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "entity ID longer than %d bytes", SAEF_KS_ENTITY_MAX);
    if (strnlen(rec->meta, sizeof(rec->meta)) > SAEF_KS_META_MAX)
        return fail(ks, SAEF_KS_EINVAL, "metadata longer than %d bytes", SAEF_KS_META_MAX);
    if (rec->not_after < 0)
        return fail(ks, SAEF_KS_EINVAL, "negative expiry time");
    r = *rec;
    if (r.created == 0)
        r.created = (int64_t)time(NULL);
    make_key(type, id, id_len, kbuf, &k);
    v.mv_size = rec_encode(&r, peer_len, self_len, vbuf);
    v.mv_data = vbuf;
    err = write_op(ks, &k, &v, flags & SAEF_KS_REPLACE ? 0 : MDB_NOOVERWRITE);
    OPENSSL_cleanse(vbuf, sizeof(vbuf));
    saef_ks_record_wipe(&r);
    if (err == SAEF_KS_EEXISTS)
        return fail(ks, err, "%s key %.*s already exists (--replace overwrites it)",
                    saef_ks_type_name(type), (int)id_len, (const char *)id);
    return err;
}

SAEF_KS_ERR saef_ks_del(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len)
{
    unsigned char kbuf[1 + SAEF_KS_ID_MAX];
    MDB_val k;
    SAEF_KS_ERR err;

    if ((err = check_id(ks, type, id, id_len)) != SAEF_KS_OK || (err = writable(ks)) != SAEF_KS_OK)
        return err;
    make_key(type, id, id_len, kbuf, &k);
    err = write_op(ks, &k, NULL, 0);
    if (err == SAEF_KS_ENOTFOUND)
        return fail(ks, err, "no %s key %.*s", saef_ks_type_name(type), (int)id_len,
                    (const char *)id);
    return err;
}

SAEF_KS_ERR saef_ks_write_begin(saef_ks *ks)
{
    SAEF_KS_ERR err;
    int rc;

    if ((err = writable(ks)) != SAEF_KS_OK)
        return err;
    if (ks->wtxn != NULL)
        return fail(ks, SAEF_KS_EINVAL, "a batch is already open");
    if ((rc = mdb_txn_begin(ks->env, NULL, 0, &ks->wtxn)) != 0) {
        ks->wtxn = NULL;
        return from_mdb(ks, rc, "begin write");
    }
    return SAEF_KS_OK;
}

SAEF_KS_ERR saef_ks_write_commit(saef_ks *ks)
{
    int rc;

    if (ks->wtxn == NULL || ks->gen != fork_gen)
        return fail(ks, SAEF_KS_EINVAL, "no batch is open");
    rc = mdb_txn_commit(ks->wtxn);
    ks->wtxn = NULL;
    return rc == 0 ? SAEF_KS_OK : from_mdb(ks, rc, "commit");
}

void saef_ks_write_abort(saef_ks *ks)
{
    if (ks->wtxn != NULL && ks->gen == fork_gen)
        mdb_txn_abort(ks->wtxn);
    ks->wtxn = NULL;
}

/* Walks records of `type` (0 = all); fn NULL just counts. */
static SAEF_KS_ERR walk(saef_ks *ks, SAEF_KS_TYPE type, saef_ks_iter_fn fn, void *arg,
                        size_t *count)
{
    unsigned char first = type != 0 ? (unsigned char)type : SAEF_KS_KPSA;
    MDB_val k = {1, &first}, v;
    MDB_cursor *cur;
    MDB_txn *txn;
    saef_ks_record r;
    SAEF_KS_ERR err = SAEF_KS_OK;
    int rc, cached;

    if (type != 0 && saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d", (int)type);
    if ((err = ensure_env(ks)) != SAEF_KS_OK)
        return err;
    if ((rc = rd_begin(ks, &txn, &cached)) != 0)
        return from_mdb(ks, rc, "read");
    if ((rc = mdb_cursor_open(txn, ks->dbi, &cur)) != 0) {
        rd_end(ks, txn, cached);
        return from_mdb(ks, rc, "cursor");
    }
    *count = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kb = k.mv_data;
        if (k.mv_size < 2 || kb[0] == 0 || kb[0] > SAEF_KS_KC) {
            err = fail(ks, SAEF_KS_ECORRUPT, "store %s holds a malformed key", ks->path);
            break;
        }
        if (type != 0 && kb[0] != type)
            break;
        (*count)++;
        if (fn == NULL)
            continue;
        if (!rec_decode(&v, &r)) {
            err = fail(ks, SAEF_KS_ECORRUPT, "store %s: the %s record %.*s is malformed",
                       ks->path, saef_ks_type_name(kb[0]), (int)k.mv_size - 1,
                       (const char *)kb + 1);
            break;
        }
        int stop = fn((SAEF_KS_TYPE)kb[0], (const char *)kb + 1, k.mv_size - 1, &r, arg);
        saef_ks_record_wipe(&r);
        if (stop)
            break;
    }
    if (err == SAEF_KS_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = from_mdb(ks, rc, "iterate");
    mdb_cursor_close(cur);
    rd_end(ks, txn, cached);
    return err;
}

SAEF_KS_ERR saef_ks_iter(saef_ks *ks, SAEF_KS_TYPE type, saef_ks_iter_fn fn, void *arg)
{
    size_t n;

    if (fn == NULL)
        return fail(ks, SAEF_KS_EINVAL, "no callback");
    return walk(ks, type, fn, arg, &n);
}

SAEF_KS_ERR saef_ks_count(saef_ks *ks, SAEF_KS_TYPE type, size_t *count)
{
    return walk(ks, type, NULL, NULL, count);
}
