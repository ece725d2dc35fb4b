/* The source of a live migration: PUT /migrate, on a thread of its own. */
#include "compat.h"
#include "migrate.h"
#include "stream.h"

#include "../api/queue.h"
#include "../log.h"
#include "../util/bytes.h"
#include "../virtio/blk.h"
#include "../vmm/dirty.h"
#include "../vmm/vcpu.h"
#include "../vmm/vm_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAGE		    GUEST_PAGE_SIZE
#define MAX_PASSES	    30
/* A last pass estimated to take this little is not worth shrinking further. */
#define GOOD_ENOUGH_US	    1000
#define THROTTLE_STEP	    20
#define THROTTLE_MAX	    90
/* A destination that does not answer within this long is taken as gone. */
#define ANSWER_TIMEOUT_S    30

static const char *const phase_names[] = {
	[MIGRATE_NONE] = "none",	   [MIGRATE_SETUP] = "setup",
	[MIGRATE_RAM] = "ram",		   [MIGRATE_DIRTY] = "dirty-passes",
	[MIGRATE_FINAL] = "final",	   [MIGRATE_COMPLETED] = "completed",
	[MIGRATE_FAILED] = "failed",	   [MIGRATE_CANCELLED] = "cancelled",
};

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int fail(struct migration *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records why the migration failed (once), for GET /migrate and the log. */
static int fail(struct migration *m, int err, const char *fmt, ...)
{
	va_list ap;

	if (!m->error[0]) {
		va_start(ap, fmt);
		vsnprintf(m->error, sizeof(m->error), fmt, ap);
		va_end(ap);
	}
	return err ?: -EIO;
}

/*
 * Tests cut the connection at a phase (SKIFF_MIGRATE_CUT_AT=ram|dirty|state), as a network
 * failure would; shutdown() makes every later send and receive fail.
 */
static void cut_here(struct migration *m, const char *phase)
{
	const char *at = getenv("SKIFF_MIGRATE_CUT_AT");

	if (at && !strcmp(at, phase))
		migration_interrupt(m);
}

/* Runs a step on the VM's thread (migration_on_vm_thread) and waits for it. */
static int on_vm_thread(struct migration *m, enum api_op op)
{
	struct api_call call = { .req = { .op = op, .job = m } };
	int status;

	api_queue_call(m->queue, &call);
	status = call.resp.status;
	if (status >= 300 && !m->error[0])
		fail(m, 0, "%s", call.resp.body ? call.resp.body : "the VM refused");
	api_response_release(&call.resp);
	return status < 300 ? 0 : -EIO;
}

static bool page_set(const uint64_t *bitmap, uint64_t page)
{
	return bitmap[page / 64] >> (page % 64) & 1;
}

/*
 * Sends the pages set in bitmap: runs of data as RAM, runs of zeroes as ZERO (or not at
 * all on the first pass, the destination's RAM starting zeroed).
 */
static int send_pages(struct migration *m, struct migrate_stream *s, const uint64_t *bitmap,
		      bool first)
{
	const uint8_t *ram = m->vm->mem.base;
	uint64_t pages = m->vm->mem.size / PAGE, left = 0;
	int ret = 0;

	for (uint64_t p = 0; p < pages; p++)
		left += page_set(bitmap, p);
	for (uint64_t p = 0; p < pages && !ret;) {
		uint64_t end = p, off = p * PAGE;
		uint8_t head[16];
		bool zero;

		if (!page_set(bitmap, p)) {
			p++;
			continue;
		}
		if (atomic_load(&m->cancel))
			return -ECANCELED;
		zero = bytes_all_zero(ram + off, PAGE);
		while (end < pages && end - p < MIGRATE_MAX_RUN && page_set(bitmap, end) &&
		       bytes_all_zero(ram + end * PAGE, PAGE) == zero)
			end++;
		put_le64(head, off);
		if (!zero) {
			/*
			 * A copy, so that the CRC covers what is sent while the guest writes on.
			 * A page torn by a write meanwhile is dirty, and goes again.
			 */
			struct iovec iov[2] = { { head, 8 }, { m->bounce, (end - p) * PAGE } };

			memcpy(m->bounce, ram + off, (end - p) * PAGE);
			ret = migrate_send(s, MSG_RAM, iov, 2);
		} else if (!first) {
			put_le64(head + 8, end - p);
			ret = migrate_send_buf(s, MSG_ZERO, head, 16);
		}
		left -= end - p;
		cut_here(m, first ? "ram" : atomic_load(&m->phase) == MIGRATE_DIRTY ? "dirty" : "");
		atomic_store(&m->remaining_bytes, left * PAGE);
		atomic_store(&m->bytes_sent, s->bytes_sent);
		p = end;
	}
	return ret ? fail(m, ret, "sending RAM to %s: %s", m->uri, strerror(-ret)) : 0;
}

static uint64_t disk_chunks(const struct migrate_disk *d)
{
	return (d->size + BLK_CHUNK - 1) >> BLK_CHUNK_SHIFT;
}

/*
 * Sends the chunks of disk i set in bitmap (NULL: all of them, skipping zero chunks, which
 * the destination's new image already reads as).
 */
static int send_disk(struct migration *m, struct migrate_stream *s, unsigned i,
		     const uint64_t *bitmap)
{
	struct migrate_disk *d = &m->disks[i];
	uint8_t *buf = m->bounce; /* chunks are read into it: the CRC then covers what is sent */

	for (uint64_t c = 0; c < disk_chunks(d); c++) {
		uint64_t off = c << BLK_CHUNK_SHIFT, len = d->size - off < BLK_CHUNK ? d->size - off
										  : BLK_CHUNK;
		uint8_t head[16];
		struct iovec iov[2] = { { head, 16 }, { buf, len } };
		ssize_t n;
		int ret;

		if (bitmap && !(bitmap[c / 64] >> (c % 64) & 1))
			continue;
		if (atomic_load(&m->cancel))
			return -ECANCELED;
		n = pread(d->fd, buf, len, off);
		if (n != (ssize_t)len)
			return fail(m, n < 0 ? -errno : -EIO, "reading drive %u for the migration: %s",
				    i, n < 0 ? strerror(errno) : "short read");
		if (!bitmap && bytes_all_zero(buf, len))
			continue;
		put_le32(head, i);
		put_le32(head + 4, 0);
		put_le64(head + 8, off);
		ret = migrate_send(s, MSG_DISK, iov, 2);
		if (ret)
			return fail(m, ret, "sending drive %u to %s: %s", i, m->uri, strerror(-ret));
		cut_here(m, atomic_load(&m->phase) == MIGRATE_DIRTY ? "dirty" : "ram");
		atomic_store(&m->bytes_sent, s->bytes_sent);
	}
	return 0;
}

/* Each disk's chunks in bitmaps[i] (NULL: the first pass over all of it). */
static int send_disks(struct migration *m, struct migrate_stream *s, uint64_t *const *bitmaps)
{
	int ret = 0;

	for (unsigned i = 0; !ret && i < m->nr_disks; i++)
		ret = send_disk(m, s, i, bitmaps ? bitmaps[i] : NULL);
	return ret;
}

/*
 * Waits until the destination has taken in everything sent so far. Without it, what sits
 * in socket buffers would drain only during the pause, and pass times and rates would say
 * how fast we write, not how fast the destination takes.
 */
static int sync_pass(struct migration *m, struct migrate_stream *s)
{
	enum migrate_msg type;
	uint8_t none[1];
	size_t len;
	int ret = migrate_send_buf(s, MSG_SYNC, NULL, 0);

	ret = ret ?: migrate_recv(s, &type, none, sizeof(none), &len);
	if (!ret && type != MSG_SYNCED)
		ret = -EPROTO;
	return ret ? fail(m, ret, "%s: no answer to SYNC", m->uri) : 0;
}

static uint64_t count_pages(const uint64_t *bitmap, uint64_t pages)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (pages + 63) / 64; w++)
		n += __builtin_popcountll(bitmap[w]);
	return n;
}

