/* The TS-0010 topic rules for an entity bound by a security association.
   Errors: a verdict, or 1 / 0. */
#ifndef SAEF_MQ_TOPICS_H
#define SAEF_MQ_TOPICS_H

#include <stddef.h>

typedef enum {
    SAEF_MQ_PUBLISH,   /* a message the client sends */
    SAEF_MQ_SUBSCRIBE, /* a topic filter the client asks for */
    SAEF_MQ_DELIVER    /* a message about to be sent to the client */
} SAEF_MQ_ACCESS;

typedef enum {
    SAEF_MQ_OWN,       /* a topic of the entity's own */
    SAEF_MQ_FOREIGN,   /* a oneM2M topic of another entity, or malformed */
    SAEF_MQ_NOT_ONEM2M /* not under /oneM2M/ */
} SAEF_MQ_VERDICT;

/* How an entity appears in topic levels: its ID with '/' as ':', with and
   without its leading '/'s; cse when it is a CSE-ID ("/X", "//SP/X"). */
typedef struct {
    char enc[2][300];
    int cse;
} saef_mq_entity;

/* 0 if the entity ID is too long for a topic level. */
int saef_mq_entity_init(saef_mq_entity *e, const char *id);
/* What topic (a filter for SAEF_MQ_SUBSCRIBE) is to entity e. */
SAEF_MQ_VERDICT saef_mq_topic(const saef_mq_entity *e, SAEF_MQ_ACCESS access, const char *topic);

#endif
