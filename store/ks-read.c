/* Lookups: one record by (type, identity), the call every handshake makes. */
#include "ks-internal.h"

#include <string.h>

SAEF_KS_ERR check_id(const saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len)
{
    if (ks == NULL)
        return fail(NULL, SAEF_KS_EINVAL, "no store handle");
    if (saef_ks_type_name(type) == NULL)
        return fail(ks, SAEF_KS_EINVAL, "unknown key type %d (use kpsa, km, kc or creg)",
                    (int)type);
    if (id == NULL || id_len == 0)
        return fail(ks, SAEF_KS_EINVAL, "empty identity");
    if (id_len > SAEF_KS_ID_MAX)
        return fail(ks, SAEF_KS_EINVAL, "identity is %zu bytes; the limit is %d", id_len,
                    SAEF_KS_ID_MAX);
    return SAEF_KS_OK;
}

void make_key(SAEF_KS_TYPE type, const void *id, size_t id_len,
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
