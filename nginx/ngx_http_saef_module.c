/*
 * ngx_http_saef_module - oneM2M security associations (TS-0003 8.2.2.1,
 * 8.2.2.3) in nginx's own TLS contexts, and the originator check of TS-0003
 * 7.2.1 on every request, answered by nginx before anything reaches the CSE
 * behind it. Directives and variables: ngx_http_saef_module(8).
 */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <saef.h>

typedef struct {
    ngx_flag_t enable;
    ngx_str_t conf;   /* saef_conf FILE; empty: what OpenSSL loaded */
    ngx_flag_t check; /* saef_originator_check */
    saef_ctx *saef;
} ngx_http_saef_srv_conf_t;

/* One saef_ctx per configuration file: each opens the LMDB store once per
   process, and LMDB wants one environment per process. */
typedef struct {
    ngx_str_t file;
    saef_ctx *saef;
} ngx_http_saef_shared_t;

typedef struct {
    ngx_array_t shared; /* ngx_http_saef_shared_t */
} ngx_http_saef_main_conf_t;

static ngx_int_t ngx_http_saef_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_saef_init(ngx_conf_t *cf);
static void *ngx_http_saef_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_saef_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_saef_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child);
static ngx_int_t ngx_http_saef_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
                                        uintptr_t data);

static ngx_command_t ngx_http_saef_commands[] = {
    {ngx_string("saef"), NGX_HTTP_SRV_CONF | NGX_CONF_FLAG, ngx_conf_set_flag_slot,
     NGX_HTTP_SRV_CONF_OFFSET, offsetof(ngx_http_saef_srv_conf_t, enable), NULL},
    {ngx_string("saef_conf"), NGX_HTTP_SRV_CONF | NGX_CONF_TAKE1, ngx_conf_set_str_slot,
     NGX_HTTP_SRV_CONF_OFFSET, offsetof(ngx_http_saef_srv_conf_t, conf), NULL},
    {ngx_string("saef_originator_check"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_CONF_FLAG,
     ngx_conf_set_flag_slot, NGX_HTTP_SRV_CONF_OFFSET, offsetof(ngx_http_saef_srv_conf_t, check),
     NULL},
    ngx_null_command};

static ngx_http_module_t ngx_http_saef_module_ctx = {
    ngx_http_saef_add_variables,    /* preconfiguration */
    ngx_http_saef_init,             /* postconfiguration */
    ngx_http_saef_create_main_conf, /* create main configuration */
    NULL,                           /* init main configuration */
    ngx_http_saef_create_srv_conf,  /* create server configuration */
    ngx_http_saef_merge_srv_conf,   /* merge server configuration */
    NULL,                           /* create location configuration */
    NULL                            /* merge location configuration */
};

/* clang-format off */
ngx_module_t ngx_http_saef_module = {
    NGX_MODULE_V1,
    &ngx_http_saef_module_ctx, /* module context */
    ngx_http_saef_commands,    /* module directives */
    NGX_HTTP_MODULE,           /* module type */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NGX_MODULE_V1_PADDING};
/* clang-format on */

enum { SAEF_VAR_ENTITY, SAEF_VAR_IDENTITY, SAEF_VAR_FRAMEWORK };

static ngx_http_variable_t ngx_http_saef_vars[] = {
    {ngx_string("saef_entity"), NULL, ngx_http_saef_variable, SAEF_VAR_ENTITY,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("saef_identity"), NULL, ngx_http_saef_variable, SAEF_VAR_IDENTITY,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("saef_framework"), NULL, ngx_http_saef_variable, SAEF_VAR_FRAMEWORK,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    ngx_http_null_variable};

static ngx_int_t ngx_http_saef_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
                                        uintptr_t data)
{
    static const char *const fw[] = {NULL, "psk", "maf", "maf-client"};
    SSL *ssl = r->connection->ssl != NULL ? r->connection->ssl->connection : NULL;
    const char *s = NULL;
    SAEF_FRAMEWORK f;

    if (ssl != NULL) {
        switch (data) {
        case SAEF_VAR_ENTITY: s = saef_ssl_peer_entity(ssl); break;
        case SAEF_VAR_IDENTITY: s = saef_ssl_identity(ssl); break;
        default:
            f = saef_ssl_framework(ssl);
            s = (unsigned)f < sizeof(fw) / sizeof(*fw) ? fw[f] : NULL;
        }
    }
    if (s == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }
    v->data = (u_char *)s;
    v->len = ngx_strlen(s);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    return NGX_OK;
}

static ngx_int_t ngx_http_saef_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t *var, *v;

    for (v = ngx_http_saef_vars; v->name.len; v++) {
        if ((var = ngx_http_add_variable(cf, &v->name, v->flags)) == NULL)
            return NGX_ERROR;
        var->get_handler = v->get_handler;
        var->data = v->data;
    }
    return NGX_OK;
}

