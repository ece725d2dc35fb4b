# skiff: `make` builds build/skiff and build/probe; `make test` builds and runs every test.
VERSION := 0.1.0
CC ?= cc
CLANG ?= clang
BUILD := build

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
CFLAGS_COMMON := -std=gnu11 -D_GNU_SOURCE -DSKIFF_VERSION='"$(VERSION)"' $(WARN) -g -MMD -MP
CFLAGS ?= -O2
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# Static where Debian ships the archive: each shared library costs every start its loading;
# libslirp (which has none, and pulls in glib) is loaded only for --net user (slirp_lib.c).
LDLIBS := -lpthread -Wl,-Bstatic -luring -ljansson -lz -lbz2 -llzma -llzo2 -llz4 -lzstd -Wl,-Bdynamic

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c src/*/*/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC := $(wildcard bench/*.c)

# One object tree per flavour: plain and sanitized builds never share objects.
obj = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))

.PHONY: all test unit fuzz-build bench demo clean format probe
all: $(BUILD)/skiff $(BUILD)/probe

$(BUILD)/plain/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/skiff: $(call obj,plain,src/main.c $(LIB_SRC))
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/asan/skiff: $(call obj,asan,src/main.c $(LIB_SRC))
	@echo "  LD      $@"
	@$(CC) $(SAN_FLAGS) $^ -o $@ $(LDLIBS)

# Each unit test links the whole library, so tests exercise real objects.
$(BUILD)/plain/tests/unit/%: $(BUILD)/plain/tests/unit/%.o $(call obj,plain,$(LIB_SRC))
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/asan/tests/unit/%: $(BUILD)/asan/tests/unit/%.o $(call obj,asan,$(LIB_SRC))
	@echo "  LD      $@"
	@$(CC) $(SAN_FLAGS) $^ -o $@ $(LDLIBS)

UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/plain/tests/unit/%,$(UNIT_SRC)) \
	     $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/unit/%,$(UNIT_SRC))

# libFuzzer targets: clang only, sanitized, linked with the library's sources directly.
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -DSKIFF_VERSION='"$(VERSION)"' $(WARN) -g -O1 \
	       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@$(CLANG) $(FUZZ_CFLAGS) $< $(LIB_SRC) -o $@ $(LDLIBS)

FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O2 $< -o $@ $(LDLIBS)

probe $(BUILD)/probe: FORCE
	@$(MAKE) -s -C guest O=$(abspath $(BUILD))

FORCE:

test-build: all $(BUILD)/asan/skiff $(UNIT_BINS) $(FUZZ_BINS)

test: test-build
	tests/run $(BUILD)

bench: all $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
	$(BUILD)/bench/irqchip_cost 9
	$(BUILD)/bench/dirty_log
	bench/startup $(BUILD)
	bench/virtio $(BUILD)
	bench/snapshot $(BUILD)
	bench/migrate $(BUILD)

demo: all
	$(BUILD)/skiff run --kernel $(BUILD)/probe --cpus 2 --cmdline "test=smp" --debug-exit; \
	test $$? -eq 1

format:
	clang-format -i $(wildcard src/*.[ch] src/*/*.[ch] src/*/*/*.[ch] tests/*/*.[ch] guest/*.[ch])

clean:
	rm -rf $(BUILD)

.PHONY: FORCE test-build
# Keep intermediate objects: make would otherwise delete them after tests/run's last line.
.SECONDARY:
-include $(shell find $(BUILD)/plain $(BUILD)/asan -name '*.d' -type f 2>/dev/null)
