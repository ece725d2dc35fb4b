/*
 * test=counter: a guest that keeps running and dirtying memory, for pause/resume, snapshot and
 * migration tests. About every 100 ms of TSC time it prints "probe: counter=N sum=X". Between
 * lines, at CPL3, it checks the next slice of a memory region against the pattern it last wrote
 * there and rewrites the slice with the next generation of the pattern.
 *
 * counter_mib=N sizes the region (default 4); counter_max=N passes after line N (absent or 0: run
 * until the VM is stopped). The lines depend only on N and counter_mib, so two runs (paused or
 * not, skiff or QEMU) print the same ones.
 */
#include "probe.h"

#define COUNTER_DEFAULT_MIB	4
#define COUNTER_TICKS_PER_S	10
#define COUNTER_SLICE_WORDS	(MIB / 8)	/* checked and rewritten per tick: 256 pages */
#define PATTERN_GOLDEN		0x9e3779b97f4a7c15ULL
#define PATTERN_MIX		0xff51afd7ed558ccdULL

struct counter {
	uint64_t *region;
	uint64_t words;
	uint64_t cursor;	/* words before it hold generation lap + 1, the rest lap */
	uint64_t lap;
	uint64_t sum;		/* of every word in the region, kept as they are rewritten */
	uint64_t period;	/* TSC ticks between lines */
	uint64_t last;		/* TSC at the last line */
	uint64_t bad;		/* the word that did not match */
};

/*
 * A word's value in a generation: for a given word every generation differs (a stale page
 * shows), and within a generation every word differs (a misplaced page shows).
 */
static uint64_t pattern(uint64_t word, uint64_t generation)
{
	return (word ^ generation * PATTERN_GOLDEN) * PATTERN_MIX;
}

/* CPL3: generation 0 everywhere. */
static uint64_t counter_fill(void *arg)
{
	struct counter *c = arg;
	uint64_t i;

	for (i = 0; i < c->words; i++) {
		c->region[i] = pattern(i, 0);
		c->sum += c->region[i];
	}
	return 0;
}

/*
 * CPL3: waits out the period, then checks and rewrites one slice. The wait is measured from the
 * last line, so after a pause (or a TSC that jumped either way) the next line comes at once and
 * the ones missed are not made up.
 */
static uint64_t counter_tick(void *arg)
{
	struct counter *c = arg;
	uint64_t i, end, old, now;

	while ((now = rdtsc()) - c->last < c->period)
		cpu_relax();
	c->last = now;
	end = c->cursor + COUNTER_SLICE_WORDS;
	if (end > c->words)
		end = c->words;
	for (i = c->cursor; i < end; i++) {
		old = c->region[i];
		if (old != pattern(i, c->lap)) {
			c->bad = i;
			return 1;
		}
		c->region[i] = pattern(i, c->lap + 1);
		c->sum += c->region[i] - old;
	}
	c->cursor = end;
	if (c->cursor == c->words) {
		c->cursor = 0;
		c->lap++;
	}
	return 0;
}

/* The first RAM above the image that holds bytes, or 0. */
static uint64_t find_region(const struct probe *p, uint64_t bytes)
{
	uint64_t start, end;
	unsigned int i;

	for (i = 0; i < p->memmap_count; i++) {
		const struct memmap_entry *e = &p->memmap[i];

		if (e->type != E820_RAM)
			continue;
		start = (e->addr + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		if (start < (uint64_t)image_end)
			start = (uint64_t)image_end;
		end = e->addr + e->size;
		if (end > p->mapped_end)
			end = p->mapped_end;
		if (start < end && bytes <= end - start)
			return start;
	}
	return 0;
}

const char *test_counter(struct probe *p)
{
	struct counter c = { 0 };
	uint64_t mib = COUNTER_DEFAULT_MIB, max = 0, hz, n;
	const char *s, *reason;

	s = cmdline_value(p, "counter_mib", NULL);
	if (s && (!parse_u64(s, &mib) || !mib || mib > p->mapped_end / MIB))
		return "bad-counter-mib";
	s = cmdline_value(p, "counter_max", NULL);
	if (s && !parse_u64(s, &max))
		return "bad-counter-max";
	c.region = (uint64_t *)find_region(p, mib * MIB);
	if (!c.region)
		return "no-room";
	reason = tsc_calibrate(&hz);
	if (reason)
		return reason;
	c.words = mib * MIB / 8;
	c.period = hz / COUNTER_TICKS_PER_S;
	user_run(p->bsp, counter_fill, &c);
	c.last = rdtsc();
	for (n = 1; !max || n <= max; n++) {
		if (user_run(p->bsp, counter_tick, &c)) {
			printk("probe: counter mismatch offset=%lu lap=%lu\n", c.bad * 8, c.lap);
			return "pattern-mismatch";
		}
		/* Port I/O faults at CPL3 (IOPL 0, no I/O bitmap), so lines are printed here. */
		printk("probe: counter=%lu sum=%x\n", n, (uint32_t)(c.sum ^ c.sum >> 32));
	}
	return NULL;
}
