/*
 * Opening a store: the checks of its file and place, creating it, the
 * process's registry of LMDB environments and its fork() handling, and the
 * calling thread's last error. Apart because it owns the process-wide state.
 */
#define _GNU_SOURCE /* secure_getenv */
#include "ks-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ks_env *envs;      /* this process's environments */
static struct ks_env *inherited; /* the parent's, after fork(): never touched */
atomic_uint fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static _Thread_local struct {
    const saef_ks *ks;
    char msg[512];
} last_err;

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

SAEF_KS_ERR fail(const saef_ks *ks, SAEF_KS_ERR err, const char *fmt, ...)
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

SAEF_KS_ERR from_mdb(const saef_ks *ks, int rc, const char *what)
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
        (rc = mdb_env_set_maxdbs(*env, NINDEX)) != 0 ||
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
        err = fail(ks, errno == EACCES ? SAEF_KS_EPERM : SAEF_KS_EIO, "cannot create store %s: %s",
                   ks->path, strerror(errno));
        goto out;
    }
    saef_lock_path(tmp, lock, n + 13);
    if ((ks->flags & SAEF_KS_GROUP_READ) && fchmod(fd, 0640) != 0)
        err = fail(ks, SAEF_KS_EIO, "cannot create store %s: chmod: %s", ks->path, strerror(errno));
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
        err = fail(ks, errno == EACCES ? SAEF_KS_EPERM : SAEF_KS_EIO, "cannot create store %s: %s",
                   ks->path, strerror(errno));
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
void cover_last_page(MDB_env *env)
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

static SAEF_KS_ERR check_marker(const saef_ks *ks, MDB_env *env, MDB_dbi *dbi)
{
    MDB_val k = {sizeof(MARKER_KEY) - 1, MARKER_KEY};
    MDB_txn *txn;
    int rc;

    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
        return from_mdb(ks, rc, "open");
    if ((rc = mdb_dbi_open(txn, NULL, 0, dbi)) == 0 &&
        (rc = guarded_marker(txn, *dbi, &k, MARKER_VAL)) == MDB_NOTFOUND)
        rc = guarded_marker(txn, *dbi, &k, MARKER_VAL_V1);
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
int reap_dead_readers(struct ks_env *e)
{
    int dead = 0;

    return mdb_reader_check(e->env, &dead) == 0 && dead > 0;
}

const char *const index_db[NINDEX] = {"\xffpeer", "\xffself"};

/* Entries of index i for every record: a store made before the index. */
static int index_fill(MDB_txn *txn, const struct ks_env *e, int i)
{
    unsigned char first = SAEF_KS_KPSA;
    const unsigned char *f;
    MDB_val k = {1, &first}, v, ik;
    MDB_cursor *cur;
    int rc;

    if ((rc = mdb_cursor_open(txn, e->dbi, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (((const unsigned char *)k.mv_data)[0] > SAEF_KS_TYPE_LAST)
            break;
        if ((ik.mv_size = rec_field(&v, i, &f)) == 0)
            continue;
        ik.mv_data = (void *)f;
        if ((rc = mdb_put(txn, e->idx[i], &ik, &k, MDB_NODUPDATA)) != 0 && rc != MDB_KEYEXIST)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == MDB_KEYEXIST ? 0 : rc;
}

/* With the self index, the marker says so (see MARKER_VAL). */
static int mark_v2(MDB_txn *txn, const struct ks_env *e)
{
    MDB_val k = {sizeof(MARKER_KEY) - 1, MARKER_KEY}, v = {sizeof(MARKER_VAL) - 1, MARKER_VAL};

    return mdb_put(txn, e->dbi, &k, &v, 0);
}

/* Opens index i; a writable environment builds it when it is missing (the
   map may have to grow for it: nothing else uses the environment yet). */
static int index_attach(struct ks_env *e, int i)
{
    MDB_txn *txn;
    MDB_envinfo info;
    int rc;

    if ((rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn)) != 0)
        return rc;
    if ((rc = guarded_dbi_open(txn, index_db[i], MDB_DUPSORT, &e->idx[i])) == 0) {
        if ((rc = mdb_txn_commit(txn)) == 0)
            e->has_idx[i] = 1;
        return rc;
    }
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND || !e->writable)
        return rc == MDB_NOTFOUND ? 0 : rc;
    do {
        if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0)
            return rc;
        if ((rc = mdb_dbi_open(txn, index_db[i], MDB_DUPSORT | MDB_CREATE, &e->idx[i])) == 0 &&
            (rc = index_fill(txn, e, i)) == 0 && (i != INDEX_SELF || (rc = mark_v2(txn, e)) == 0)) {
            if ((rc = mdb_txn_commit(txn)) == 0)
                cover_last_page(e->env);
        } else {
            mdb_txn_abort(txn);
        }
    } while (rc == MDB_MAP_FULL && mdb_env_info(e->env, &info) == 0 &&
             info.me_mapsize <= SIZE_MAX / 2 &&
             mdb_env_set_mapsize(e->env, info.me_mapsize * 2) == 0);
    e->has_idx[i] = rc == 0;
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
        ((rc = index_attach(e, INDEX_PEER)) != 0 || (rc = index_attach(e, INDEX_SELF)) != 0))
        err = from_mdb(ks, rc, "open the indexes");
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

/*
 * The environment of ks in this process. After fork() the inherited one
 * belongs to the parent: LMDB forbids using it, and closing it (or ending
 * its transactions) would clear reader slots that carry a pid the parent or
 * our own new environment uses, and release this process's locks on the
 * lock file. So it is left as it is, and the store is opened afresh.
 */
SAEF_KS_ERR use_env(saef_ks *ks)
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