static void *ngx_http_saef_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_saef_main_conf_t *mcf = ngx_pcalloc(cf->pool, sizeof(*mcf));

    if (mcf == NULL ||
        ngx_array_init(&mcf->shared, cf->pool, 2, sizeof(ngx_http_saef_shared_t)) != NGX_OK)
        return NULL;
    return mcf;
}

static void *ngx_http_saef_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_saef_srv_conf_t *conf = ngx_pcalloc(cf->pool, sizeof(*conf));

    if (conf == NULL)
        return NULL;
    conf->enable = NGX_CONF_UNSET;
    conf->check = NGX_CONF_UNSET;
    return conf;
}

static char *ngx_http_saef_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_saef_srv_conf_t *prev = parent, *conf = child;

    (void)cf;
    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->conf, prev->conf, "");
    ngx_conf_merge_value(conf->check, prev->check, 0);
    return NGX_CONF_OK;
}

static void ngx_http_saef_cleanup(void *data)
{
    saef_free(data);
}

/* saef's configuration for `file` (empty: the saef provider's section of
   the configuration OpenSSL loaded); NULL with the reason logged when it
   cannot be used, so nginx does not start without saef. */
static saef_ctx *ngx_http_saef_ctx(ngx_conf_t *cf, ngx_http_saef_main_conf_t *mcf, ngx_str_t *file)
{
    ngx_http_saef_shared_t *sh = mcf->shared.elts;
    ngx_pool_cleanup_t *cln;
    char err[512], *path;
    saef_conf *conf;
    saef_ks *ks;
    unsigned flags = SAEF_KS_RDONLY;
    saef_ctx *s = NULL;
    int rc;

    for (ngx_uint_t i = 0; i < mcf->shared.nelts; i++)
        if (sh[i].file.len == file->len && ngx_strncmp(sh[i].file.data, file->data, file->len) == 0)
            return sh[i].saef;
    if ((conf = saef_conf_new()) == NULL)
        return NULL;
    if (file->len > 0) {
        path = ngx_pnalloc(cf->pool, file->len + 1);
        if (path == NULL)
            goto done;
        ngx_memcpy(path, file->data, file->len);
        path[file->len] = '\0';
        rc = saef_conf_file_check(path, "saef", NULL, NULL, conf, err, sizeof(err));
        if (rc <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "saef: %s",
                               rc < 0 ? err
                                      : "the file configures no saef provider (see saef.cnf(5))");
            goto done;
        }
    } else if ((rc = saef_conf_from_provider(NULL, conf)) <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           rc < 0 ? "saef: the saef provider's configuration cannot be read"
                                  : "saef: OpenSSL's configuration loads no saef provider: "
                                    "name a file with \"saef_conf\" or set OPENSSL_CONF");
        goto done;
    }
    /* The store must open now (read-only, what every worker needs): a
       store that cannot be used stops nginx here, not every handshake. */
    if (saef_conf_int(conf, SAEF_CONF_STORE_GROUP_READ))
        flags |= SAEF_KS_GROUP_READ;
    if (saef_ks_open(saef_conf_str(conf, SAEF_CONF_STORE), flags, &ks) != SAEF_KS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "saef: %s", saef_ks_last_error(NULL));
        goto done;
    }
    saef_ks_close(ks);
    if ((s = saef_new(conf)) == NULL || (cln = ngx_pool_cleanup_add(cf->pool, 0)) == NULL ||
        (sh = ngx_array_push(&mcf->shared)) == NULL) {
        saef_free(s);
        s = NULL;
        goto done;
    }
    cln->handler = ngx_http_saef_cleanup;
    cln->data = s;
    sh->file = *file;
    sh->saef = s;
