/* The --json writer (src/cli/json.c): exact documents for nesting and commas (empty object and
 * array, no trailing comma), escaping of quotes, backslashes, control characters and invalid
 * UTF-8 (valid multi-byte UTF-8 kept), numbers that read back bit-exactly for random doubles,
 * non-finite numbers as null. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/json.h"
#include "test.h"

static void expect_string(const char *in, const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_write_string(f, in);
    fclose(f);
    CHECK(strcmp(buf, want) == 0, "escape: got %s, want %s", buf, want);
    free(buf);
}

int main(void)
{
    uint64_t rng = test_seed();
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    f = open_memstream(&buf, &len);
    json_writer w;
    json_begin(&w, f);
    json_object(&w, NULL);
    json_string(&w, "name", "a \"b\"");
    json_array(&w, "list");
    json_int(&w, NULL, -3);
    json_uint(&w, NULL, 18446744073709551615ull);
    json_object(&w, NULL);
    json_end(&w);
    json_array(&w, NULL);
    json_end(&w);
    json_end(&w);
    json_bool(&w, "yes", 1);
    json_null(&w, "nothing");
    json_number(&w, "nan", NAN);
    json_number(&w, "tenth", 0.1);
    json_string(&w, "null_string", NULL);
    json_end(&w);
    fclose(f);
    const char *want = "{\n"
                       "  \"name\": \"a \\\"b\\\"\",\n"
                       "  \"list\": [\n"
                       "    -3,\n"
                       "    18446744073709551615,\n"
                       "    {},\n"
                       "    []\n"
                       "  ],\n"
                       "  \"yes\": true,\n"
                       "  \"nothing\": null,\n"
                       "  \"nan\": null,\n"
                       "  \"tenth\": 0.1,\n"
                       "  \"null_string\": null\n"
                       "}\n";
    CHECK(strcmp(buf, want) == 0, "document:\n%s\nwant:\n%s", buf, want);
    free(buf);

    /* An empty document object. */
    buf = NULL;
    f = open_memstream(&buf, &len);
    json_begin(&w, f);
    json_object(&w, NULL);
    json_end(&w);
    fclose(f);
    CHECK(strcmp(buf, "{}\n") == 0, "empty: %s", buf);
    free(buf);

    expect_string("back\\slash", "\"back\\\\slash\"");
    expect_string("tab\tnl\ncr\r\x01\x1f\x7f", "\"tab\\tnl\\ncr\\r\\u0001\\u001f\\u007f\"");
    expect_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    expect_string("bad \xff byte", "\"bad \\ufffd byte\"");
    expect_string("cut \xc3", "\"cut \\ufffd\"");
    expect_string("overlong \xc0\xaf", "\"overlong \\ufffd\\ufffd\"");
    expect_string("surrogate \xed\xa0\x80", "\"surrogate \\ufffd\\ufffd\\ufffd\"");

    /* Numbers: shortest text that reads back to the same double. */
    char num[40];
    for (int i = 0; i < 10000; i++) {
        double v;
        uint64_t bits = test_rand_u64(&rng);
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) v = test_uniform(&rng, -1e6, 1e6);
        json_format_number(v, num, sizeof num);
        CHECK(strtod(num, NULL) == v, "%.17g written as %s", v, num);
        if (strtod(num, NULL) != v) break;
    }
    json_format_number(20.58, num, sizeof num);
    CHECK(strcmp(num, "20.58") == 0, "20.58 as %s", num);
    json_format_number(INFINITY, num, sizeof num);
    CHECK(strcmp(num, "null") == 0, "inf as %s", num);
    json_format_number((double)0.001f, num, sizeof num);
    CHECK(strtod(num, NULL) == (double)0.001f, "float 0.001 as %s", num);
    TEST_MAIN_END();
}
