/*
 * Internal to saef (not installed): the key types the store keeps beyond
 * the public SAEF_KS_TYPE. The store, saef-key (to list and show them) and
 * saef-mafd (which writes them) include it; the provider and libsaef do
 * not, and a name from outside (saef_ks_type_from_name) never yields one.
 */
#ifndef SAEF_KS_TYPES_H
#define SAEF_KS_TYPES_H

#include "saef_keystore.h"

/* A MAF's client registration (TS-0003 8.8.2.3), identity = mafClientRegID;
   written by saef-mafd, never a PSK. Stores on disk hold it as type 4. */
#define SAEF_KS_CREG ((SAEF_KS_TYPE)4)
#define SAEF_KS_CREG_NAME "creg"
/* The highest type a store holds. */
#define SAEF_KS_TYPE_LAST SAEF_KS_CREG

#endif
