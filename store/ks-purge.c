/*
 * Purge: the expired records of a type deleted in bounded, resumable steps.
 * Apart from the writes because it walks and deletes in one transaction of
 * its own and never joins a batch.
 */
#include "ks-internal.h"

#include <stdlib.h>
#include <string.h>

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

/* purge_txn as write_txn runs it. */
typedef struct {
    SAEF_KS_TYPE type;
    int64_t now;
    size_t visit;
    const char *from;
    unsigned char *gone;
    size_t *n;
    char *next;
} purge_job;

static int purge_write(MDB_txn *txn, const struct ks_env *e, void *arg)
{
    const purge_job *j = arg;
    int rc = purge_txn(txn, e, j->type, j->now, j->visit, j->from, j->gone, j->n, j->next);

    /* Nothing to delete: no commit, so no disk write. */
    return rc == 0 && *j->n == 0 ? WRITE_NOTHING : rc;
}

SAEF_KS_ERR saef_ks_purge(saef_ks *ks, SAEF_KS_TYPE type, int64_t now, size_t visit, char *from,
                          size_t *removed)
{
    char next[SAEF_KS_ID_MAX + 1];
    unsigned char *gone;
    SAEF_KS_ERR err;
    size_t n = 0;

    if (removed != NULL)
        *removed = 0;
    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if (saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km, kc or creg)",
                    (int)type);
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
    purge_job job = {type, now, visit, from != NULL ? from : "", gone, &n, next};
    err = write_txn(ks, purge_write, &job, "purge");
    free(gone);
    if (err != SAEF_KS_OK)
        return err;
    if (from != NULL)
        memcpy(from, next, strlen(next) + 1);
    if (removed != NULL)
        *removed = n;
    return SAEF_KS_OK;
}
