/*
 * vmprobe: tiny static helper for the VM suite (e2e/vm). Busybox has no memory hog and no
 * way to ask the kernel for its Landlock ABI, so this program does both.
 *
 *   vmprobe memhog MIB        allocate MIB MiB in 1 MiB steps, writing every page; prints
 *                             "memhog: touched MIB MiB" and exits 0 if it was not killed
 *   vmprobe landlock-abi      prints the Landlock ABI version (0 when Landlock is off) and
 *                             exits 0; exits 1 on an unexpected error
 *
 * Built by e2e/vm/run.sh with `gcc -static`; it runs only inside the test VM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)

static int memhog(const char *arg)
{
    char *end = NULL;
    long mib = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || mib <= 0) {
        fprintf(stderr, "vmprobe memhog: MIB must be a positive integer, got `%s`\n", arg);
        return 2;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (long i = 0; i < mib; i++) {
        char *chunk = malloc(1 << 20);
        if (chunk == NULL) {
            fprintf(stderr, "vmprobe memhog: malloc failed after %ld MiB\n", i);
            return 3;
        }
        /* Write one byte per page so that every page is really backed by memory. */
        for (long off = 0; off < (1 << 20); off += page)
            chunk[off] = (char)(i + off);
    }
    printf("memhog: touched %ld MiB\n", mib);
    return 0;
}

static int landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi >= 0) {
        printf("%ld\n", abi);
        return 0;
    }
    if (errno == ENOSYS || errno == EOPNOTSUPP) {
        /* ENOSYS: kernel built without Landlock; EOPNOTSUPP: built in but not in the lsm= list. */
        printf("0\n");
        fprintf(stderr, "vmprobe landlock-abi: %s\n", strerror(errno));
        return 0;
    }
    fprintf(stderr, "vmprobe landlock-abi: landlock_create_ruleset: %s\n", strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "memhog") == 0)
        return memhog(argv[2]);
    if (argc == 2 && strcmp(argv[1], "landlock-abi") == 0)
        return landlock_abi();
    fprintf(stderr, "usage: vmprobe memhog MIB | vmprobe landlock-abi\n");
    return 2;
}
