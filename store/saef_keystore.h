/*
 * saef_keystore.h - the saef key store: (type, identity) -> key + metadata.
 *
 * One LMDB file (plus "<path>-lock") holds every key. Many processes read
 * while one writes; a reader sees a committed write at its next lookup,
 * with no reopen or signal. Lookups are a B-tree read: their cost does not
 * grow with the number of keys in any way that matters.
 *
 * Threads: a handle may be used by several threads at once for reads
 * (saef_ks_get, saef_ks_iter, saef_ks_count). Writes (put, del, the write_*
 * batch calls) on one handle must come from one thread at a time, and a
 * batch is begun, filled and ended by the same thread. One write
 * transaction runs at a time across all processes: while a batch is open,
 * a write through another handle waits for it (in the same thread: forever).
 *
 * Processes: all handles on one store file in a process share one LMDB
 * environment (LMDB allows no more), so the provider, the shim and a
 * short-lived writer may each open their own.
 *
 * fork(): a handle opened before fork() is reopened transparently in the
 * child at its next use (LMDB forbids using a parent's environment); a batch
 * open at fork() stays the parent's.
 *
 * Size: the store maps 1 GiB of address space at first (the file grows only
 * as records are written) and doubles the map when a write fills it. The
 * environment variable SAEF_KS_MAP_SIZE (bytes, 65536 or more) sets another
 * starting size, e.g. for small address-space limits. When the address
 * space for a bigger map is not there, writes fail; if LMDB had already let
 * go of the old map, every later call in that process fails (SAEF_KS_EIO).
 *
 * Corruption: LMDB trusts its pages, and a corrupt page can send a read
 * outside the file. The first saef_ks_open installs SIGBUS and SIGSEGV
 * handlers (SA_NODEFER): a fault inside a saef read fails that call with
 * SAEF_KS_ECORRUPT; any other fault goes to the handler installed before.
 * A program that installs its own handlers later should do the same.
 *
 * Secrets: key bytes are copied into the caller's saef_ks_record; the
 * library wipes every buffer of its own that held them. Callers wipe
 * their records with saef_ks_record_wipe().
 *
 * Errors: every call that can fail returns a SAEF_KS_ERR (SAEF_KS_OK is 0)
 * and leaves a message for the calling thread in saef_ks_last_error();
 * calls that cannot fail return void, the name lookups NULL or 0 for what
 * they do not know.
 *
 * ABI: libsaef-keystore.so changes its SONAME's number whenever an
 * exported function's signature or a public structure (saef_ks_record, the
 * enums) changes, and keeps it when functions are only added.
 */
#ifndef SAEF_KEYSTORE_H
#define SAEF_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SAEF_EXPORT __attribute__((visibility("default")))
#else
#define SAEF_EXPORT
#endif

/* OpenSSL 1.1's PSK_MAX_IDENTITY_LEN and PSK_MAX_PSK_LEN (3.0 allows more). */
#define SAEF_KS_ID_MAX 128
#define SAEF_KS_KEY_MAX 256
/* Longest AE-ID / CSE-ID / SNI host stored in a record. */
#define SAEF_KS_ENTITY_MAX 255
/* Longest free-form metadata (the MAF keeps adminFQDN and labels there). */
#define SAEF_KS_META_MAX 1024

typedef enum {
    SAEF_KS_KPSA = 1, /* pre-provisioned key, identity = KpsaID */
    SAEF_KS_KM = 2,   /* MAF master credential, identity = KmID */
    SAEF_KS_KC = 3    /* MAF connection key, identity = HEX(KcID)@MAF-FQDN */
} SAEF_KS_TYPE;
/* (A store may also hold records of a type of saef's own, which saef_ks_iter
   with type 0 visits too: saef_ks_type_name names it.) */

typedef enum {
    SAEF_KS_OK = 0,
    SAEF_KS_ENOTFOUND, /* no such record */
    SAEF_KS_EEXISTS,   /* put without SAEF_KS_REPLACE on an existing record */
    SAEF_KS_EINVAL,    /* bad argument: identity length, key length, type... */
    SAEF_KS_EPERM,     /* store file permissions unsafe, or access denied */
    SAEF_KS_ENOSTORE,  /* store does not exist (and SAEF_KS_CREATE not given) */
    SAEF_KS_ECORRUPT,  /* not a saef store, truncated, or a malformed record */
    SAEF_KS_EIO        /* any other store error (disk full, LMDB error) */
} SAEF_KS_ERR;

typedef struct saef_ks saef_ks;

/* A record. Strings are NUL-terminated; "" means absent. */
typedef struct {
    unsigned char key[SAEF_KS_KEY_MAX];
    size_t key_len;                    /* 1..SAEF_KS_KEY_MAX */
    char peer[SAEF_KS_ENTITY_MAX + 1]; /* peer entity: IdA on a server, IdB on a client */
    char self[SAEF_KS_ENTITY_MAX + 1]; /* local entity / SNI authority the key belongs to */
    int64_t not_after;                 /* Unix seconds; 0 = never expires */
    int64_t created;                   /* Unix seconds; set by put when 0 */
    int32_t suid;                      /* oneM2M SUID; 0 = none */
    char meta[SAEF_KS_META_MAX + 1];   /* free-form text, "" = none */
} saef_ks_record;

/* saef_ks_open flags */
#define SAEF_KS_RDONLY 0x01 /* no writes through this handle */
#define SAEF_KS_CREATE 0x02 /* create the store if missing (owner-only 0600) */
/* SAEF_KS_GROUP_READ: create group-readable (0640, lock file 0660), and
   accept a group-readable store on open */
#define SAEF_KS_GROUP_READ 0x04