/* HELLO: what the destination needs to decide, before anything is paused. */
static int hello(struct migration *m, struct migrate_stream *s)
{
	uint8_t fixed[MIGRATE_HELLO_FIXED + 8 * VM_MAX_DISKS] = { 0 }, answer[512];
	uint32_t words[MIGRATE_FEATURE_WORDS];
	int khz = ioctl(m->vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	struct iovec iov[2] = { { fixed, MIGRATE_HELLO_FIXED + 8 * m->nr_disks },
				{ m->config, strlen(m->config) } };
	enum migrate_msg type;
	size_t len;
	int ret;

	put_le32(fixed, MIGRATE_STREAM_VERSION);
	put_le32(fixed + 4, m->vm->nr_vcpus);
	put_le64(fixed + 8, m->vm->mem.size);
	put_le32(fixed + 16, khz > 0 ? khz : 0);
	migrate_cpu_features(m->vm->cpuid, words);
	for (unsigned w = 0; w < MIGRATE_FEATURE_WORDS; w++)
		put_le32(fixed + 24 + 4 * w, words[w]);
	put_le32(fixed + 20, (m->with_disks ? MIGRATE_HELLO_DISKS : 0) |
			     (m->console == CONSOLE_VIRTIO ? MIGRATE_HELLO_VIRTIO_CONSOLE : 0));
	put_le32(fixed + MIGRATE_HELLO_FIXED - 4, m->nr_disks);
	for (unsigned i = 0; i < m->nr_disks; i++)
		put_le64(fixed + MIGRATE_HELLO_FIXED + 8 * i, m->disks[i].size);
	ret = migrate_send(s, MSG_HELLO, iov, 2);
	if (ret)
		return fail(m, ret, "%s: %s", m->uri, strerror(-ret));
	ret = migrate_recv(s, &type, answer, sizeof(answer) - 1, &len);
	if (ret)
		return fail(m, ret, "%s: no answer to HELLO (%s)", m->uri, log_last_error());
	if (type == MSG_REFUSE) {
		answer[len] = '\0';
		return fail(m, -ENOTSUP, "the destination refused: %s", answer);
	}
	return type == MSG_ACCEPT ? 0 : fail(m, -EPROTO, "%s: no ACCEPT after HELLO", m->uri);
}

static void free_bitmaps(uint64_t *dirty, uint64_t **written, unsigned n)
{
	free(dirty);
	for (unsigned i = 0; i < n; i++)
		free(written[i]);
}

/* Dirty passes until the last one would fit the downtime budget. */
static int dirty_passes(struct migration *m, struct migrate_stream *s)
{
	uint64_t pages = m->vm->mem.size / PAGE, previous = UINT64_MAX, *dirty;
	unsigned throttle = 0;
	int ret;

	atomic_store(&m->phase, MIGRATE_DIRTY);
	for (unsigned pass = 1; pass <= MAX_PASSES; pass++) {
		uint64_t t0 = now_us(), n, rate = atomic_load(&m->rate) ?: 1, us, est;

		uint64_t *written[VM_MAX_DISKS] = { NULL }, disk_bytes = 0;

		ret = vm_collect_dirty(m->vm, false, &dirty);
		if (ret)
			return fail(m, ret, "collecting dirty pages: %s", strerror(-ret));
		for (unsigned i = 0; i < m->nr_disks; i++) {
			written[i] = virtio_blk_collect_writes(m->disks[i].blk);
			if (!written[i])
				ret = -ENOMEM;
			else
				disk_bytes += count_pages(written[i], disk_chunks(&m->disks[i])) *
					      BLK_CHUNK;
		}
		n = count_pages(dirty, pages) + (disk_bytes + PAGE - 1) / PAGE;
		atomic_store(&m->remaining_bytes, n * PAGE);
		atomic_store(&m->estimated_downtime_us, n * PAGE * 1000000 / rate);
		atomic_store(&m->passes, pass);
		/*
		 * Within budget, one more pass is still worth it while passes keep halving
		 * what is left: the pause then holds less than the budget allows.
		 */
		est = atomic_load(&m->estimated_downtime_us);
		if (!ret && est <= m->downtime_ms * 1000ULL &&
		    (est <= GOOD_ENOUGH_US || n * 2 > previous)) {
			/* The final pass takes these pages and chunks with the rest. */
			ret = vm_merge_dirty(m->vm, dirty);
			for (unsigned i = 0; i < m->nr_disks; i++)
				virtio_blk_merge_writes(m->disks[i].blk, written[i]);
			free_bitmaps(dirty, written, m->nr_disks);
			return ret;
		}
		/* Not shrinking: the guest dirties as fast as we send. Slow it down. */
		if (n * 10 >= previous * 9 && throttle < THROTTLE_MAX) {
			throttle += THROTTLE_STEP;
			vm_set_throttle(m->vm, throttle);
			atomic_store(&m->throttle, throttle);
			log_info("migration: the guest dirties memory faster than it is sent; "
				 "throttling it to %u%%", 100 - throttle);
		}
		previous = n;
		ret = ret ?: send_pages(m, s, dirty, false);
		ret = ret ?: send_disks(m, s, written);
		ret = ret ?: sync_pass(m, s);
		free_bitmaps(dirty, written, m->nr_disks);
		if (ret)
			return ret;
		us = now_us() - t0;
		if (n && us)
			atomic_store(&m->rate, n * PAGE * 1000000 / us);
		atomic_store(&m->dirty_rate, n * PAGE * 1000000 / (us ?: 1));
	}
	return 0; /* out of passes: the final pass takes what is left */
}

/* Paused: the last pages, the state, and the destination's word that the guest runs. */
static int final_pass(struct migration *m, struct migrate_stream *s)
{
	uint8_t crc[4], answer[256];
	enum migrate_msg type;
	size_t len;
	int ret;

	atomic_store(&m->phase, MIGRATE_FINAL);
	if (on_vm_thread(m, API_MIGRATE_FINAL))
		return -EIO;
	/* A cancel that came before the final phase began is still honoured. */
	if (atomic_load(&m->cancel))
		return -ECANCELED;
	ret = send_pages(m, s, m->final_dirty, false);
	for (unsigned i = 0; !ret && i < m->nr_disks; i++)
		ret = send_disk(m, s, i, m->disks[i].final);
	if (!ret)
		ret = migrate_send_buf(s, MSG_STATE, m->final_state.buf, m->final_state.len);
	cut_here(m, "state");
	put_le32(crc, m->memory_crc);
	if (!ret)
		ret = migrate_send_buf(s, MSG_DONE, crc, sizeof(crc));
	if (ret)
		return fail(m, ret, "sending the VM's state to %s: %s", m->uri, strerror(-ret));
	ret = migrate_recv(s, &type, answer, sizeof(answer), &len);
	if (ret || type != MSG_ACK)
		return fail(m, ret ?: -EPROTO, "the destination did not start the guest (%s)",
			    ret ? log_last_error() : "no ACK");
	return 0;
}

static void *migrate_thread(void *opaque)
{
	struct migration *m = opaque;
	struct timeval timeout = { .tv_sec = ANSWER_TIMEOUT_S };
	struct migrate_stream s = { .fd = -1, .peer = m->uri };
	uint64_t *populated = NULL, paused_at = 0;
	int ret;

	pthread_setname_np(pthread_self(), "migrate");
	atomic_store(&m->phase, MIGRATE_SETUP);
	s.fd = migrate_connect(m->uri);
	ret = s.fd < 0 ? fail(m, s.fd, "%s", log_last_error()) : 0;
	pthread_mutex_lock(&m->fd_lock);
	m->fd = s.fd;
	pthread_mutex_unlock(&m->fd_lock);
	if (!ret)
		setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	ret = ret ?: hello(m, &s);
	ret = ret ?: on_vm_thread(m, API_MIGRATE_TRACK);
	if (!ret) {
		uint64_t t0 = now_us();

		atomic_store(&m->phase, MIGRATE_RAM);
		populated = calloc((m->vm->mem.size / PAGE + 63) / 64, sizeof(uint64_t));
		ret = populated ? guest_mem_populated(&m->vm->mem, populated) : -ENOMEM;
		if (ret)
			fail(m, ret, "finding the guest's pages: %s", strerror(-ret));
		ret = ret ?: send_pages(m, &s, populated, true);
		ret = ret ?: send_disks(m, &s, NULL);
		ret = ret ?: sync_pass(m, &s);
		if (!ret)
			atomic_store(&m->rate, s.bytes_sent * 1000000 / ((now_us() - t0) ?: 1));
	}
	ret = ret ?: dirty_passes(m, &s);
	if (!ret)
		paused_at = now_us();
	ret = ret ?: final_pass(m, &s);
	vm_set_throttle(m->vm, 0);
	if (ret && atomic_load(&m->cancel))
		ret = -ECANCELED; /* whatever the cut connection made fail first */
	if (!ret) {
		atomic_store(&m->downtime_us, now_us() - paused_at);
		atomic_store(&m->total_us, now_us() - ((uint64_t)m->started.tv_sec * 1000000 +
						       m->started.tv_nsec / 1000));
		atomic_store(&m->phase, MIGRATE_COMPLETED);
		log_info("migrated to %s: %llu bytes, downtime %llu us", m->uri,
			 (unsigned long long)s.bytes_sent,
			 (unsigned long long)atomic_load(&m->downtime_us));
		on_vm_thread(m, API_MIGRATE_COMPLETE);
	} else {
		if (m->paused_here)
			on_vm_thread(m, API_MIGRATE_ROLLBACK);
		atomic_store(&m->phase, ret == -ECANCELED ? MIGRATE_CANCELLED : MIGRATE_FAILED);
		log_error("migration to %s %s; the VM goes on here: %s", m->uri,
			  ret == -ECANCELED ? "cancelled" : "failed",
			  ret == -ECANCELED ? "as asked" : m->error);
	}
	atomic_store(&m->bytes_sent, s.bytes_sent);
	free(populated);
	pthread_mutex_lock(&m->fd_lock);
	m->fd = -1;
	if (s.fd >= 0)
		close(s.fd);
	pthread_mutex_unlock(&m->fd_lock);
	return NULL;
}

void migration_interrupt(struct migration *m)
{
	/* shutdown(), not close(): the thread still owns the fd and closes it itself. */
	pthread_mutex_lock(&m->fd_lock);
	if (m->fd >= 0)
		shutdown(m->fd, SHUT_RDWR);
	pthread_mutex_unlock(&m->fd_lock);
}

int migration_start(struct migration *m)
{
	int ret;

	_Static_assert((size_t)MIGRATE_MAX_RUN * PAGE >= BLK_CHUNK, "a disk chunk fits the bounce");
	m->bounce = malloc((size_t)MIGRATE_MAX_RUN * PAGE);
	if (!m->bounce) {
		log_error("starting the migration: out of memory");
		return -ENOMEM;
	}
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	atomic_store(&m->phase, MIGRATE_SETUP);
	m->fd = -1;
	pthread_mutex_init(&m->fd_lock, NULL);
	state_writer_init(&m->final_state);
	ret = pthread_create(&m->thread, NULL, migrate_thread, m);
	if (ret) {
		log_error("starting the migration: %s", strerror(ret));
		return -ret;
	}
	m->thread_started = true;
	return 0;
}

bool migration_done(const struct migration *m)
{
	return atomic_load(&m->phase) >= MIGRATE_COMPLETED;
}

void migration_finish(struct migration *m)
{
	if (m->thread_started) {
		pthread_join(m->thread, NULL);
		pthread_mutex_destroy(&m->fd_lock);
	}
	m->thread_started = false;
	free(m->final_dirty);
	m->final_dirty = NULL;
	free(m->bounce);
	m->bounce = NULL;
	for (unsigned i = 0; i < m->nr_disks; i++) {
		free(m->disks[i].final);
		if (m->disks[i].fd >= 0)
			close(m->disks[i].fd);
	}
	m->nr_disks = 0;
	state_writer_free(&m->final_state);
	free(m->config);
	m->config = NULL;
}

json_t *migration_progress(const struct migration *m)
{
	int phase = atomic_load(&m->phase);
	json_t *obj = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "phase",
				phase_names[phase], "destination", m->uri, "bytes_sent",
				(json_int_t)atomic_load(&m->bytes_sent), "ram_bytes",
				(json_int_t)atomic_load(&m->ram_bytes), "remaining_bytes",
				(json_int_t)atomic_load(&m->remaining_bytes), "dirty_rate_bps",
				(json_int_t)atomic_load(&m->dirty_rate), "rate_bps",
				(json_int_t)atomic_load(&m->rate), "dirty_passes",
				(json_int_t)atomic_load(&m->passes), "throttle_percent",
				(json_int_t)atomic_load(&m->throttle));

	if (!obj)
		return NULL;
	json_object_set_new(obj, "estimated_downtime_us",
			    json_integer(atomic_load(&m->estimated_downtime_us)));
	if (phase == MIGRATE_COMPLETED) {
		json_object_set_new(obj, "total_us", json_integer(atomic_load(&m->total_us)));
		json_object_set_new(obj, "downtime_us", json_integer(atomic_load(&m->downtime_us)));
	}
	if (phase == MIGRATE_FAILED)
		json_object_set_new(obj, "error", json_string(m->error));
	return obj;
}

