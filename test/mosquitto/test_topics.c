/* The TS-0010 topic rules of saef-mosquitto.so, without a broker. */
#include "unit.h"
#include <string.h>

#include "topics.h"

static SAEF_MQ_VERDICT v(const char *id, SAEF_MQ_ACCESS a, const char *topic)
{
    saef_mq_entity e;

    CU_ASSERT_FATAL(saef_mq_entity_init(&e, id));
    return saef_mq_topic(&e, a, topic);
}

static void test_ae_publishes_requests_as_originator_responses_as_receiver(void)
{
    const char *ae = "/sp.example.com/C-dev1";

    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/req/:sp.example.com:C-dev1/:in-cse/json"),
                    SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/req/sp.example.com:C-dev1/in-cse/cbor"),
                    SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/resp/:in-cse:x/:sp.example.com:C-dev1/json"),
                    SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/reg_req/:sp.example.com:C-dev1/:in-cse/json"),
                    SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/req/:sp.example.com:C-dev2/:in-cse/json"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/resp/:sp.example.com:C-dev1/:in-cse/json"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/reg_resp/:sp.example.com:C-dev1/:in-cse/json"),
                    SAEF_MQ_FOREIGN);
    /* a prefix or a longer ID is someone else; an AE acts for nobody */
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/req/:sp.example.com:C-dev10/x/json"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/req/:sp.example.com:C-dev1:x/y/json"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/req/:sp.example.com:C-dev1/x/json/more"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/req/:sp.example.com:C-dev1/x"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "/oneM2M/notify/:sp.example.com:C-dev1/x/json"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "oneM2M/req/:sp.example.com:C-dev1/x/json"),
                    SAEF_MQ_NOT_ONEM2M);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_PUBLISH, "$SYS/broker/uptime"), SAEF_MQ_NOT_ONEM2M);
}

static void test_subscriptions_only_to_own_requests_and_responses(void)
{
    const char *ae = "C-dev1";

    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/resp/C-dev1/+/json"), SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/resp/C-dev1/#"), SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/req/+/C-dev1/#"), SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/reg_resp/C-dev1/+/+"), SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/resp/+/+/json"), SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/resp/#"), SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/req/C-dev1/+/json"), SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/req/+/#"), SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "/oneM2M/#"), SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_SUBSCRIBE, "#"), SAEF_MQ_NOT_ONEM2M);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_DELIVER, "/oneM2M/resp/C-dev1/in-cse/json"), SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v(ae, SAEF_MQ_DELIVER, "/oneM2M/resp/C-dev2/in-cse/json"), SAEF_MQ_FOREIGN);
}

static void test_cse_acts_for_the_aes_it_serves(void)
{
    CU_ASSERT_EQUAL(v("/mn-cse", SAEF_MQ_PUBLISH, "/oneM2M/req/:mn-cse:Cae1/:in-cse/json"),
                    SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v("/mn-cse", SAEF_MQ_PUBLISH, "/oneM2M/req/mn-cse:Cae1/in-cse/json"),
                    SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v("/mn-cse", SAEF_MQ_PUBLISH, "/oneM2M/req/:mn-cse/:in-cse/json"), SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v("//sp/mn-cse", SAEF_MQ_SUBSCRIBE, "/oneM2M/resp/::sp:mn-cse:Cae1/+/json"),
                    SAEF_MQ_OWN);
    CU_ASSERT_EQUAL(v("/mn-cse", SAEF_MQ_PUBLISH, "/oneM2M/req/:mn-cse2:Cae1/:in-cse/json"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v("/mn-cse", SAEF_MQ_PUBLISH, "/oneM2M/req/:mn-cse:/:in-cse/json"),
                    SAEF_MQ_FOREIGN);
    CU_ASSERT_EQUAL(v("/mn-cse", SAEF_MQ_PUBLISH, "/oneM2M/req/:other:Cae1/:in-cse/json"),
                    SAEF_MQ_FOREIGN);
    /* an AE-ID under a CSE does not make the AE a CSE */
    CU_ASSERT_EQUAL(v("/mn-cse/Cae1", SAEF_MQ_PUBLISH, "/oneM2M/req/:mn-cse:Cae1:x/a/json"),
                    SAEF_MQ_FOREIGN);
}

static void test_entity_that_cannot_be_a_topic_level(void)
{
    saef_mq_entity e;

    CU_ASSERT_FALSE(saef_mq_entity_init(&e, ""));
    CU_ASSERT_FALSE(saef_mq_entity_init(&e, "C+x"));
    CU_ASSERT_FALSE(saef_mq_entity_init(&e, "C#"));
}

int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_ae_publishes_requests_as_originator_responses_as_receiver),
        SAEF_TEST(test_subscriptions_only_to_own_requests_and_responses),
        SAEF_TEST(test_cse_acts_for_the_aes_it_serves),
        SAEF_TEST(test_entity_that_cannot_be_a_topic_level),
        CU_TEST_INFO_NULL,
    };

    return saef_unit_run("mosquitto_topics", tests, NULL, NULL, argc, argv);
}
