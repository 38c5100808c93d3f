/*
 * insn_buckets: a QEMU TCG plugin (plugin API v1, QEMU 7.2 user mode) that counts guest
 * instructions per "bucket". The guest names the bucket it enters with a marker system call,
 * lseek(MARK_FD, bucket, 0): the call fails with EBADF in the guest and costs nothing else.
 * Instructions are counted per translated block with the inline-add op (no callback per
 * block), so counting slows emulation down very little.
 *
 *   qemu-arm -cpu cortex-a9 -plugin ./insn_buckets.so,out=OUT.json,lseek=19,llseek=140 PROGRAM...
 *
 * Arguments: out= the output file; lseek= the guest's lseek system call number (19 on arm, 62
 * on aarch64) and, on 32-bit ARM, llseek= that of _llseek (140), which a 64-bit-offset lseek()
 * in glibc uses there (the bucket is then its low offset word).
 * OUT.json is {"total": N, "marks": M, "buckets": {"0": n0, "7": n7, ...}} at guest exit.
 * With several guest threads the inline adds race a little: run the measured code on one
 * thread (OPENBLAS_NUM_THREADS=1, one runtime thread).
 *
 * Debian's qemu ships no plugin headers, so the few API functions used are declared here,
 * exactly as in QEMU 7.2's include/qemu/qemu-plugin.h (QEMU_PLUGIN_VERSION 1).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;

enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                              uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MARK_FD (-7777)
#define MAX_BUCKETS 256

static uint64_t insn_count; /* every translated block adds its length here when it runs */
static uint64_t bucket_insns[MAX_BUCKETS];
static uint64_t bucket_at_entry;
static int current_bucket;
static uint64_t marks;
static int64_t lseek_nr = 19;   /* lseek(fd, offset, whence): the bucket is a2 */
static int64_t llseek_nr = -1;  /* 32-bit ARM's _llseek(fd, high, low, result, whence): a3 */
static const char *out_path = "insn_buckets.json";

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if ((num != lseek_nr && num != llseek_nr) || (int32_t)a1 != MARK_FD) {
        return;
    }
    bucket_insns[current_bucket] += insn_count - bucket_at_entry;
    bucket_at_entry = insn_count;
    current_bucket = (int)((num == lseek_nr ? a2 : a3) % MAX_BUCKETS);
    marks++;
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id; (void)userdata;
    bucket_insns[current_bucket] += insn_count - bucket_at_entry;
    FILE *out = fopen(out_path, "w");
    if (!out) {
        perror(out_path);
        return;
    }
    fprintf(out, "{\"total\": %" PRIu64 ", \"marks\": %" PRIu64 ", \"buckets\": {", insn_count, marks);
    const char *sep = "";
    for (int i = 0; i < MAX_BUCKETS; i++) {
        if (bucket_insns[i]) {
            fprintf(out, "%s\"%d\": %" PRIu64, sep, i, bucket_insns[i]);
            sep = ", ";
        }
    }
    fprintf(out, "}}\n");
    fclose(out);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = argv[i] + 4;
        } else if (strncmp(argv[i], "lseek=", 6) == 0) {
            lseek_nr = strtoll(argv[i] + 6, NULL, 10);
        } else if (strncmp(argv[i], "llseek=", 7) == 0) {
            llseek_nr = strtoll(argv[i] + 7, NULL, 10);
        } else {
            fprintf(stderr, "insn_buckets: unknown argument '%s' (out=FILE, lseek=NR, llseek=NR)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
