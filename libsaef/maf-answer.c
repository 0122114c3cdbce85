/* Entity A's checks on what the MAF answers. */
#include "maf-answer.h"
#include "saef_common.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int saef_maf_check_registration(const char *body, const saef_maf_reg_request *req, int64_t now,
                                int64_t *expires, char *why, size_t whylen)
{
    json_t *resp = body != NULL ? json_loads(body, 0, NULL) : NULL, *targets;
    const char *rel, *rexp, *src, *admin, *target;
    json_int_t suid;
    int ok = 0;

    if (json_unpack(resp, "{s:s, s:s, s:s, s:s, s:I, s:o}", "relativeKeyID", &rel, "expirationTime",
                    &rexp, "sourceMAFClientID", &src, "adminFQDN", &admin, "SUID", &suid,
                    "targetIDs", &targets) != 0) {
        snprintf(why, whylen, "the MAF's answer lacks mandatory fields");
        goto out;
    }
    target = json_string_value(json_array_get(targets, 0));
    if (strcasecmp(rel, req->hex) != 0) {
        snprintf(why, whylen, "the MAF's RelativeKeyID differs from this side's key export");
        goto out;
    }
    if (!saef_time_parse(rexp, 0, expires) || *expires <= now) {
        snprintf(why, whylen, "the MAF's expirationTime %.64s is not in the future", rexp);
        goto out;
    }
    if (suid != SAEF_SUID_MAF_SAEF || json_array_size(targets) != 1 || target == NULL ||
        strcmp(target, req->target) != 0 || strcmp(admin, req->admin) != 0) {
        snprintf(why, whylen, "the MAF changed the SUID, targetIDs or adminFQDN");
        goto out;
    }
    if (req->self[0] != '\0' && strcmp(src, req->self) != 0) {
        snprintf(why, whylen, "the MAF names this client %.256s, not %s", src, req->self);
        goto out;
    }
    ok = 1;
out:
    json_decref(resp);
    return ok;
}

int saef_maf_answer_expiry(const char *body, int64_t *expires)
{
    json_t *j = body != NULL ? json_loads(body, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "expirationTime"));
    int ok = e != NULL && saef_time_parse(e, 0, expires);

    json_decref(j);
    return ok;
}

void saef_maf_answer_error(const char *body, char *buf, size_t len)
{
    json_t *j = body != NULL ? json_loads(body, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "error"));

    snprintf(buf, len, "%s", msg != NULL ? msg : "(no reason)");
    json_decref(j);
}
