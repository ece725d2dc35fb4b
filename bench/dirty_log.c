/*
 * What collecting dirty-page information costs the host, for live migration: KVM's
 * dirty-log bitmap (KVM_GET_DIRTY_LOG) against the per-vCPU dirty ring
 * (KVM_CAP_DIRTY_LOG_RING_ACQ_REL), side by side on this host.
 *
 * Two VMs, one per mechanism, each with one 1 GiB memslot (both backed by the same
 * anonymous mapping) and one vCPU running a flat 32-bit protected-mode loop that writes
 * one dword to each of N pages and then exits with an OUT. Per round: run the guest to
 * its OUT, then time the collection of the dirty pages into a list of page numbers and
 * check that list. Rounds of the two VMs alternate, so load from other processes falls
 * on both alike.
 *
 * usage: dirty_log [rounds]	(default 7; each N also runs one unmeasured warm-up round)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE     (1ULL << 30)
#define GUEST_PAGE   4096ULL
#define SLOT_PAGES   (RAM_SIZE / GUEST_PAGE)
#define CODE_GPA     0x1000ULL
#define DATA_GPA     0x100000ULL /* the pages the guest writes start here */
#define DONE_PORT    0x10
#define MAX_ROUNDS   101
#define RFLAGS_FIXED 0x2ULL /* bit 1 always reads as 1 */

static const uint32_t page_counts[] = {64, 4096, 65536};
#define NR_COUNTS (sizeof(page_counts) / sizeof(page_counts[0]))

/*
 * The guest, at CODE_GPA; the host sets edi = DATA_GPA, ecx = N, eip = CODE_GPA before
 * each round. It never touches a stack or a descriptor table: its only writes are the N
 * dwords, so exactly N pages must come back dirty.
 *
 *    0: 89 07              mov [edi], eax
 *    2: 81 c7 00 10 00 00  add edi, 4096
 *    8: 49                 dec ecx
 *    9: 75 f5              jnz 0 (11 bytes back)
 *   11: e6 10              out 0x10 (DONE_PORT), al
 */
static const uint8_t guest_code[] = {0x89, 0x07, 0x81, 0xc7, 0x00, 0x10, 0x00,
				     0x00, 0x49, 0x75, 0xf5, 0xe6, 0x10};

enum dirty_mode { DIRTY_BITMAP, DIRTY_RING };

struct bench_vm {
	enum dirty_mode mode;
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	struct kvm_dirty_gfn *ring; /* DIRTY_RING: this vCPU's ring, mmapped */
	size_t ring_bytes;
	uint32_t ring_entries;
	uint32_t ring_fetch; /* free-running index of the next entry to harvest */
	uint64_t *bitmap;    /* DIRTY_BITMAP: receives the slot's log */
	uint32_t *dirty;     /* the collected page numbers (in the slot), either mode */
	uint64_t nr_dirty;
	uint64_t nr_foreign; /* entries naming another slot: must stay 0 */
};

