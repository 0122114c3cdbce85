/*
 * Writes: put and delete, each in a transaction of its own or in a batch,
 * and the batch's journal, replayed when the map grows under it. Every
 * write keeps the indexes.
 */
#include "ks-internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t op_encode(int op, SAEF_KS_TYPE type, const void *id, size_t id_len, const unsigned char *val,
                 size_t val_len, unsigned char *buf)
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

/* The record, then its index entries (moved when the peer or self changed). */
int op_apply(MDB_txn *txn, const struct ks_env *e, const unsigned char *op)
{
    MDB_val k = {op[1], (void *)(op + OP_HDR)};
    MDB_val v = {get_le(op + 2, 2), (void *)(op + OP_HDR + op[1])}, old, ik;
    unsigned char was[NINDEX][SAEF_KS_ENTITY_MAX];
    size_t was_len[NINDEX] = {0}, len;
    const unsigned char *f = NULL;
    int rc;

    if ((e->has_idx[INDEX_PEER] || e->has_idx[INDEX_SELF]) && mdb_get(txn, e->dbi, &k, &old) == 0)
        for (int i = 0; i < NINDEX; i++)
            if ((was_len[i] = rec_field(&old, i, &f)) > 0)
                memcpy(was[i], f, was_len[i]); /* the map may move under a write */
    if (op[0] == OP_DEL)
        rc = mdb_del(txn, e->dbi, &k, NULL);
    else
        rc = mdb_put(txn, e->dbi, &k, &v, op[0] == OP_ADD ? MDB_NOOVERWRITE : 0);
    for (int i = 0; rc == 0 && i < NINDEX; i++) {
        if (!e->has_idx[i])
            continue;
        len = op[0] != OP_DEL ? rec_field(&v, i, &f) : 0;
        if (len == was_len[i] && (len == 0 || memcmp(was[i], f, len) == 0))
            continue;
        if (was_len[i] > 0) {
            ik = (MDB_val){was_len[i], was[i]};
            if ((rc = mdb_del(txn, e->idx[i], &ik, &k)) == MDB_NOTFOUND)
                rc = 0;
        }
        if (rc == 0 && len > 0) {
            ik = (MDB_val){len, (void *)f};
            if ((rc = mdb_put(txn, e->idx[i], &ik, &k, MDB_NODUPDATA)) == MDB_KEYEXIST)
                rc = 0;
        }
    }
    return rc;
}

static SAEF_KS_ERR full(const saef_ks *ks, size_t seen)
{
    return fail(ks, SAEF_KS_EIO, "store %s is full: its map cannot grow past %zu MiB", ks->path,
                seen >> 20);
}

/*
 * fn in a write transaction of its own, committed when fn returns 0 (ended
 * without a commit on WRITE_NOTHING). When the map was full, the slots of
 * dead readers are freed or the map grows, and fn runs again in a new
 * transaction. `what` names the write in an error message.
 */
SAEF_KS_ERR write_txn(saef_ks *ks, write_fn *fn, void *arg, const char *what)
{
    struct ks_env *e = ks->e;
    MDB_txn *txn;
    size_t seen;
    int rc;

    for (;;) {
        if ((rc = txn_begin(e, 0, &txn)) != 0)
            return from_mdb(ks, rc, "begin a write");
        if ((rc = fn(txn, e, arg)) != 0)
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
    return rc == 0 || rc == WRITE_NOTHING ? SAEF_KS_OK : from_mdb(ks, rc, what);
}

static int apply_op(MDB_txn *txn, const struct ks_env *e, void *op)
{
    return op_apply(txn, e, op);
}

/* One operation in a transaction of its own. */
static SAEF_KS_ERR write_one(saef_ks *ks, const unsigned char *op)
{
    return write_txn(ks, apply_op, (void *)op, "write");
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

void jr_clear(saef_ks *ks)
{
    if (ks->jr != NULL)
        OPENSSL_cleanse(ks->jr, ks->jr_len);
    ks->jr_len = 0;
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

SAEF_KS_ERR writable(saef_ks *ks)
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
