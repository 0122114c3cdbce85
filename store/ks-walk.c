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

/* The name of one of the indexes (a key of the unnamed database). */
static int index_name(const unsigned char *kb, size_t klen)
{
    for (int i = 0; i < NINDEX; i++)
        if (klen == strlen(index_db[i]) && memcmp(kb, index_db[i], klen) == 0)
            return 1;
    return 0;
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
    /* Every record but the marker and the indexes, without a walk. */
    if (fn == NULL && type == 0 && (rc = mdb_stat(txn, ks->e->dbi, &st)) == 0) {
        *count = st.ms_entries > 0 ? st.ms_entries - 1 : 0;
        for (int i = 0; i < NINDEX && rc != READ_FAULT; i++) {
            MDB_val name = {strlen(index_db[i]), (void *)index_db[i]};
            if (*count > 0 && (rc = guarded_get(txn, ks->e->dbi, &name, NULL, &ok)) == 0)
                (*count)--;
        }
        return walk_close(ks, rc == READ_FAULT ? from_mdb(ks, rc, "count") : SAEF_KS_OK, 0, txn,
                          cur);
    }
    for (rc = guarded_step(cur, MDB_SET_RANGE, &k, 0, kb, sizeof(kb), &klen, fn ? &r : NULL, &ok);
         rc == 0;
         rc = guarded_step(cur, MDB_NEXT, &k, 0, kb, sizeof(kb), &klen, fn ? &r : NULL, &ok)) {
        if (index_name(kb, klen)) /* they sort after every record */
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
    int index;
    const char *value;
    SAEF_KS_TYPE type;
    saef_ks_iter_fn fn;
    void *arg;
} field_filter;

static int field_only(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                      void *arg)
{
    field_filter *f = arg;

    if ((f->type != 0 && type != f->type) ||
        strcmp(f->index == INDEX_SELF ? rec->self : rec->peer, f->value) != 0)
        return 0;
    return f->fn(type, id, id_len, rec, f->arg);
}

/* The records whose peer or self (index) is value, through that index. */
static SAEF_KS_ERR iter_index(saef_ks *ks, int index, SAEF_KS_TYPE type, const char *value,
                              saef_ks_iter_fn fn, void *arg)
{
    unsigned char kb[1 + SAEF_KS_ID_MAX];
    MDB_val ik, k;
    MDB_cursor *cur;
    MDB_txn *txn;
    saef_ks_record r;
    SAEF_KS_ERR err;
    size_t klen = 0;
    int rc, stop = 0, ok;

    if (fn == NULL || value == NULL || *value == '\0' || strlen(value) > SAEF_KS_ENTITY_MAX)
        return fail(ks, SAEF_KS_EINVAL, "no callback, or no %s of 1 to %d bytes",
                    index == INDEX_SELF ? "self" : "peer", SAEF_KS_ENTITY_MAX);
    if ((err = walk_check(ks, type)) != SAEF_KS_OK)
        return err;
    /* A store no writer of this version has opened yet: walk it. */
    if (!ks->e->has_idx[index]) {
        field_filter f = {index, value, type, fn, arg};
        return saef_ks_iter(ks, type, field_only, &f);
    }
    if ((err = walk_open(ks, ks->e->idx[index], &txn, &cur)) != SAEF_KS_OK)
        return err;
    ik = (MDB_val){strlen(value), (void *)value};
    for (rc = guarded_step(cur, MDB_SET, &ik, 1, kb, sizeof(kb), &klen, NULL, &ok); rc == 0;
         rc = guarded_step(cur, MDB_NEXT_DUP, &ik, 1, kb, sizeof(kb), &klen, NULL, &ok)) {
        if (!key_ok(kb, klen) || (type != 0 && kb[0] != type))
            continue;
        /* An entry without its record, or whose record names another value
           now: the indexes change in the same transaction as the records,
           so only a foreign writer (an older saef) leaves one. */
        k = (MDB_val){klen, kb};
        if ((rc = guarded_get(txn, ks->e->dbi, &k, &r, &ok)) == MDB_NOTFOUND ||
            (rc == 0 && ok && strcmp(index == INDEX_SELF ? r.self : r.peer, value) != 0)) {
            saef_ks_record_wipe(&r);
            continue;
        }
        if (rc != 0 || (err = deliver(ks, kb, klen, ok, &r, fn, arg, &stop)) != SAEF_KS_OK || stop)
            break;
    }
    saef_ks_record_wipe(&r); /* a read that faulted may have decoded part of it */
    return walk_close(ks, err, rc, txn, cur);
}

SAEF_KS_ERR saef_ks_iter_peer(saef_ks *ks, SAEF_KS_TYPE type, const char *peer, saef_ks_iter_fn fn,
                              void *arg)
{
    return iter_index(ks, INDEX_PEER, type, peer, fn, arg);
}

SAEF_KS_ERR saef_ks_iter_self(saef_ks *ks, SAEF_KS_TYPE type, const char *self, saef_ks_iter_fn fn,
                              void *arg)
{
    return iter_index(ks, INDEX_SELF, type, self, fn, arg);
}

SAEF_KS_ERR saef_ks_count(saef_ks *ks, SAEF_KS_TYPE type, size_t *count)
{
    if (count == NULL)
        return fail(ks, SAEF_KS_EINVAL, "no place for the count");
    return walk(ks, type, NULL, NULL, count);
}