/* saef_ks_put flags */
#define SAEF_KS_REPLACE 0x01 /* overwrite an existing record (default: SAEF_KS_EEXISTS) */

/*
 * Open the store at `path`, an absolute path (else SAEF_KS_EINVAL).
 * Refuses (SAEF_KS_EPERM) a store file that is writable by group or
 * others, or readable by others (readable by group only with
 * SAEF_KS_GROUP_READ), a store or lock file that belongs to a user other
 * than root or the effective user, or one in a place others may change
 * (the same rule as OpenSSH's StrictModes), with a message saying how to
 * fix it. On failure *out is NULL; the reason is in saef_ks_last_error(NULL).
 */
SAEF_EXPORT SAEF_KS_ERR saef_ks_open(const char *path, unsigned flags, saef_ks **out);
SAEF_EXPORT void saef_ks_close(saef_ks *ks);

/* Look up (type, identity). Not-after is NOT checked here: callers decide.
   On any failure *out is wiped (all zero). */
SAEF_EXPORT SAEF_KS_ERR saef_ks_get(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len,
                                    saef_ks_record *out);

/* Store a record. id_len 1..SAEF_KS_ID_MAX, key_len 1..SAEF_KS_KEY_MAX. */
SAEF_EXPORT SAEF_KS_ERR saef_ks_put(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len,
                                    const saef_ks_record *rec, unsigned flags);
SAEF_EXPORT SAEF_KS_ERR saef_ks_del(saef_ks *ks, SAEF_KS_TYPE type, const void *id, size_t id_len);

/*
 * Batch writes: between write_begin and write_commit, put/del go into one
 * transaction; write_abort (or close) drops them all. Without a batch each
 * put/del commits on its own.
 */
SAEF_EXPORT SAEF_KS_ERR saef_ks_write_begin(saef_ks *ks);
SAEF_EXPORT SAEF_KS_ERR saef_ks_write_commit(saef_ks *ks);
SAEF_EXPORT void saef_ks_write_abort(saef_ks *ks);

/*
 * Visit every record (of one type, or all when type == 0) in identity
 * order inside one read transaction. `id` is a NUL-terminated copy, `rec`
 * is wiped after the call. A non-zero return from `fn` stops the walk early
 * (still SAEF_KS_OK). `fn` may look keys up but must not write to the
 * store: collect what to change and write after the walk.
 */
typedef int (*saef_ks_iter_fn)(SAEF_KS_TYPE type, const char *id, size_t id_len,
                               const saef_ks_record *rec, void *arg);
SAEF_EXPORT SAEF_KS_ERR saef_ks_iter(saef_ks *ks, SAEF_KS_TYPE type, saef_ks_iter_fn fn, void *arg);

/*
 * Like saef_ks_iter, but only the records whose peer is exactly `peer`
 * (byte for byte), of one type or all: through an index, so the cost grows
 * with the records of that peer, not with the store. (A store that no
 * writer of this version has opened yet has no index and is walked.)
 */
SAEF_EXPORT SAEF_KS_ERR saef_ks_iter_peer(saef_ks *ks, SAEF_KS_TYPE type, const char *peer,
                                          saef_ks_iter_fn fn, void *arg);
/* The same for the records whose self is `self` (a MAF: the registrations
   one client made), through the self index. */
SAEF_EXPORT SAEF_KS_ERR saef_ks_iter_self(saef_ks *ks, SAEF_KS_TYPE type, const char *self,
                                          saef_ks_iter_fn fn, void *arg);

/* Number of records of a type (0 = all). */
SAEF_EXPORT SAEF_KS_ERR saef_ks_count(saef_ks *ks, SAEF_KS_TYPE type, size_t *count);

/*
 * Delete the expired records of one type (not_after != 0 and not_after <=
 * now) in one write transaction that visits at most `visit` records of
 * that type (1 to SAEF_KS_PURGE_MAX), in identity order from the identity
 * in `from` ("" = the first; it need not exist). `from` (SAEF_KS_ID_MAX + 1
 * bytes; NULL = start at the first) is set to where the next call goes on,
 * "" once the walk reached the last record of the type: calls with the same
 * buffer go round the whole type in bounded steps. *removed (may be NULL)
 * is how many were deleted. Commits only when it deleted something. A
 * record that does not decode is left alone. SAEF_KS_EINVAL while a batch
 * is open on ks.
 */
#define SAEF_KS_PURGE_MAX 65536
SAEF_EXPORT SAEF_KS_ERR saef_ks_purge(saef_ks *ks, SAEF_KS_TYPE type, int64_t now, size_t visit,
                                      char *from, size_t *removed);

/*
 * The message of the calling thread's last failed call on this handle (or,
 * with NULL, of its last failed saef_ks_open); "" when the thread's last
 * failure was on another handle. It names the store, the identity (bytes
 * outside printable ASCII as \xNN) or the field and, where it can, what to
 * do. Never contains key bytes. Valid until the thread's next call.
 */
SAEF_EXPORT const char *saef_ks_last_error(const saef_ks *ks);
SAEF_EXPORT const char *saef_ks_strerror(SAEF_KS_ERR err);

SAEF_EXPORT void saef_ks_record_wipe(saef_ks_record *rec);

/* Type names "kpsa", "km", "kc" <-> SAEF_KS_TYPE; NULL / 0 when unknown.
   saef_ks_type_name also names the store's own types ("creg"), which
   saef_ks_type_from_name does not give out. */
SAEF_EXPORT const char *saef_ks_type_name(SAEF_KS_TYPE type);
SAEF_EXPORT SAEF_KS_TYPE saef_ks_type_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif
