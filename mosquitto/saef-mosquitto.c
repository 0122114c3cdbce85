/*
 * saef-mosquitto.so - oneM2M security associations in mosquitto 2.0 (TS-0003
 * 8.2.2.1, 8.2.2.3; the MQTT binding TS-0010), loaded with `plugin` in
 * mosquitto.conf. It answers the broker's PSK key requests from the saef
 * store under libsaef's rules, makes the username the bound entity, and
 * holds each client to the TS-0010 topics of that entity.
 *
 * mosquitto shows the plugin no SSL: the association is known from the key
 * request on, and proven by the client's first MQTT packet (which only an
 * established TLS session carries); that is when it is logged.
 */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saef.h"
#include "saef_common.h"
#include "topics.h"

#define EXPORT __attribute__((visibility("default")))

/* What the plugin knows of one client; found by its struct mosquitto. */
typedef struct binding {
    struct binding *next;
    const struct mosquitto *client;
    int proven; /* the client spoke MQTT over the session: logged */
    SAEF_FRAMEWORK fw;
    char identity[SAEF_KS_ID_MAX + 1];
    char entity[SAEF_KS_ENTITY_MAX + 16];
    saef_mq_entity topics;
} binding;

static struct {
    mosquitto_plugin_id_t *id;
    saef_ctx *s;
    int topics;      /* enforce the TS-0010 rules */
    int other_defer; /* topics outside /oneM2M/: other plugins decide */
    binding **tab;
    size_t size, count;
} g;

/* ---- clients ------------------------------------------------------------ */

static size_t slot(const struct mosquitto *client)
{
    uintptr_t h = (uintptr_t)client;

    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 7) & (g.size - 1);
}

static binding *find(const struct mosquitto *client)
{
    for (binding *b = g.tab[slot(client)]; b != NULL; b = b->next)
        if (b->client == client)
            return b;
    return NULL;
}

static void forget(const struct mosquitto *client)
{
    for (binding **pp = &g.tab[slot(client)]; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->client == client) {
            binding *b = *pp;
            *pp = b->next;
            free(b);
            g.count--;
            return;
        }
}

/* Twice the buckets when there are more clients than buckets. */
static void grow(void)
{
    binding **old = g.tab;
    size_t n = g.size;
    binding **tab = calloc(n * 2, sizeof(*tab));

    if (tab == NULL)
        return; /* longer chains, still correct */
    g.tab = tab;
    g.size = n * 2;
    for (size_t i = 0; i < n; i++)
        for (binding *b = old[i], *next; b != NULL; b = next) {
            next = b->next;
            b->next = g.tab[slot(b->client)];
            g.tab[slot(b->client)] = b;
        }
    free(old);
}

/* Client IDs and topics come from the network: escaped (saef_escape). */
static const char *shown(const char *in, char *out, size_t outlen)
{
    return saef_escape(in != NULL ? in : "", in != NULL ? strlen(in) : 0, out, outlen);
}

static const char *address(const struct mosquitto *client)
{
    const char *a = mosquitto_client_address(client);

    return a != NULL ? a : "-";
}

/* The client's first MQTT packet: the key was proven. The username becomes
   the bound entity (with use_identity_as_username mosquitto set it to the
   identity after the key request; without it, to what the client sent). */
static void prove(struct mosquitto *client, binding *b)
{
    const char *user = mosquitto_client_username(client);
    char id[96], name[4 * (SAEF_KS_ENTITY_MAX + 16)];

    if (b->proven)
        return;
    b->proven = 1;
    if ((user == NULL || strcmp(user, b->entity) != 0) &&
        mosquitto_set_username(client, b->entity) != MOSQ_ERR_SUCCESS)
        saef_log_printf(g.s, SAEF_LEVEL_ERROR, "cannot set the username of client \"%s\"",
                        shown(mosquitto_client_id(client), id, sizeof(id)));
    user = mosquitto_client_username(client);
    saef_log_printf(g.s, SAEF_LEVEL_INFO,
                    "association accepted identity=\"%s\" entity=\"%s\" framework=%s peer=%s "
                    "client=\"%s\" user=\"%s\" via=mosquitto",
                    b->identity, b->entity, b->fw == SAEF_FW_MAF ? "maf" : "psk", address(client),
                    shown(mosquitto_client_id(client), id, sizeof(id)),
                    shown(user, name, sizeof(name)));
}

/* ---- events ------------------------------------------------------------- */

static int on_psk_key(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_psk_key *ed = event_data;
    unsigned char key[128];
    char entity[SAEF_KS_ENTITY_MAX + 16];
    size_t len = sizeof(key);
    SAEF_FRAMEWORK fw = SAEF_FW_NONE;
    binding *b = NULL;
    int ok;

    (void)event, (void)userdata;
    forget(ed->client); /* a new handshake: nothing holds from before */
    ok = saef_psk_lookup(g.s, ed->identity, NULL, mosquitto_client_address(ed->client), key, &len,
                         entity, sizeof(entity), &fw);
    if (ok && strlen(ed->identity) < sizeof(b->identity) && (b = calloc(1, sizeof(*b))) != NULL) {
        b->client = ed->client;
        b->fw = fw;
        strcpy(b->identity, ed->identity);
        strcpy(b->entity, entity);
        if (!saef_mq_entity_init(&b->topics, entity))
            saef_log_printf(g.s, SAEF_LEVEL_WARNING,
                            "entity \"%s\" cannot appear in a topic: no oneM2M topic is its own",
                            entity);
        if (++g.count > g.size)
            grow();
        b->next = g.tab[slot(ed->client)];
        g.tab[slot(ed->client)] = b;
    } else if (ok) {
        len = 0; /* no room to remember it: the handshake fails */
    }
    /* A refused identity gets a random key (saef_psk_lookup's answer), so the
       client sees a wrong key; none (len 0) ends the handshake. */
    if (len == 0 || (size_t)ed->max_key_len < 2 * len) {
        OPENSSL_cleanse(key, sizeof(key));
        return MOSQ_ERR_AUTH;
    }
    for (size_t i = 0; i < len; i++) {
        static const char hex[] = "0123456789ABCDEF";
        ed->key[2 * i] = hex[key[i] >> 4];
        ed->key[2 * i + 1] = hex[key[i] & 15];
    }
    ed->key[2 * len] = '\0';
    OPENSSL_cleanse(key, sizeof(key));
    return MOSQ_ERR_SUCCESS;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_basic_auth *ed = event_data;
    binding *b = find(ed->client);

    (void)event, (void)userdata;
    if (b == NULL)
        return MOSQ_ERR_PLUGIN_DEFER; /* not a saef client: others decide */
    prove(ed->client, b);
    return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    static const char *const names[] = {"publish", "subscribe", "deliver"};
    struct mosquitto_evt_acl_check *ed = event_data;
    binding *b = find(ed->client);
    SAEF_MQ_ACCESS access;
    SAEF_MQ_VERDICT v;
    char topic[512], id[96];

    (void)event, (void)userdata;
    if (b == NULL)
        return MOSQ_ERR_PLUGIN_DEFER;
    prove(ed->client, b);
    switch (ed->access) {
    case MOSQ_ACL_WRITE: access = SAEF_MQ_PUBLISH; break;
    case MOSQ_ACL_SUBSCRIBE: access = SAEF_MQ_SUBSCRIBE; break;
    case MOSQ_ACL_READ: access = SAEF_MQ_DELIVER; break;
    default: return MOSQ_ERR_SUCCESS; /* unsubscribing takes nothing */
    }
    if (!g.topics)
        return MOSQ_ERR_PLUGIN_DEFER;
    v = saef_mq_topic(&b->topics, access, ed->topic);
    if (v == SAEF_MQ_OWN)
        return MOSQ_ERR_SUCCESS;
    if (v == SAEF_MQ_NOT_ONEM2M && g.other_defer)
        return MOSQ_ERR_PLUGIN_DEFER;
    /* A delivery refused follows a subscription granted by someone else:
       only worth a debug line. */
    saef_log_printf(g.s, access == SAEF_MQ_DELIVER ? SAEF_LEVEL_DEBUG : SAEF_LEVEL_INFO,
                    "refused topic entity=\"%s\" access=%s topic=\"%s\" client=\"%s\" peer=%s",
                    b->entity, names[access], shown(ed->topic, topic, sizeof(topic)),
                    shown(mosquitto_client_id(ed->client), id, sizeof(id)), address(ed->client));
    return MOSQ_ERR_ACL_DENIED;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_disconnect *ed = event_data;

    (void)event, (void)userdata;
    forget(ed->client);
    return MOSQ_ERR_SUCCESS;
}

/* ---- setup -------------------------------------------------------------- */

/* plugin_opt_conf FILE (the saef section of an openssl.cnf), then each
   plugin_opt_<saef.cnf key>, then the plugin's own. */
static int configure(saef_conf *conf, struct mosquitto_opt *opts, int n)
{
    char err[256] = "";

    g.topics = 1;
    for (int i = 0; i < n; i++)
        if (strcmp(opts[i].key, "conf") == 0 &&
            saef_conf_file_check(opts[i].value, "saef", NULL, NULL, conf, err, sizeof(err)) != 1) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "saef: plugin_opt_conf %s: %s", opts[i].value,
                                 err[0] ? err : "no saef provider section in it");
            return 0;
        }
    for (int i = 0; i < n; i++) {
        const char *k = opts[i].key, *v = opts[i].value;
        if (strcmp(k, "conf") == 0)
            continue;
        if (strcmp(k, "topics") == 0 && (strcmp(v, "onem2m") == 0 || strcmp(v, "off") == 0)) {
            g.topics = strcmp(v, "onem2m") == 0;
        } else if (strcmp(k, "other_topics") == 0 &&
                   (strcmp(v, "deny") == 0 || strcmp(v, "defer") == 0)) {
            g.other_defer = strcmp(v, "defer") == 0;
        } else if (strcmp(k, "topics") == 0 || strcmp(k, "other_topics") == 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "saef: plugin_opt_%s: \"%s\" is not one of %s", k, v,
                                 strcmp(k, "topics") == 0 ? "onem2m, off" : "deny, defer");
            return 0;
        } else if (!saef_conf_set(conf, k, v, err, sizeof(err))) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "saef: plugin_opt_%s: %s", k, err);
            return 0;
        }
    }
    return 1;
}

EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                 struct mosquitto_opt *options, int option_count)
{
    saef_conf *conf = saef_conf_new();

    (void)userdata;
    g.id = identifier;
    if (conf == NULL)
        return MOSQ_ERR_NOMEM;
    if (!configure(conf, options, option_count) || (g.s = saef_new(conf)) == NULL) {
        saef_conf_free(conf);
        return MOSQ_ERR_INVAL;
    }
    saef_conf_free(conf);
    g.size = 1024;
    if ((g.tab = calloc(g.size, sizeof(*g.tab))) == NULL)
        return MOSQ_ERR_NOMEM;
    /* The store was opened by saef_new, before mosquitto drops privileges. */
    if (mosquitto_callback_register(g.id, MOSQ_EVT_PSK_KEY, on_psk_key, NULL, NULL) ||
        mosquitto_callback_register(g.id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL) ||
        mosquitto_callback_register(g.id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL) ||
        mosquitto_callback_register(g.id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL))
        return MOSQ_ERR_UNKNOWN;
    return MOSQ_ERR_SUCCESS;
}

EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    (void)userdata, (void)options, (void)option_count;
    mosquitto_callback_unregister(g.id, MOSQ_EVT_PSK_KEY, on_psk_key, NULL);
    mosquitto_callback_unregister(g.id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(g.id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    mosquitto_callback_unregister(g.id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
    for (size_t i = 0; g.tab != NULL && i < g.size; i++)
        for (binding *b = g.tab[i], *next; b != NULL; b = next) {
            next = b->next;
            free(b);
        }
    free(g.tab);
    saef_free(g.s);
    memset(&g, 0, sizeof(g));
    return MOSQ_ERR_SUCCESS;
}
