#include "vm_snapshot.h"

#include "vcpu.h"

#include "../arch/x86/cpu_state.h"
#include "../log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* skiff's own choices that shape the device set, beside the configuration's JSON. */
static void save_config(struct state_writer *w, const char *config, enum console_kind console)
{
	state_begin(w, "CONF", 1);
	state_put_u32(w, strlen(config));
	state_put_bytes(w, config, strlen(config));
	state_put_u8(w, console);
	state_end(w);
}

static int load_config(struct state_reader *r, struct vm_snapshot *snap)
{
	uint32_t len;

	if (state_open(r, "CONF") != 1)
		return -EINVAL;
	len = state_get_u32(r);
	if (len > r->section_end - r->pos)
		return -EINVAL;
	snap->config = calloc(1, len + 1);
	if (!snap->config)
		return -ENOMEM;
	state_get_bytes(r, snap->config, len);
	snap->console = state_get_u8(r);
	if (state_close(r) || strlen(snap->config) != len || snap->console > CONSOLE_VIRTIO)
		return -EINVAL;
	return 0;
}

/*
 * With every vCPU parked (vm_pause) and on the event thread. The virtio devices are saved
 * first, though their sections come last: saving finishes their requests in flight, and the
 * interrupts that raises must be in the vCPUs' and IOAPIC's state saved after.
 */
static int save_state(struct vm *vm, struct state_writer *w)
{
	struct state_writer virtio;
	int ret = 0;

	state_writer_init(&virtio);
	for (unsigned i = 0; !ret && i < vm->nr_virtio; i++) {
		ret = virtio_mmio_save(&vm->virtio[i], &virtio);
		if (ret)
			log_error("saving %s: %s", vm->virtio[i].ops->name, strerror(-ret));
	}
	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++) {
		ret = cpu_state_save(vm->kvm_fd, vm->vcpus[i].fd, w);
		if (ret)
			log_error("saving vCPU %u: %s", i, strerror(-ret));
	}
	if (!ret) {
		ioapic_save(&vm->ioapic, w);
		serial_save(&vm->serial, w);
		i8042_save(&vm->i8042, w);
		rtc_save(&vm->rtc, w);
		state_put_bytes(w, virtio.buf, virtio.len);
	}
	state_writer_free(&virtio);
	/* kvmclock last: loading it is best done just before the vCPUs run (cpu_state.h). */
	ret = ret ?: vm_state_save_clock(vm->vm_fd, w);
	if (!ret && w->failed)
		ret = -ENOMEM;
	return ret;
}

/* What a device's load refused: the snapshot does not fit this VM, or is damaged. */
static int refused(const char *what)
{
	log_error("the snapshot's %s state does not load (damaged, or from another "
		  "configuration)", what);
	return -EINVAL;
}

int vm_snapshot_load(struct vm *vm, struct vm_snapshot *snap)
{
	struct state_reader *r = &snap->state;
	int ret;

	if (snap->info.nr_vcpus != vm->nr_vcpus || snap->info.memory_size != vm->mem.size) {
		log_error("the snapshot holds %u vCPUs and %llu bytes of RAM, its configuration "
			  "%u and %llu", snap->info.nr_vcpus,
			  (unsigned long long)snap->info.memory_size, vm->nr_vcpus,
			  (unsigned long long)vm->mem.size);
		return -EINVAL;
	}
	if (snapshot_memory_crc(vm->mem.base, vm->mem.size) != snap->info.memory_crc) {
		log_error("the memory file is not the one taken with this snapshot (or it is "
			  "damaged, or a diff not yet merged onto its base)");
		return -EINVAL;
	}
	ret = 0;
	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++) {
		ret = cpu_state_load(vm->kvm_fd, vm->vcpus[i].fd, r);
		if (ret)
			log_error("loading vCPU %u: %s", i, strerror(-ret));
	}
	if (ret)
		return ret;
	if (ioapic_load(&vm->ioapic, r))
		return refused("IOAPIC");
	if (serial_load(&vm->serial, r))
		return refused("serial port");
	if (i8042_load(&vm->i8042, r))
		return refused("i8042");
	if (rtc_load(&vm->rtc, r))
		return refused("RTC");
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (virtio_mmio_load(&vm->virtio[i], r))
			return refused(vm->virtio[i].ops->name);
	ret = vm_state_load_clock(vm->vm_fd, r);
	if (ret)
		return ret;
	if (r->pos != r->len) {
		log_error("the snapshot has %zu bytes of state this VM has no device for",
			  r->len - r->pos);
		return -EINVAL;
	}
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		for (unsigned q = 0; q < vm->virtio[i].ops->nr_queues; q++)
			virtio_mmio_process(&vm->virtio[i], q);
	return 0;
}