done:
    saef_conf_free(conf);
    return s;
}

/* A refusal answered by nginx: 403 with the oneM2M HTTP binding's headers
   (TS-0009: X-M2M-RSC, the request's X-M2M-RI echoed) and a debug body. */
static ngx_int_t ngx_http_saef_refuse(ngx_http_request_t *r, SAEF_ORIGIN rsc, ngx_str_t *ri)
{
    static u_char not_auth[] =
        "{\"m2m:dbg\":\"ORIGINATOR_NOT_AUTHENTICATED: the originator is not the entity bound "
        "to this security association\"}";
    static u_char no_sa[] =
        "{\"m2m:dbg\":\"SECURITY_ASSOCIATION_REQUIRED: this request needs a oneM2M security "
        "association\"}";
    ngx_table_elt_t *h;
    ngx_buf_t *b;
    ngx_chain_t out;
    ngx_int_t rc;

    if (ngx_http_discard_request_body(r) != NGX_OK)
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    if ((h = ngx_list_push(&r->headers_out.headers)) == NULL)
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    h->hash = 1;
    ngx_str_set(&h->key, "X-M2M-RSC");
    /* ngx_str_set is two statements */
    if (rsc == SAEF_ORIGIN_NO_ASSOCIATION) {
        ngx_str_set(&h->value, "4107");
    } else {
        ngx_str_set(&h->value, "4106");
    }
    if (ri != NULL) {
        if ((h = ngx_list_push(&r->headers_out.headers)) == NULL)
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        h->hash = 1;
        ngx_str_set(&h->key, "X-M2M-RI");
        h->value = *ri;
    }
    if ((b = ngx_calloc_buf(r->pool)) == NULL)
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    b->pos = rsc == SAEF_ORIGIN_NO_ASSOCIATION ? no_sa : not_auth;
    b->last = b->pos + (rsc == SAEF_ORIGIN_NO_ASSOCIATION ? sizeof(no_sa) : sizeof(not_auth)) - 1;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;
    out.buf = b;
    out.next = NULL;
    r->headers_out.status = NGX_HTTP_FORBIDDEN;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = b->last - b->pos;
    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only)
        return rc;
    return ngx_http_output_filter(r, &out);
}

static int ngx_http_saef_is_header(ngx_table_elt_t *h, const char *name, size_t len)
{
    return h->key.len == len && ngx_strncasecmp(h->key.data, (u_char *)name, len) == 0;
}

/* A CREATE of an <AE>: POST with "ty=2" among the Content-Type's
   parameters (TS-0009 6.4.3). */
static int ngx_http_saef_creates_ae(ngx_http_request_t *r)
{
    u_char *p, *end;

    if (r->method != NGX_HTTP_POST || r->headers_in.content_type == NULL)
        return 0;
    p = r->headers_in.content_type->value.data;
    end = p + r->headers_in.content_type->value.len;
    while ((p = ngx_strlchr(p, end, ';')) != NULL) {
        for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
            ;
        if (end - p >= 4 && ngx_strncasecmp(p, (u_char *)"ty=2", 4) == 0 &&
            (end - p == 4 || p[4] == ';' || p[4] == ' ' || p[4] == '\t'))
            return 1;
    }
    return 0;
}

/* TS-0003 7.2.1 on every request of a server with saef_originator_check,
   before rewrites, access modules or the proxy see it. */
