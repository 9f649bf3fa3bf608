/* JSON writer (see json.h). */
#include "cli/json.h"

#include <math.h>
#include <stdlib.h>

void json_begin(json_writer *w, FILE *out) { *w = (json_writer){.out = out}; }

static void indent(json_writer *w)
{
    for (int i = 0; i < w->depth; i++) fputs("  ", w->out);
}

/* Comma, newline and indentation before a value, then its key. */
static void start_value(json_writer *w, const char *key)
{
    if (w->depth > 0) {
        fputs(w->count[w->depth - 1]++ ? ",\n" : "\n", w->out);
        indent(w);
    }
    if (key) {
        json_write_string(w->out, key);
        fputs(": ", w->out);
    }
}

static void open_level(json_writer *w, const char *key, char open_char, char close_char)
{
    start_value(w, key);
    fputc(open_char, w->out);
    if (w->depth < JSON_MAX_DEPTH) {
        w->close[w->depth] = close_char;
        w->count[w->depth] = 0;
    }
    w->depth++;
}

void json_object(json_writer *w, const char *key) { open_level(w, key, '{', '}'); }
void json_array(json_writer *w, const char *key) { open_level(w, key, '[', ']'); }

void json_end(json_writer *w)
{
    if (w->depth == 0) return;
    w->depth--;
    int level = w->depth < JSON_MAX_DEPTH ? w->depth : JSON_MAX_DEPTH - 1;
    if (w->count[level]) {
        fputc('\n', w->out);
        indent(w);
    }
    fputc(w->close[level], w->out);
    if (w->depth == 0) fputc('\n', w->out);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one. */
static int utf8_length(const unsigned char *s)
{
    int n;
    unsigned cp;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) n = 2, cp = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0) n = 3, cp = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0) n = 4, cp = s[0] & 0x07;
    else return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    /* overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8 */
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return n;
}

void json_write_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        int n = utf8_length(p);
        if (n == 0) {
            fputs("\\ufffd", out);
            p++;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, (size_t)n, out);
            p += n;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        default:
            if (c < 0x20 || c == 0x7F) fprintf(out, "\\u%04x", c);
            else fputc(c, out);
        }
        p++;
    }
    fputc('"', out);
}

void json_format_number(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "null");
        return;
    }
    /* Whole numbers in full (2000, not 2e+03) while a double holds them exactly. */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f", v);
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) return;
    }
}

void json_string(json_writer *w, const char *key, const char *value)
{
    start_value(w, key);
    if (value) json_write_string(w->out, value);
    else fputs("null", w->out);
}

void json_number(json_writer *w, const char *key, double value)
{
    char buf[40];
    json_format_number(value, buf, sizeof buf);
    start_value(w, key);
    fputs(buf, w->out);
}

void json_int(json_writer *w, const char *key, long long value)
{
    start_value(w, key);
    fprintf(w->out, "%lld", value);
}

void json_uint(json_writer *w, const char *key, unsigned long long value)
{
    start_value(w, key);
    fprintf(w->out, "%llu", value);
}

void json_bool(json_writer *w, const char *key, int value)
{
    start_value(w, key);
    fputs(value ? "true" : "false", w->out);
}

void json_null(json_writer *w, const char *key)
{
    start_value(w, key);
    fputs("null", w->out);
}
