/*
 * Internal to libsaef-keystore (and its fuzz targets): the store's layout,
 * the handle and environment structures, and what the units (ks-*.c) share.
 * Nothing here is exported: the library builds with -fvisibility=hidden and
 * exports only SAEF_EXPORT functions.
 */
#ifndef SAEF_KS_INTERNAL_H
#define SAEF_KS_INTERNAL_H

#include "ks-record.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Layout: the unnamed LMDB database holds the records. Key = 1 type byte +
 * identity bytes; type 0 holds only the marker below (saef_ks_count relies
 * on it). Value = a versioned record, little-endian, see saef_ks_rec_encode().
 * Two named databases (their names sort after every record) index the
 * records: INDEX_PEER maps each non-empty peer to the keys of its records,
 * so a client finds the keys for one IdB without a walk; INDEX_SELF does the
 * same for self, so a MAF counts one client's registrations. Every write
 * keeps both, and the first writable open builds one a store lacks.
 */
/* v2: the self index is kept. The first writable open of a v1 store builds
   it and writes v2 in the same transaction; saef before the self index
   refuses v2, so no writer that would leave the index behind ever writes
   such a store. A v1 store is still read (its self index walked). */
#define MARKER_KEY "\0saef-store"
#define MARKER_VAL "saef keystore v2"
#define MARKER_VAL_V1 "saef keystore v1"
enum { INDEX_PEER, INDEX_SELF, NINDEX };
extern const char *const index_db[NINDEX]; /* "\xffpeer", "\xffself" */
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

/* A read of the map faulted (ks-guard.c). */
#define READ_FAULT (-30000) /* below LMDB's own codes */
/* A write_fn changed nothing: end its transaction without a commit. */
#define WRITE_NOTHING (-30001)

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
    MDB_dbi idx[NINDEX]; /* index_db[i], when has_idx[i] */
    int has_idx[NINDEX]; /* always in a writable environment: every writer keeps them */
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
    MDB_txn *wtxn;     /* the open batch; holds e->map_lock shared */
    unsigned char *jr; /* the batch's operations, replayed after the map grows */
    size_t jr_len, jr_cap;
};

/* ks-record.c: little-endian fields, and the field an index (INDEX_PEER:
   peer, INDEX_SELF: self) holds of an encoded record. */
void put_le(unsigned char *p, uint64_t v, int n);
uint64_t get_le(const unsigned char *p, int n);
size_t rec_field(const MDB_val *v, int index, const unsigned char **out);

/* ks-guard.c: reads of the map that fail with READ_FAULT instead of a
   SIGBUS or SIGSEGV; the handlers go in once, with fault_once. */
extern pthread_once_t fault_once;
void install_fault_guard(void);
int guarded_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, saef_ks_record *rec, int *ok);
int guarded_step(MDB_cursor *cur, MDB_cursor_op op, MDB_val *k, int copy_value, unsigned char *buf,
                 size_t bufsize, size_t *len, saef_ks_record *rec, int *ok);
int guarded_dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi);
int guarded_marker(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const char *want);

/* ks-env.c: the calling thread's last error (fail returns err), identities
   escaped for messages, LMDB codes as SAEF_KS_ERR with a message; the fork
   generation, and ks's environment in this process (reopened after fork). */
SAEF_KS_ERR fail(const saef_ks *ks, SAEF_KS_ERR err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
SAEF_KS_ERR from_mdb(const saef_ks *ks, int rc, const char *what);
void cover_last_page(MDB_env *env);
int reap_dead_readers(struct ks_env *e);
extern atomic_uint fork_gen;
SAEF_KS_ERR use_env(saef_ks *ks);

/* ks-map.c: the map's size; growing it after a write found it full at
   `seen`; transactions that hold map_lock shared until they end (rd_end
   for a read, the caller's unlock for a write). */
size_t mapped(struct ks_env *e);
int grow_map(struct ks_env *e, size_t seen);
int txn_begin(struct ks_env *e, unsigned flags, MDB_txn **txn);
int rd_begin(struct ks_env *e, MDB_txn **txn);
void rd_end(struct ks_env *e, MDB_txn *txn);

/* ks-read.c: the checks of (type, identity), and its LMDB key. */
SAEF_KS_ERR check_id(const saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len);
void make_key(SAEF_KS_TYPE type, const void *id, size_t id_len,
              unsigned char buf[1 + SAEF_KS_ID_MAX], MDB_val *k);

/* ks-write.c: journal operations and applying one; a write of its own
   (fn's changes in one transaction, retried when the map was full, see
   write_txn); the batch journal wiped; ks open for writing in this process. */
size_t op_encode(int op, SAEF_KS_TYPE type, const void *id, size_t id_len, const unsigned char *val,
                 size_t val_len, unsigned char *buf);
int op_apply(MDB_txn *txn, const struct ks_env *e, const unsigned char *op);
/* 0, WRITE_NOTHING, or an LMDB error. */
typedef int write_fn(MDB_txn *txn, const struct ks_env *e, void *arg);
SAEF_KS_ERR write_txn(saef_ks *ks, write_fn *fn, void *arg, const char *what);
void jr_clear(saef_ks *ks);
SAEF_KS_ERR writable(saef_ks *ks);

#endif
