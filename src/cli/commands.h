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

/* Print "dae-cl CMD: <detail>" for the last failure and return the exit status for it. */
int cli_report(const char *cmd, int status);
/* Open the device chosen by --platform/--device (either may be NULL) or DAECL_DEVICE/auto,
 * and print which one was chosen (to stderr when quiet is set). */
struct dc_device;
int cli_open_device(const char *cmd, const char *platform, const char *device, int quiet,
                    struct dc_device **out);

/* PoCL shows zero devices, silently, when it cannot write its cache: point it at ~/.cache/pocl
 * unless POCL_CACHE_DIR is set. */
void cli_ensure_pocl_cache_dir(void);

#endif
