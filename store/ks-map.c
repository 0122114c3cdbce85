/*
 * The map: every transaction holds map_lock shared, and only this unit takes
 * it exclusively, to grow the map when a write fills it or to take the size
 * another process grew it to; and the pool of reset read transactions.
 */
#include "ks-internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

size_t mapped(struct ks_env *e)
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
int grow_map(struct ks_env *e, size_t seen)
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

int txn_begin(struct ks_env *e, unsigned flags, MDB_txn **txn)
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
int rd_begin(struct ks_env *e, MDB_txn **txn)
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

void rd_end(struct ks_env *e, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    for (int i = 0; i < POOL && txn != NULL; i++) {
        MDB_txn *none = NULL;
        if (atomic_compare_exchange_strong_explicit(&e->pool[i], &none, txn, memory_order_release,
                                                    memory_order_relaxed))
            txn = NULL;
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&e->map_lock);
}