int vm_snapshot_state(struct vm *vm, const char *config, enum console_kind console,
		      struct state_writer *w)
{
	save_config(w, config, console);
	return save_state(vm, w);
}

int vm_snapshot_create(struct vm *vm, const char *config, enum console_kind console,
		       const char *snapshot_path, const char *mem_path, const uint64_t *dirty,
		       void (*progress)(void *, uint64_t, uint64_t), void *opaque)
{
	struct snapshot_info info = {
		.nr_vcpus = vm->nr_vcpus,
		.memory_size = vm->mem.size,
		.flags = dirty ? SNAPSHOT_FLAG_DIFF : 0,
	};
	uint64_t *populated = NULL;
	struct state_writer w;
	int ret;

	state_writer_init(&w);
	ret = vm_snapshot_state(vm, config, console, &w);
	/* After the state: saving it may finish device requests, which write to RAM. */
	info.memory_crc = snapshot_memory_crc(vm->mem.base, vm->mem.size);
	if (!ret && !dirty) {
		populated = calloc((vm->mem.size / GUEST_PAGE_SIZE + 63) / 64, sizeof(uint64_t));
		ret = populated ? guest_mem_populated(&vm->mem, populated) : -ENOMEM;
		if (ret)
			log_error("finding the guest's pages: %s", strerror(-ret));
	}
	/* RAM first: a snapshot file then always has its memory file complete beside it. */
	ret = ret ?: snapshot_write_memory(mem_path, vm->mem.base, vm->mem.size,
					   dirty ? dirty : populated, dirty != NULL, progress,
					   opaque);
	ret = ret ?: snapshot_write(snapshot_path, &info, w.buf, w.len);
	free(populated);
	state_writer_free(&w);
	return ret;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (st.st_size > (off_t)(SNAPSHOT_HEADER_SIZE + SNAPSHOT_MAX_STATE)) {
		ret = -EFBIG;
		goto out;
	}
	*len = st.st_size;
	*buf = malloc(*len ?: 1);
	if (!*buf) {
		ret = -ENOMEM;
		goto out;
	}
	n = pread(fd, *buf, *len, 0);
	if (n != (ssize_t)*len)
		ret = n < 0 ? -errno : -EIO;
out:
	if (ret)
		log_error("%s: %s", path, strerror(-ret));
	if (fd >= 0)
		close(fd);
	return ret;
}

int vm_snapshot_from_state(const char *name, uint8_t *buf, const uint8_t *state,
			   size_t state_len, const struct snapshot_info *info,
			   struct vm_snapshot *snap)
{
	memset(snap, 0, sizeof(*snap));
	snap->buf = buf;
	snap->info = *info;
	state_reader_init(&snap->state, state, state_len);
	if (load_config(&snap->state, snap)) {
		log_error("%s: the configuration section is malformed", name);
		vm_snapshot_close(snap);
		return -EINVAL;
	}
	return 0;
}

int vm_snapshot_parse(const char *name, uint8_t *buf, size_t len, struct vm_snapshot *snap)
{
	struct snapshot_info info;
	const uint8_t *state;
	size_t state_len;

	if (snapshot_parse(name, buf, len, &info, &state, &state_len)) {
		free(buf);
		memset(snap, 0, sizeof(*snap));
		return -EINVAL;
	}
	return vm_snapshot_from_state(name, buf, state, state_len, &info, snap);
}

int vm_snapshot_open(const char *path, struct vm_snapshot *snap)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	memset(snap, 0, sizeof(*snap));
	return read_file(path, &buf, &len) ?: vm_snapshot_parse(path, buf, len, snap);
}

void vm_snapshot_close(struct vm_snapshot *snap)
{
	free(snap->buf);
	free(snap->config);
	memset(snap, 0, sizeof(*snap));
}
