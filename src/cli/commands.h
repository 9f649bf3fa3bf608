/* One function per subcommand; each returns the process exit status (0 ok, 1 failure,
 * 2 bad usage, 130 interrupted). */
#ifndef DAECL_CLI_COMMANDS_H
#define DAECL_CLI_COMMANDS_H

int cmd_model(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_denoise(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_data(int argc, char **argv);

/* Print "dae-cl CMD: <detail>" for the last failure and return the exit status for it. */
int cli_report(const char *cmd, int status);
/* The --device flag of every command that opens one. */
#define CLI_DEVICE_META "D|P:D|TYPE"
#define CLI_DEVICE_HELP "OpenCL device: index D, P:D, or the first of a type: gpu | cpu | accel"

/* Open the device chosen by --platform/--device (either may be NULL) or DAECL_DEVICE/auto,
 * and print which one was chosen (to stderr when quiet is set). */
struct dc_device;
int cli_open_device(const char *cmd, const char *platform, const char *device, int quiet,
                    struct dc_device **out);

/* The -o PATH of a command that writes `ext` files (".png"): the format comes from the name, so
 * another extension is refused (a name without one, /dev/null or a FIFO, is written as `ext`);
 * "-" (stdout) passes only where stdout_ok. Returns 0, or prints one line and returns 2. */
int cli_check_output(const char *cmd, const char *path, const char *ext, int stdout_ok);

/* PoCL shows zero devices, silently, when it cannot write its cache: point it at ~/.cache/pocl
 * unless POCL_CACHE_DIR is set. */
void cli_ensure_pocl_cache_dir(void);

#endif
