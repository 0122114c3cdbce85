/* Internal to saef-maf (and its fuzz target): the checks on the MAF's answers.
   Errors: 1 if acceptable, 0 if not (with the reason in why where asked). */
#ifndef SAEF_MAF_ANSWER_H
#define SAEF_MAF_ANSWER_H

#include <stddef.h>
#include <stdint.h>

/* What Entity A asked for in a Key Registration. */
typedef struct {
    const char *hex;    /* HEX(KcID) from this side's key export */
    const char *target; /* IdB */
    const char *admin;  /* adminFQDN */
    const char *self;   /* this client's MAF Client ID, or "" when unknown */
} saef_maf_reg_request;

/*
 * The Key Registration answer (TS-0003 8.3.9.9.5): every returned value is
 * checked against the request. 1 with *expires set, or 0 with why (a
 * message for the user) filled.
 */
int saef_maf_check_registration(const char *body, const saef_maf_reg_request *req, int64_t now,
                                int64_t *expires, char *why, size_t whylen);
/* The expirationTime an update answer carries: 1 with *expires set, 0 if none or bad. */
int saef_maf_answer_expiry(const char *body, int64_t *expires);
/* The "error" text of an error answer, or "(no reason)", into buf. */
void saef_maf_answer_error(const char *body, char *buf, size_t len);

#endif
