/*
 * Walks: every record of a type, the records of one peer through the peer
 * index, and counts, each in one read transaction.
 */
#include "ks-internal.h"

#include <string.h>

/* The checks every walk starts with, then the store's environment. */
static SAEF_KS_ERR walk_check(saef_ks *ks, SAEF_KS_TYPE type)
{
    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if (type != 0 && saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km, kc or creg)",
                    (int)type);
    return use_env(ks);
}

/* A read transaction and a cursor on dbi in it. */
static SAEF_KS_ERR walk_open(saef_ks *ks, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur)
{
    int rc;

    if ((rc = rd_begin(ks->e, txn)) != 0)
        return from_mdb(ks, rc, "read");
    if ((rc = mdb_cursor_open(*txn, dbi, cur)) != 0) {
        rd_end(ks->e, *txn);
        return from_mdb(ks, rc, "read");
    }
    return SAEF_KS_OK;
}

/* Ends a walk: its own error, else the cursor's unless it just ran out. */
static SAEF_KS_ERR walk_close(saef_ks *ks, SAEF_KS_ERR err, int rc, MDB_txn *txn, MDB_cursor *cur)
{
    if (err == SAEF_KS_OK && rc != 0 && rc != MDB_NOTFOUND)
        err = from_mdb(ks, rc, "read");
    mdb_cursor_close(cur);
    rd_end(ks->e, txn);
    return err;
}

/* A record key: a known type byte and an identity of 1..SAEF_KS_ID_MAX. */
static int key_ok(const unsigned char *kb, size_t klen)
{
    return klen >= 2 && klen <= 1 + SAEF_KS_ID_MAX && kb[0] != 0 && kb[0] <= SAEF_KS_TYPE_LAST;
}

/* The record r of key kb (ok: it decoded) to fn, then wiped; *stop is
   what fn answered. */
static SAEF_KS_ERR deliver(saef_ks *ks, const unsigned char *kb, size_t klen, int ok,
                           saef_ks_record *r, saef_ks_iter_fn fn, void *arg, int *stop)
{
    char id[SAEF_KS_ID_MAX + 1], text[ID_TEXT_MAX];
    size_t id_len = klen - 1;

    if (!ok)
        return fail(ks, SAEF_KS_ECORRUPT, "store %s: the %s record %s is malformed", ks->path,
                    saef_ks_type_name(kb[0]), saef_escape(kb + 1, id_len, text, sizeof(text)));
    memcpy(id, kb + 1, id_len);
    id[id_len] = '\0';
    *stop = fn((SAEF_KS_TYPE)kb[0], id, id_len, r, arg);
    saef_ks_record_wipe(r);
    return SAEF_KS_OK;
}

/* Walks records of `type` (0 = all); fn NULL just counts. */
static SAEF_KS_ERR walk(saef_ks *ks, SAEF_KS_TYPE type, saef_ks_iter_fn fn, void *arg,
                        size_t *count)
{
    unsigned char first = type != 0 ? (unsigned char)type : SAEF_KS_KPSA;
    unsigned char kb[1 + SAEF_KS_ID_MAX];
    MDB_val k = {1, &first};
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_stat st;
    saef_ks_record r;
    SAEF_KS_ERR err;
    size_t klen = 0;
    int rc, ok = 0, stop = 0;

    if ((err = walk_check(ks, type)) != SAEF_KS_OK ||
        (err = walk_open(ks, ks->e->dbi, &txn, &cur)) != SAEF_KS_OK)
        return err;
    *count = 0;
    /* Every record but the marker and the index, without a walk. */
    if (fn == NULL && type == 0 && (rc = mdb_stat(txn, ks->e->dbi, &st)) == 0) {
        MDB_val name = {sizeof(INDEX_DB) - 1, INDEX_DB};
        *count = st.ms_entries > 0 ? st.ms_entries - 1 : 0;
        if (*count > 0 && (rc = guarded_get(txn, ks->e->dbi, &name, NULL, &ok)) == 0)
            (*count)--;
        return walk_close(ks, rc == READ_FAULT ? from_mdb(ks, rc, "count") : SAEF_KS_OK, 0, txn,
                          cur);
    }
    for (rc = guarded_step(cur, MDB_SET_RANGE, &k, 0, kb, sizeof(kb), &klen, fn ? &r : NULL, &ok);
         rc == 0;
         rc = guarded_step(cur, MDB_NEXT, &k, 0, kb, sizeof(kb), &klen, fn ? &r : NULL, &ok)) {
        if (klen == sizeof(INDEX_DB) - 1 && memcmp(kb, INDEX_DB, klen) == 0)
            break;
        if (!key_ok(kb, klen)) {
            err = fail(ks, SAEF_KS_ECORRUPT,
                       "store %s holds a malformed key: restore it from a backup", ks->path);
            break;
        }
        if (type != 0 && kb[0] != type)
            break;
        (*count)++;
        if (fn != NULL &&
            ((err = deliver(ks, kb, klen, ok, &r, fn, arg, &stop)) != SAEF_KS_OK || stop))
            break;
    }
    saef_ks_record_wipe(&r); /* decoded for a record of another type */
    return walk_close(ks, err, rc, txn, cur);
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

SAEF_KS_ERR saef_ks_iter_peer(saef_ks *ks, SAEF_KS_TYPE type, const char *peer, saef_ks_iter_fn fn,
                              void *arg)
{
    unsigned char kb[1 + SAEF_KS_ID_MAX];
    MDB_val pk, k;
    MDB_cursor *cur;
    MDB_txn *txn;
    saef_ks_record r;
    SAEF_KS_ERR err;
    size_t klen = 0;
    int rc, stop = 0, ok;

    if (fn == NULL || peer == NULL || *peer == '\0' || strlen(peer) > SAEF_KS_ENTITY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "no callback, or no peer of 1 to %d bytes",
                    SAEF_KS_ENTITY_MAX);
    if ((err = walk_check(ks, type)) != SAEF_KS_OK)
        return err;
    /* A store no writer of this version has opened yet: walk it. */
    if (!ks->e->has_idx) {
        peer_filter f = {peer, type, fn, arg};
        return saef_ks_iter(ks, type, peer_only, &f);
    }
    if ((err = walk_open(ks, ks->e->idx, &txn, &cur)) != SAEF_KS_OK)
        return err;
    pk = (MDB_val){strlen(peer), (void *)peer};
    for (rc = guarded_step(cur, MDB_SET, &pk, 1, kb, sizeof(kb), &klen, NULL, &ok); rc == 0;
         rc = guarded_step(cur, MDB_NEXT_DUP, &pk, 1, kb, sizeof(kb), &klen, NULL, &ok)) {
        if (!key_ok(kb, klen) || (type != 0 && kb[0] != type))
            continue;
        /* An entry without its record: the index is kept in the same
           transaction as the records, so only a foreign writer leaves one. */
        k = (MDB_val){klen, kb};
        if ((rc = guarded_get(txn, ks->e->dbi, &k, &r, &ok)) == MDB_NOTFOUND)
            continue;
        if (rc != 0 || (err = deliver(ks, kb, klen, ok, &r, fn, arg, &stop)) != SAEF_KS_OK || stop)
            break;
    }
    return walk_close(ks, err, rc, txn, cur);
}

SAEF_KS_ERR saef_ks_count(saef_ks *ks, SAEF_KS_TYPE type, size_t *count)
{
    if (count == NULL)
        return fail(ks, SAEF_KS_EINVAL, "no place for the count");
    return walk(ks, type, NULL, NULL, count);
}
