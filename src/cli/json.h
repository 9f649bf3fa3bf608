/* A small JSON writer for the commands' --json output: one document, pretty-printed with two
 * spaces, commas placed by the writer (never a trailing one), strings escaped (control
 * characters as \uXXXX, invalid UTF-8 bytes as U+FFFD), numbers with the fewest digits that read
 * back to the same double, and NaN/infinity (which JSON lacks) as null.
 *
 *   json_writer w;
 *   json_begin(&w, stdout);
 *   json_object(&w, NULL);               // the document
 *   json_string(&w, "model", path);
 *   json_array(&w, "devices");
 *   json_object(&w, NULL); json_int(&w, "platform", 0); json_end(&w);
 *   json_end(&w);                        // devices
 *   json_end(&w);                        // the document, then a newline
 *
 * Inside an object every value needs a key; inside an array (and for the document) key is NULL. */
#ifndef DAECL_CLI_JSON_H
#define DAECL_CLI_JSON_H

#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct json_writer {
    FILE *out;
    int depth;
    int count[JSON_MAX_DEPTH]; /* values written so far at each open level */
    char close[JSON_MAX_DEPTH]; /* '}' or ']' */
} json_writer;

void json_begin(json_writer *w, FILE *out);
void json_object(json_writer *w, const char *key);
void json_array(json_writer *w, const char *key);
/* Close the innermost object or array; closing the document ends the line. */
void json_end(json_writer *w);
void json_string(json_writer *w, const char *key, const char *value); /* NULL writes null */
void json_number(json_writer *w, const char *key, double value);
void json_int(json_writer *w, const char *key, long long value);
void json_uint(json_writer *w, const char *key, unsigned long long value);
void json_bool(json_writer *w, const char *key, int value);
void json_null(json_writer *w, const char *key);

/* The escaped form of s, quotes included, into out (for tests and one-off use). */
void json_write_string(FILE *out, const char *s);
/* The shortest "%.Ng" (N 1..17) of v that strtod reads back as v; "null" if not finite. */
void json_format_number(double v, char *buf, size_t len);

#endif
