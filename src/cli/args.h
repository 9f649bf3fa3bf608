/* Command-line flags: a table of options per subcommand, parsed as --name VALUE or
 * --name=VALUE, with --help text generated from the same table. */
#ifndef DAECL_CLI_ARGS_H
#define DAECL_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

/* Program name in messages and help: "dae-cl" unless a tool sets its own. */
extern const char *args_program;

typedef enum arg_type { ARG_FLAG, ARG_INT, ARG_U64, ARG_FLOAT, ARG_STRING } arg_type;

typedef struct arg_opt {
    const char *name;  /* without the dashes */
    arg_type type;
    void *ptr;         /* int* (FLAG, INT), uint64_t*, float*, const char** */
    const char *meta;  /* value placeholder in help, e.g. "N" */
    const char *help;  /* one line; the current value is shown as the default unless the line
                          says "(default ...)" itself */
    double min, max;   /* numeric range (inclusive); min > max means unchecked */
    int given;         /* set by the parser */
} arg_opt;

/* Parse argv[first..]. Positional arguments are collected into pos (up to max_pos). Returns 0,
 * or prints one line "dae-cl CMD: problem" to stderr and returns 2; returns 1 after --help. */
int args_parse(const char *cmd, arg_opt *opts, int argc, char **argv, int first, const char **pos,
               int max_pos, int *npos, const char *usage);
void args_help(const char *cmd, const arg_opt *opts, const char *usage, FILE *out);
arg_opt *args_find(arg_opt *opts, const char *name);

#endif
