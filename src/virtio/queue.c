#include "queue.h"

#include "../util/bytes.h"

#include <errno.h>
#include <string.h>

#define DESC_SIZE		16
#define DESC_F_NEXT		1
#define DESC_F_WRITE		2
#define DESC_F_INDIRECT		4
#define AVAIL_F_NO_INTERRUPT	1

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static uint64_t avail_size(uint16_t size)
{
	return 6 + 2ULL * size; /* flags, idx, ring[size], used_event */
}

static uint64_t used_size(uint16_t size)
{
	return 6 + 8ULL * size; /* flags, idx, ring[size] of {id, len}, avail_event */
}

bool virtq_map(struct virtq *q, const struct guest_mem *mem)
{
	if (q->size == 0 || q->size > VIRTQ_MAX_SIZE || (q->size & (q->size - 1)))
		return false;
	/* §2.7: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned. */
	if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
		return false;
	q->desc_host = guest_mem_ptr(mem, q->desc, (uint64_t)DESC_SIZE * q->size);
	q->avail_host = guest_mem_ptr(mem, q->avail, avail_size(q->size));
	q->used_host = guest_mem_ptr(mem, q->used, used_size(q->size));
	return q->desc_host && q->avail_host && q->used_host;
}

/* Reads a field the driver may be changing under us, exactly once. */
static uint16_t load_le16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
}

static struct desc read_desc(const uint8_t *table, uint16_t i)
{
	const uint8_t *d = table + (size_t)i * DESC_SIZE;
	uint8_t copy[DESC_SIZE];

	memcpy(copy, d, sizeof(copy)); /* one snapshot, then checks on the copy */
	return (struct desc){ get_le64(copy), get_le32(copy + 8), get_le16(copy + 12),
			      get_le16(copy + 14) };
}

static int add_segment(struct virtq_chain *c, const struct guest_mem *mem,
		       const struct desc *d)
{
	void *p;

	if (c->nr_out + c->nr_in == VIRTQ_MAX_IOV)
		return -EINVAL;
	p = guest_mem_ptr(mem, d->addr, d->len);
	if (!p)
		return -EINVAL;
	if (d->flags & DESC_F_WRITE) {
		guest_mem_mark_dirty(mem, d->addr, d->len); /* the device may write it */
		c->in_len += d->len;
		c->nr_in++;
	} else {
		if (c->nr_in)
			return -EINVAL; /* §2.7.4.2: readable descriptors come first */
		c->out_len += d->len;
		c->nr_out++;
	}
	c->iov[c->nr_out + c->nr_in - 1] = (struct iovec){ p, d->len };
	return 0;
}

static int walk_chain(const struct virtq *q, const struct guest_mem *mem,
		      struct virtq_chain *c)
{
	const uint8_t *table = q->desc_host;
	unsigned table_size = q->size, visited = 0;
	bool indirect = false;
	uint16_t i = c->head;

	for (;;) {
		struct desc d;

		/* A chain longer than its table must loop. */
		if (i >= table_size || ++visited > table_size)
			return -EINVAL;
		d = read_desc(table, i);
		if (d.flags & DESC_F_INDIRECT) {
			/* §2.7.5.3: not nested, not chained on, a whole number of entries. */
			if (!q->indirect || indirect || (d.flags & DESC_F_NEXT) || d.len == 0 ||
			    d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_MAX_SIZE)
				return -EINVAL;
			table = guest_mem_ptr(mem, d.addr, d.len);
			if (!table)
				return -EINVAL;
			table_size = d.len / DESC_SIZE;
			visited = 0;
			indirect = true;
			i = 0;
			continue;
		}
		if (add_segment(c, mem, &d))
			return -EINVAL;
		if (!(d.flags & DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int virtq_pop(struct virtq *q, const struct guest_mem *mem, struct virtq_chain *c)
{
	uint16_t avail_idx = load_le16(q->avail_host + 2);
	uint16_t pending = avail_idx - q->last_avail;

	if (pending == 0)
		return 0;
	if (pending > q->size)
		return -EINVAL; /* the driver claims more buffers than the ring holds */
	c->head = load_le16(q->avail_host + 4 + 2 * (q->last_avail % q->size));
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;
	if (walk_chain(q, mem, c))
		return -EINVAL;
	q->last_avail++;
	if (q->event_idx) /* avail_event: notify us when you pass this index */
		__atomic_store_n((uint16_t *)(q->used_host + 4 + 8 * q->size),
				 htole16(q->last_avail), __ATOMIC_RELEASE);
	return 1;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	uint8_t *elem = q->used_host + 4 + 8 * (q->used_idx % q->size);

	put_le32(elem, head);
	put_le32(elem + 4, len);
	q->used_idx++;
	/* The element must be visible before the index that publishes it. */
	__atomic_store_n((uint16_t *)(q->used_host + 2), htole16(q->used_idx), __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t used_event, old = q->signalled_used;
	bool valid = q->signalled_valid;

	/* The published index must be visible before we read what the driver asked for. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(load_le16(q->avail_host) & AVAIL_F_NO_INTERRUPT);
	used_event = load_le16(q->avail_host + 4 + 2 * q->size);
	q->signalled_used = q->used_idx;
	q->signalled_valid = true;
	/* §2.7.10: notify iff used_event lies in (old, new]. */
	return !valid || (uint16_t)(q->used_idx - used_event - 1) < (uint16_t)(q->used_idx - old);
}

size_t virtq_read(const struct virtq_chain *c, size_t offset, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < c->nr_out && done < len; i++) {
		size_t seg = c->iov[i].iov_len, n;

		if (offset >= seg) {
			offset -= seg;
			continue;
		}
		n = seg - offset < len - done ? seg - offset : len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)c->iov[i].iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t virtq_write(const struct virtq_chain *c, size_t offset, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = c->nr_out; i < c->nr_out + c->nr_in && done < len; i++) {
		size_t seg = c->iov[i].iov_len, n;

		if (offset >= seg) {
			offset -= seg;
			continue;
		}
		n = seg - offset < len - done ? seg - offset : len - done;
		memcpy((uint8_t *)c->iov[i].iov_base + offset, (const uint8_t *)src + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