static ngx_int_t ngx_http_saef_handler(ngx_http_request_t *r)
{
    ngx_http_saef_srv_conf_t *conf = ngx_http_get_module_srv_conf(r, ngx_http_saef_module);
    ngx_list_part_t *part;
    ngx_table_elt_t *h, *from = NULL, *ri = NULL;
    ngx_uint_t n = 0;
    SSL *ssl;
    SAEF_ORIGIN rsc;

    if (!conf->check)
        return NGX_DECLINED;
    for (part = &r->headers_in.headers.part; part != NULL; part = part->next) {
        h = part->elts;
        for (ngx_uint_t i = 0; i < part->nelts; i++) {
            if (ngx_http_saef_is_header(&h[i], "X-M2M-Origin", 12)) {
                from = &h[i];
                n++;
            } else if (ri == NULL && ngx_http_saef_is_header(&h[i], "X-M2M-RI", 8)) {
                ri = &h[i];
            }
        }
    }
    ssl = r->connection->ssl != NULL ? r->connection->ssl->connection : NULL;
    if (n > 1) {
        /* Which one would the CSE read? Neither is checked: refuse. */
        rsc = ssl != NULL && saef_ssl_peer_entity(ssl) != NULL ? SAEF_ORIGIN_NOT_AUTHENTICATED
                                                               : SAEF_ORIGIN_NO_ASSOCIATION;
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "saef: refused request rsc=%d: %ui X-M2M-Origin headers", (int)rsc, n);
    } else {
        rsc = saef_originator_check(ssl, from != NULL ? (const char *)from->value.data : NULL,
                                    from != NULL ? from->value.len : 0,
                                    ngx_http_saef_creates_ae(r) ? SAEF_ORIGIN_CREATE_AE : 0);
        if (rsc == SAEF_ORIGIN_OK)
            return NGX_DECLINED;
        if (ssl == NULL) /* saef logs what it saw on TLS; plain HTTP here */
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "saef: refused request rsc=4107: not over TLS");
    }
    ngx_http_finalize_request(r, ngx_http_saef_refuse(r, rsc, ri != NULL ? &ri->value : NULL));
    return NGX_DONE;
}

/* After every module merged its configuration: nginx's SSL contexts exist
   and carry nginx's own callbacks, which saef chains behind its own. */
static ngx_int_t ngx_http_saef_init(ngx_conf_t *cf)
{
    ngx_http_core_main_conf_t *cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    ngx_http_saef_main_conf_t *mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_saef_module);
    ngx_http_core_srv_conf_t **cscf = cmcf->servers.elts;
    ngx_http_saef_srv_conf_t *conf;
    ngx_http_ssl_srv_conf_t *sscf;
    ngx_http_handler_pt *h;
    ngx_uint_t checks = 0;

    for (ngx_uint_t i = 0; i < cmcf->servers.nelts; i++) {
        conf = cscf[i]->ctx->srv_conf[ngx_http_saef_module.ctx_index];
        sscf = cscf[i]->ctx->srv_conf[ngx_http_ssl_module.ctx_index];
        if (conf->check && !conf->enable) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "saef: \"saef_originator_check on\" needs \"saef on\" in server %V "
                          "(%s:%ui)",
                          &cscf[i]->server_name, cscf[i]->file_name, cscf[i]->line);
            return NGX_ERROR;
        }
        checks += conf->check;
        if (!conf->enable)
            continue;
        if (sscf == NULL || sscf->ssl.ctx == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "saef: \"saef on\" needs a server that listens with ssl and has an "
                          "ssl_certificate (nginx creates no TLS context without one) (%s:%ui)",
                          cscf[i]->file_name, cscf[i]->line);
            return NGX_ERROR;
        }
        if ((conf->saef = ngx_http_saef_ctx(cf, mcf, &conf->conf)) == NULL)
            return NGX_ERROR;
        if (!saef_ssl_ctx_server(sscf->ssl.ctx, conf->saef) ||
            !saef_ssl_ctx_set_servername_callback(sscf->ssl.ctx, ngx_http_ssl_servername, NULL)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "saef: cannot install the server role");
            return NGX_ERROR;
        }
    }
    if (checks == 0)
        return NGX_OK;
    if ((h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers)) == NULL)
        return NGX_ERROR;
    *h = ngx_http_saef_handler;
    return NGX_OK;
}
