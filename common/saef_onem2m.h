/*
 * saef_onem2m.h - the protocol numbers saef follows (oneM2M TS-0003, TLS),
 * in one place. Internal: not installed. Where OpenSSL has its own macro
 * (TLS1_2_VERSION, TLS1_3_VERSION, DTLS1_2_VERSION...) code uses that one,
 * and this header checks that saef's limits fit OpenSSL's.
 */
#ifndef SAEF_ONEM2M_H
#define SAEF_ONEM2M_H

#include <openssl/ssl.h>

#include "saef_keystore.h"

/* TS-0003 8.8.2.7, 8.8.2.8: the SUID that limits a connection key to the
   MAF-based symmetric key SAEF (Key Registration and Retrieval carry it). */
#define SAEF_SUID_MAF_SAEF 32

/* TS-0003 10.3.1: the RFC 5705 exporter both ends run on the connection to
   the MAF, no context; KcID is its first 16 bytes, Kc the next 32. */
#define SAEF_EXPORTER_LABEL "EXPORTER-oneM2M-Connection"
#define SAEF_KCID_LEN 16
#define SAEF_KC_LEN 32
#define SAEF_EXPORT_LEN (SAEF_KCID_LEN + SAEF_KC_LEN)

/* TS-0003 10.3.5: a Kc's identity is "HEX(KcID)@MAF-FQDN": 32 upper-case
   hex digits, '@', and a MAF-FQDN short enough that the whole fits a
   stored identity (SAEF_KS_ID_MAX). */
#define SAEF_KCID_HEX_LEN (2 * SAEF_KCID_LEN)
#define SAEF_MAF_FQDN_MAX 95

/* TS-0003 10.4: Credential-IDs of a key holder without an entity ID. */
#define SAEF_CREDID_KM "11-"   /* "11-<KmID>", a MAF client */
#define SAEF_CREDID_KPSA "12-" /* "12-<KpsaID>", a pre-provisioned key */

/* A number as a string literal, for messages: SAEF_STR(SAEF_MAF_FQDN_MAX). */
#define SAEF_STR_(x) #x
#define SAEF_STR(x) SAEF_STR_(x)

/* 128 and 256 were OpenSSL 1.1's PSK_MAX_IDENTITY_LEN and PSK_MAX_PSK_LEN;
   3.0 raised them, and saef keeps the older limits peers still have. */
_Static_assert(SAEF_KS_ID_MAX <= PSK_MAX_IDENTITY_LEN, "a stored identity fits OpenSSL's");
_Static_assert(SAEF_KS_KEY_MAX <= PSK_MAX_PSK_LEN, "a stored key fits OpenSSL's");
_Static_assert(SAEF_MAF_FQDN_MAX == SAEF_KS_ID_MAX - SAEF_KCID_HEX_LEN - 1,
               "HEX(KcID)@MAF-FQDN fits a stored identity");

#endif