struct round_result {
	double guest_us;
	double collect_us;
	unsigned ring_full_exits;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void dirty_add(struct bench_vm *vm, uint32_t slot, uint64_t page)
{
	if (slot != 0 || page >= SLOT_PAGES) {
		vm->nr_foreign++;
		return;
	}
	vm->dirty[vm->nr_dirty++] = (uint32_t)page;
}

static int bitmap_collect(struct bench_vm *vm)
{
	struct kvm_dirty_log log = {.slot = 0, .dirty_bitmap = vm->bitmap};

	/*
	 * Copies the slot's whole log out, clears it and write-protects the pages found
	 * dirty (api.rst, KVM_GET_DIRTY_LOG, without manual protect): 32 KiB for 1 GiB.
	 */
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	for (uint64_t w = 0; w < SLOT_PAGES / 64; w++)
		for (uint64_t bits = vm->bitmap[w]; bits; bits &= bits - 1)
			dirty_add(vm, 0, w * 64 + (uint64_t)__builtin_ctzll(bits));
	return 0;
}

static int ring_harvest(struct bench_vm *vm)
{
	for (;;) {
		struct kvm_dirty_gfn *gfn = &vm->ring[vm->ring_fetch & (vm->ring_entries - 1)];

		/* api.rst, KVM_CAP_DIRTY_LOG_RING: read slot/offset only after seeing DIRTY. */
		if (!(__atomic_load_n(&gfn->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		dirty_add(vm, gfn->slot, gfn->offset);
		/* Harvested: KVM may recycle the entry once it sees RESET at the next reset. */
		__atomic_store_n(&gfn->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		vm->ring_fetch++;
	}
	/* Re-protects the harvested pages; api.rst: before their contents are read. */
	if (ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return -errno;
	return 0;
}

static int collect(struct bench_vm *vm)
{
	return vm->mode == DIRTY_RING ? ring_harvest(vm) : bitmap_collect(vm);
}

/* Flat 4 GiB segments, CR0.PE=1, no paging: the guest addresses GPAs directly. */
static int vcpu_setup(struct bench_vm *vm)
{
	struct kvm_segment code = {
	    .limit = 0xffffffff,
	    .selector = 0x8,
	    .type = 0xb, /* execute/read, accessed */
	    .present = 1,
	    .db = 1,
	    .s = 1,
	    .g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_sregs sregs;

	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	data.selector = 0x10;
	data.type = 0x3; /* read/write, accessed */
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.ss = data;
	sregs.cr0 |= 1; /* PE */
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	return 0;
}

static int slot_set(int vm_fd, void *ram, uint32_t flags)
{
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .flags = flags,
	    .memory_size = RAM_SIZE,
	    .userspace_addr = (uintptr_t)ram,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -errno;
	return 0;
}

static void vm_destroy(struct bench_vm *vm)
{
	if (vm->ring)
		munmap(vm->ring, vm->ring_bytes);
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	free(vm->bitmap);
	free(vm->dirty);
}

/*
 * DIRTY_RING: the VM gets rings of ring_bytes. DIRTY_BITMAP: *late_cap_errno gets the
 * errno of enabling such rings after the vCPU exists, which api.rst says is refused.
 */
static int vm_create(struct bench_vm *vm, int kvm_fd, void *ram, enum dirty_mode mode,
		     long ring_cap, uint32_t ring_bytes, int *late_cap_errno)
{
	struct kvm_enable_cap cap = {.cap = (uint32_t)ring_cap, .args = {ring_bytes}};
	int mmap_size, err;

	*vm = (struct bench_vm){.mode = mode, .vm_fd = -1, .vcpu_fd = -1};
	vm->dirty = calloc(SLOT_PAGES, sizeof(*vm->dirty));
	vm->bitmap = calloc(SLOT_PAGES / 64, sizeof(*vm->bitmap));
	if (!vm->dirty || !vm->bitmap)
		return -ENOMEM;
	vm->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return -errno;
	/* api.rst, KVM_CAP_DIRTY_LOG_RING: only before any vCPU is created. */
	if (mode == DIRTY_RING && ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	/* Logging starts later, as a migration would start it. */
	err = slot_set(vm->vm_fd, ram, 0);
	if (err)
		return err;
	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0)
		return -errno;
	mmap_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < 0)
		return -errno;
	vm->run_size = (size_t)mmap_size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		return -errno;
	}
	if (mode == DIRTY_RING) {
		vm->ring_bytes = ring_bytes;
		vm->ring_entries = ring_bytes / sizeof(struct kvm_dirty_gfn);
		vm->ring = mmap(NULL, vm->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
				vm->vcpu_fd, KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
		if (vm->ring == MAP_FAILED) {
			vm->ring = NULL;
			return -errno;
		}
	} else {
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0) {
			/* This VM now has rings: its bitmap would stay empty. */
			fprintf(stderr, "dirty_log: KVM enabled the dirty ring after "
					"KVM_CREATE_VCPU, against api.rst\n");
			return -EEXIST;
		}
		*late_cap_errno = errno;
	}
	err = vcpu_setup(vm);
	if (err)
		return err;
	/* api.rst, KVM_SET_USER_MEMORY_REGION: flags of a live slot may change. */
	return slot_set(vm->vm_fd, ram, KVM_MEM_LOG_DIRTY_PAGES);
}

/* Checks the collected list: exactly the N pages written, each once. */
static int check_dirty(const struct bench_vm *vm, uint32_t pages, uint8_t *seen)
{
	uint32_t first = DATA_GPA / GUEST_PAGE;

	if (vm->nr_foreign || vm->nr_dirty != pages)
		return -1;
	memset(seen, 0, pages);
	for (uint64_t i = 0; i < vm->nr_dirty; i++) {
		uint32_t page = vm->dirty[i];

		if (page < first || page - first >= pages || seen[page - first])
			return -1;
		seen[page - first] = 1;
	}
	return 0;
}

static int vm_round(struct bench_vm *vm, uint32_t pages, uint32_t round, struct round_result *res)
{
	struct kvm_regs regs = {
	    .rax = round,
	    .rcx = pages,
	    .rdi = DATA_GPA,
	    .rip = CODE_GPA,
	    .rflags = RFLAGS_FIXED,
	};
	uint64_t guest_ns = 0, collect_ns = 0, start, stop;
	int err;

	vm->nr_dirty = vm->nr_foreign = 0;
	res->ring_full_exits = 0;
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	for (;;) {
		start = now_ns();
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0 && errno != EINTR)
			return -errno;
		stop = now_ns();
		guest_ns += stop - start;
		if (vm->run->exit_reason == KVM_EXIT_INTR)
			continue;
		if (vm->run->exit_reason == KVM_EXIT_IO && vm->run->io.port == DONE_PORT)
			break;
		if (vm->run->exit_reason != KVM_EXIT_DIRTY_RING_FULL) {
			fprintf(stderr, "dirty_log: unexpected exit reason %u\n",
				vm->run->exit_reason);
			return -EIO;
		}
		/* The ring reached its soft limit: harvest (counted as collection), go on. */
		res->ring_full_exits++;
		err = ring_harvest(vm);
		if (err)
			return err;
		collect_ns += now_ns() - stop;
	}
	start = now_ns();
	err = collect(vm);
	if (err)
		return err;
	collect_ns += now_ns() - start;
	res->guest_us = (double)guest_ns / 1000.0;
	res->collect_us = (double)collect_ns / 1000.0;
	return 0;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *values, unsigned count)
{
	qsort(values, count, sizeof(*values), compare_double);
	return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

struct row {
	double bitmap_us, ring_us, bitmap_guest_ms, ring_guest_ms;
	unsigned ring_full_exits;
};

/* One warm-up round per VM (drains what earlier rounds left), then alternating rounds. */
static int measure(struct bench_vm *vms, uint32_t pages, unsigned rounds, uint8_t *seen,
		   struct row *row)
{
	double collect[2][MAX_ROUNDS], guest[2][MAX_ROUNDS];
	struct round_result res = {0};
	unsigned full_exits = 0;

	for (unsigned r = 0; r <= rounds; r++) {
		for (int m = 0; m < 2; m++) {
			int err = vm_round(&vms[m], pages, r, &res);

			if (err)
				return err;
			if (r == 0)
				continue;
			if (check_dirty(&vms[m], pages, seen)) {
				fprintf(
				    stderr,
				    "dirty_log: %s, N=%u: %lu dirty pages collected "
				    "(%lu in other slots), expected pages %llu..%llu once each\n",
				    m == DIRTY_RING ? "ring" : "bitmap", pages,
				    (unsigned long)vms[m].nr_dirty,
				    (unsigned long)vms[m].nr_foreign, DATA_GPA / GUEST_PAGE,
				    DATA_GPA / GUEST_PAGE + pages - 1);
				return -EPROTO;
			}
			collect[m][r - 1] = res.collect_us;
			guest[m][r - 1] = res.guest_us / 1000.0;
			full_exits += res.ring_full_exits;
		}
	}
	row->bitmap_us = median(collect[DIRTY_BITMAP], rounds);
	row->ring_us = median(collect[DIRTY_RING], rounds);
	row->bitmap_guest_ms = median(guest[DIRTY_BITMAP], rounds);
	row->ring_guest_ms = median(guest[DIRTY_RING], rounds);
	row->ring_full_exits = full_exits;
	return 0;
}

static void print_results(const struct row *rows, unsigned rounds, uint32_t ring_entries,
			  int late_cap_errno)
{
	printf("dirty pages  bitmap collect  ring collect  ring-full exits"
	       "   (1 GiB slot, %u-entry ring, medians of %u rounds; exits: all rounds)\n",
	       ring_entries, rounds);
	for (unsigned i = 0; i < NR_COUNTS; i++)
		printf("%11u  %11.1f us  %9.1f us  %15u\n", page_counts[i], rows[i].bitmap_us,
		       rows[i].ring_us, rows[i].ring_full_exits);
	printf("cheaper:");
	for (unsigned i = 0; i < NR_COUNTS; i++) {
		bool ring = rows[i].ring_us < rows[i].bitmap_us;
		double ratio = ring ? rows[i].bitmap_us / rows[i].ring_us
				    : rows[i].ring_us / rows[i].bitmap_us;

		printf("%s %s at N=%u (%.1fx)", i ? "," : "", ring ? "ring" : "bitmap",
		       page_counts[i], ratio);
	}
	printf("\nguest time per round, bitmap/ring VM (CPL0 code, emulated by this host's KVM:"
	       " not comparable to hardware):");
	for (unsigned i = 0; i < NR_COUNTS; i++)
		printf("%s N=%u %.1f/%.1f ms", i ? "," : "", page_counts[i],
		       rows[i].bitmap_guest_ms, rows[i].ring_guest_ms);
	printf("\nnote: the ring must be enabled on the VM before any vCPU is created (api.rst,"
	       " KVM_CAP_DIRTY_LOG_RING; here, enabling it afterwards failed: %s) and a vCPU"
	       " exits with KVM_EXIT_DIRTY_RING_FULL when its ring fills; the bitmap needs"
	       " nothing at creation: KVM_MEM_LOG_DIRTY_PAGES is set on the slots when a"
	       " migration starts\n",
	       strerror(late_cap_errno));
}

int main(int argc, char **argv)
{
	struct bench_vm vms[2] = {{.vm_fd = -1, .vcpu_fd = -1}, {.vm_fd = -1, .vcpu_fd = -1}};
	unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 7;
	uint32_t ring_entries = 1;
	struct row rows[NR_COUNTS];
	int kvm_fd, err = 0, late_cap_errno = 0, status = 1;
	long ring_cap, ring_max;
	uint8_t *seen = NULL;
	void *ram;

	if (argc > 2 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: dirty_log [rounds: 1..%d]\n", MAX_ROUNDS);
		return 2;
	}
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		fprintf(stderr, "dirty_log: /dev/kvm: %s\n", strerror(errno));
		return 2;
	}
	/* api.rst: on x86 (TSO) both caps may be offered; the ACQ_REL one is preferred. */
	ring_cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	ring_max = ioctl(kvm_fd, KVM_CHECK_EXTENSION, ring_cap);
	if (ring_max <= 0) {
		ring_cap = KVM_CAP_DIRTY_LOG_RING;
		ring_max = ioctl(kvm_fd, KVM_CHECK_EXTENSION, ring_cap);
	}
	if (ring_max <= 0) {
		fprintf(stderr, "dirty_log: this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)\n");
		close(kvm_fd);
		return 2;
	}
	/*
	 * The cap's value is the largest ring in bytes. Ring sizes are powers of two: take
	 * the smallest that holds the largest N, or the largest there is (KVM then makes the
	 * vCPU exit when the ring nears full, which the table counts).
	 */
	while (ring_entries < page_counts[NR_COUNTS - 1] &&
	       (ring_entries * 2) * sizeof(struct kvm_dirty_gfn) <= (unsigned long)ring_max)
		ring_entries *= 2;

	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	seen = malloc(page_counts[NR_COUNTS - 1]);
	if (ram == MAP_FAILED || !seen) {
		fprintf(stderr, "dirty_log: allocating guest RAM: %s\n", strerror(errno));
		goto out;
	}
	memcpy((uint8_t *)ram + CODE_GPA, guest_code, sizeof(guest_code));

	err = vm_create(&vms[DIRTY_BITMAP], kvm_fd, ram, DIRTY_BITMAP, ring_cap,
			ring_entries * sizeof(struct kvm_dirty_gfn), &late_cap_errno);
	if (!err)
		err = vm_create(&vms[DIRTY_RING], kvm_fd, ram, DIRTY_RING, ring_cap,
				ring_entries * sizeof(struct kvm_dirty_gfn), NULL);
	if (err) {
		if (err != -EEXIST)
			fprintf(stderr, "dirty_log: setting up the VMs: %s\n", strerror(-err));
		goto out;
	}
	for (unsigned i = 0; i < NR_COUNTS; i++) {
		err = measure(vms, page_counts[i], rounds, seen, &rows[i]);
		if (err) {
			if (err != -EPROTO)
				fprintf(stderr, "dirty_log: N=%u: %s\n", page_counts[i],
					strerror(-err));
			goto out;
		}
	}
	print_results(rows, rounds, ring_entries, late_cap_errno);
	status = 0;
out:
	vm_destroy(&vms[DIRTY_RING]);
	vm_destroy(&vms[DIRTY_BITMAP]);
	free(seen);
	if (ram != MAP_FAILED)
		munmap(ram, RAM_SIZE);
	close(kvm_fd);
	return status;
}
