/* Device listing and selection, including the "no OpenCL platform at all" case, which runs in
 * a child process with OCL_ICD_VENDORS pointing at an empty directory. */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daecl/device.h"
#include "test.h"

static int child_no_platform(void)
{
    dc_device *dev = NULL;
    dc_status s = dc_device_open(-1, -1, &dev);
    printf("status=%d detail=%s\n", (int)s, dc_error_detail());
    dc_device_close(dev);
    return s == DC_ERR_NO_DEVICE ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--no-platform-child") == 0) return child_no_platform();

    /* Listing shows the PoCL device with its index and type. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CHECK_OK(dc_device_list(mem));
    fclose(mem);
    CHECK(text && strstr(text, "0:0") != NULL, "listing has no 0:0 entry:\n%s", text);
    CHECK(text && strstr(text, "CPU") != NULL, "listing shows no CPU device:\n%s", text);
    CHECK(text && strstr(text, "Portable Computing Language") != NULL, "no PoCL platform:\n%s", text);
    free(text);

    /* Automatic choice, then explicit indices, then DAECL_DEVICE. */
    dc_device *dev = NULL;
    unsetenv("DAECL_DEVICE");
    CHECK_OK(dc_device_open(-1, -1, &dev));
    if (dev) {
        char desc[512];
        dc_device_describe(dev, desc, sizeof desc);
        CHECK(strstr(desc, "0:0") == desc, "describe: %s", desc);
        CHECK(dev->queue != NULL && dev->ctx != NULL, "no queue/context");
        CHECK(dev->compute_units > 0 && dev->global_mem > 0, "device info not filled");
    }
    dc_device_close(dev);
    dev = NULL;
    CHECK_OK(dc_device_open(0, 0, &dev));
    dc_device_close(dev);
    dev = NULL;
    setenv("DAECL_DEVICE", "0:0", 1);
    CHECK_OK(dc_device_open(-1, -1, &dev));
    dc_device_close(dev);
    dev = NULL;

    /* Bad indices: a clear error naming what exists, never a crash. */
    setenv("DAECL_DEVICE", "7:0", 1);
    dc_status s = dc_device_open(-1, -1, &dev);
    CHECK(s == DC_ERR_NO_DEVICE && dev == NULL, "env 7:0 -> %d", (int)s);
    CHECK(strstr(dc_error_detail(), "platform 7") && strstr(dc_error_detail(), "Portable"),
          "message: %s", dc_error_detail());
    setenv("DAECL_DEVICE", "zero", 1);
    s = dc_device_open(-1, -1, &dev);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "DAECL_DEVICE"), "bad env: %s",
          dc_error_detail());
    unsetenv("DAECL_DEVICE");
    s = dc_device_open(0, 9, &dev);
    CHECK(s == DC_ERR_NO_DEVICE && strstr(dc_error_detail(), "no device 9"), "0:9 -> %s",
          dc_error_detail());
    int p, d;
    CHECK(dc_device_parse("1:2", &p, &d) == DC_OK && p == 1 && d == 2, "parse 1:2");
    CHECK(dc_device_parse("3", &p, &d) == DC_OK && p == -1 && d == 3, "parse 3");
    CHECK(dc_device_parse("1:", &p, &d) == DC_ERR_INVALID_ARG, "parse '1:'");
    CHECK(dc_device_parse("-1", &p, &d) == DC_ERR_INVALID_ARG, "parse -1");
    /* By type: names in any case; the CPU opens, a missing type names what exists. */
    CHECK(dc_device_type_parse("GPU") == CL_DEVICE_TYPE_GPU && dc_device_type_parse("cpu") == CL_DEVICE_TYPE_CPU &&
              dc_device_type_parse("accelerator") == CL_DEVICE_TYPE_ACCELERATOR &&
              dc_device_type_parse("accel") == CL_DEVICE_TYPE_ACCELERATOR && dc_device_type_parse("0:0") == 0 &&
              dc_device_type_parse(NULL) == 0,
          "type names");
    CHECK_OK(dc_device_open_type(CL_DEVICE_TYPE_CPU, -1, &dev));
    CHECK(dev && (dev->type & CL_DEVICE_TYPE_CPU), "--device cpu opened another type");
    dc_device_close(dev);
    dev = NULL;
    s = dc_device_open_type(CL_DEVICE_TYPE_ACCELERATOR, -1, &dev);
    CHECK(s == DC_ERR_NO_DEVICE && dev == NULL && strstr(dc_error_detail(), "no ACCEL device") &&
              strstr(dc_error_detail(), "0:0 CPU"),
          "accel: %s", dc_error_detail());
    setenv("DAECL_DEVICE", "cpu", 1);
    CHECK_OK(dc_device_open(-1, -1, &dev));
    CHECK(dev && (dev->type & CL_DEVICE_TYPE_CPU), "DAECL_DEVICE=cpu");
    dc_device_close(dev);
    dev = NULL;
    setenv("DAECL_DEVICE", "accel", 1);
    s = dc_device_open(-1, -1, &dev);
    CHECK(s == DC_ERR_NO_DEVICE && strstr(dc_error_detail(), "DAECL_DEVICE=accel"), "env accel: %s", dc_error_detail());
    unsetenv("DAECL_DEVICE");
    /* The catalog agrees with the listing. */
    dc_device_catalog *cat = malloc(sizeof *cat);
    CHECK(cat && dc_device_catalog_get(cat) == DC_OK && cat->nplatforms >= 1 && cat->ndevices >= 1 &&
              cat->devices[0].platform_index == 0 && cat->devices[0].device_index == 0 && cat->devices[0].compute_units > 0,
          "catalog");
    free(cat);
    CHECK(strcmp(dc_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES") == 0, "names");
    CHECK(dc_cl_fail(CL_MEM_OBJECT_ALLOCATION_FAILURE, "x") == DC_ERR_DEVICE_MEMORY, "oom status");

    /* No platform at all: the ICD loader finds no vendor in an empty directory. */
    char empty[] = "/tmp/daecl-novendors-XXXXXX";
    CHECK(mkdtemp(empty) != NULL, "mkdtemp");
    pid_t pid = fork();
    if (pid == 0) {
        setenv("OCL_ICD_VENDORS", empty, 1);
        execl("/proc/self/exe", argv[0], "--no-platform-child", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "no-platform child exit %d", st);
    rmdir(empty);
    TEST_MAIN_END();
}