/* Pauses the VM and gathers what the last pass sends: on the VM's thread. */
static int prepare_final(struct migration *m)
{
	struct vm *vm = m->vm;
	int ret;

	vm_pause(vm);
	m->paused_here = true;
	/* The state first: saving it finishes device requests, which write RAM and disks. */
	ret = vm_snapshot_state(vm, m->config, m->console, &m->final_state);
	ret = ret ?: vm_collect_dirty(vm, true, &m->final_dirty);
	for (unsigned i = 0; !ret && i < m->nr_disks; i++) {
		m->disks[i].final = virtio_blk_collect_writes(m->disks[i].blk);
		if (!m->disks[i].final)
			ret = -ENOMEM;
	}
	m->memory_crc = snapshot_memory_crc(vm->mem.base, vm->mem.size);
	/* Shared storage: the destination opens the same images once the source lets go. */
	for (unsigned i = 0; !ret && i < vm->nr_virtio; i++)
		if (!strcmp(vm->virtio[i].ops->name, "virtio-blk"))
			ret = virtio_blk_hold(vm->virtio[i].dev, false);
	return ret;
}

void migration_on_vm_thread(struct migration *m, enum api_op op, struct api_response *resp)
{
	struct vm *vm = m->vm;
	int ret = 0;

	switch (op) {
	case API_MIGRATE_TRACK:
		ret = vm_track_dirty(vm);
		break;
	case API_MIGRATE_FINAL:
		ret = prepare_final(m);
		break;
	case API_MIGRATE_ROLLBACK:
		for (unsigned i = 0; i < vm->nr_virtio; i++)
			if (!strcmp(vm->virtio[i].ops->name, "virtio-blk"))
				virtio_blk_hold(vm->virtio[i].dev, true);
		vm_resume(vm);
		m->paused_here = false;
		break;
	default:
		ret = -EINVAL;
		break;
	}
	if (ret)
		api_fault(resp, 500, "%s", log_last_error());
	else
		resp->status = 204;
}

int migration_prepare_disks(struct migration *m)
{
	struct vm *vm = m->vm;

	/* Disks are the VM's first virtio devices. */
	for (unsigned i = 0; i < vm->nr_virtio && !strcmp(vm->virtio[i].ops->name, "virtio-blk");
	     i++) {
		struct migrate_disk *d = &m->disks[m->nr_disks];
		const char *path = virtio_blk_path(vm->virtio[i].dev);

		d->blk = vm->virtio[i].dev;
		d->size = virtio_blk_size(d->blk);
		d->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (d->fd < 0) {
			log_error("%s: %s", path, strerror(errno));
			return -errno;
		}
		m->nr_disks++;
		if (virtio_blk_track_writes(d->blk))
			return -ENOMEM;
	}
	return 0;
}
