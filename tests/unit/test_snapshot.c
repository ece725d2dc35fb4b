#include "test.h"

#include "../../src/state/snapshot.h"
#include "../../src/util/bytes.h"
#include "../../src/vmm/vm_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define PAGE 4096

static char dir[] = "/tmp/skiff-test-snapshot-XXXXXX";

static void cleanup(void)
{
	char name[128];

	for (const char *const *n = (const char *const[]){ "a.state", "b.state", "full.mem",
							     "diff.mem", NULL }; *n; n++) {
		snprintf(name, sizeof(name), "%s/%s", dir, *n);
		unlink(name);
	}
	rmdir(dir);
}

/* A file in the test's own directory, made on first use and removed at exit. */
static char *path(const char *name)
{
	static char buf[4][128];
	static int next;
	static bool made;
	char *p = buf[next++ % 4];

	if (!made) {
		if (!mkdtemp(dir))
			abort();
		atexit(cleanup);
		made = true;
	}
	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static uint8_t *slurp(const char *file, size_t *len)
{
	int fd = open(file, O_RDONLY);
	struct stat st;
	uint8_t *buf;

	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	buf = malloc(st.st_size ?: 1);
	*len = pread(fd, buf, st.st_size, 0);
	close(fd);
	return buf;
}

/* A state of one CONF section, as vm_snapshot_create writes it. */
static size_t conf_state(uint8_t *buf, const char *json)
{
	size_t len = strlen(json);

	memcpy(buf, "CONF", 4);
	put_le16(buf + 4, 1);
	put_le32(buf + 6, 4 + len + 1);
	put_le32(buf + 10, len);
	memcpy(buf + 14, json, len);
	buf[14 + len] = 0; /* the serial console */
	return 15 + len;
}

TEST(header_round_trips_and_checks)
{
	struct snapshot_info info = { .nr_vcpus = 2, .memory_size = 64 << 20, .memory_crc = 7 };
	const char *json = "{\"machine-config\": {\"vcpu_count\": 2}}";
	struct vm_snapshot snap;
	uint8_t state[256], *buf;
	size_t len, state_len = conf_state(state, json);

	CHECK(snapshot_write(path("a.state"), &info, state, state_len) == 0);
	buf = slurp(path("a.state"), &len);
	CHECK(buf && len == SNAPSHOT_HEADER_SIZE + state_len);
	CHECK(vm_snapshot_parse("a", buf, len, &snap) == 0);
	CHECK(snap.info.nr_vcpus == 2 && snap.info.memory_size == 64 << 20);
	CHECK(snap.info.memory_crc == 7 && !strcmp(snap.config, json));
	CHECK(snap.console == CONSOLE_SERIAL && snap.state.pos == snap.state.len);
	vm_snapshot_close(&snap);

	/* Each damage is refused: truncation, a flipped state byte, header, version. */
	buf = slurp(path("a.state"), &len);
	CHECK(vm_snapshot_parse("a", buf, len - 1, &snap) == -EINVAL);
	buf = slurp(path("a.state"), &len);
	buf[len - 3] ^= 1;
	CHECK(vm_snapshot_parse("a", buf, len, &snap) == -EINVAL);
	buf = slurp(path("a.state"), &len);
	buf[13] ^= 1;
	CHECK(vm_snapshot_parse("a", buf, len, &snap) == -EINVAL);
	buf = slurp(path("a.state"), &len);
	put_le32(buf + 8, 2);
	put_le32(buf + 60, crc32(0, buf, 60));
	CHECK(vm_snapshot_parse("a", buf, len, &snap) == -EINVAL);
	buf = slurp(path("a.state"), &len);
	CHECK(vm_snapshot_parse("a", buf, 10, &snap) == -EINVAL);
	/* a configuration section whose length lies */
	state_len = conf_state(state, json);
	put_le32(state + 10, 1000);
	CHECK(snapshot_write(path("b.state"), &info, state, state_len) == 0);
	buf = slurp(path("b.state"), &len);
	CHECK(vm_snapshot_parse("b", buf, len, &snap) == -EINVAL);
}

TEST(memory_files_are_sparse_and_diffs_merge)
{
	size_t size = 256 * PAGE, len;
	uint8_t *ram = calloc(1, size), *back;
	uint64_t dirty[4] = { 0 };
	struct stat st;

	ram[5 * PAGE] = 1;
	ram[200 * PAGE + 9] = 2;
	CHECK(snapshot_write_memory(path("full.mem"), ram, size, NULL, false, NULL, NULL) == 0);
	CHECK(stat(path("full.mem"), &st) == 0 && (size_t)st.st_size == size);
	CHECK(st.st_blocks * 512 <= 8 * PAGE); /* two pages of data, the rest holes */
	back = slurp(path("full.mem"), &len);
	CHECK(back && len == size && !memcmp(back, ram, size));
	free(back);
	CHECK(snapshot_memory_crc(ram, size) == snapshot_memory_crc(ram, size));
	ram[0] = 9; /* the first page is always sampled */
	CHECK(snapshot_memory_crc(ram, size) != crc32(0, Z_NULL, 0));

	/* The guest then changes page 5 back to zero and writes page 7: a diff holds both. */
	ram[5 * PAGE] = 0;
	ram[7 * PAGE] = 3;
	dirty[0] = 1ULL << 5 | 1ULL << 7;
	CHECK(snapshot_write_memory(path("diff.mem"), ram, size, dirty, true, NULL, NULL) == 0);
	CHECK(snapshot_merge_memory(path("full.mem"), path("diff.mem")) == 0);
	back = slurp(path("full.mem"), &len);
	ram[0] = 0; /* not dirty: the base keeps its own */
	CHECK(back && len == size && !memcmp(back, ram, size));
	free(back);
	CHECK(snapshot_merge_memory(path("full.mem"), "/nonexistent") == -ENOENT);
	CHECK(truncate(path("diff.mem"), size - PAGE) == 0);
	CHECK(snapshot_merge_memory(path("full.mem"), path("diff.mem")) == -EINVAL);
	free(ram);
}

TEST_MAIN(T(header_round_trips_and_checks), T(memory_files_are_sparse_and_diffs_merge))
