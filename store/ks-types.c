/* The store's type names and error texts. */
#include "ks-types.h"

#include <string.h>

const char *saef_ks_type_name(SAEF_KS_TYPE type)
{
    switch ((int)type) {
    case SAEF_KS_KPSA: return "kpsa";
    case SAEF_KS_KM: return "km";
    case SAEF_KS_KC: return "kc";
    case SAEF_KS_CREG: return SAEF_KS_CREG_NAME;
    }
    return NULL;
}

/* Only the public types: creg records are saef-mafd's, never asked for by name. */
SAEF_KS_TYPE saef_ks_type_from_name(const char *name)
{
    for (int t = SAEF_KS_KPSA; t <= SAEF_KS_KC; t++)
        if (name != NULL && strcmp(name, saef_ks_type_name((SAEF_KS_TYPE)t)) == 0)
            return (SAEF_KS_TYPE)t;
    return (SAEF_KS_TYPE)0;
}

const char *saef_ks_strerror(SAEF_KS_ERR err)
{
    switch (err) {
    case SAEF_KS_OK: return "ok";
    case SAEF_KS_ENOTFOUND: return "not found";
    case SAEF_KS_EEXISTS: return "already exists";
    case SAEF_KS_EINVAL: return "invalid argument";
    case SAEF_KS_EPERM: return "permission problem";
    case SAEF_KS_ENOSTORE: return "no such store";
    case SAEF_KS_ECORRUPT: return "store corrupt";
    case SAEF_KS_EIO: return "store error";
    }
    return "unknown error";
}
