#include "stream.h"

#include "../log.h"
#include "../util/bytes.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

static const char *const names[MSG_TYPES] = {
	[MSG_HELLO] = "HELLO", [MSG_ACCEPT] = "ACCEPT", [MSG_REFUSE] = "REFUSE",
	[MSG_RAM] = "RAM", [MSG_ZERO] = "ZERO", [MSG_DISK] = "DISK", [MSG_STATE] = "STATE",
	[MSG_DONE] = "DONE", [MSG_ACK] = "ACK", [MSG_SYNC] = "SYNC", [MSG_SYNCED] = "SYNCED",
};

/* Writes all of the iovecs, resuming after short writes. */
static int write_all(int fd, struct iovec *iov, unsigned iovcnt)
{
	while (iovcnt) {
		ssize_t n = writev(fd, iov, iovcnt);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		while (iovcnt && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

int migrate_send(struct migrate_stream *s, enum migrate_msg type, const struct iovec *iov,
		 unsigned iovcnt)
{
	struct iovec all[8];
	uint8_t header[MIGRATE_HEADER_SIZE];
	uLong crc = crc32(0, Z_NULL, 0);
	size_t len = 0;

	if (iovcnt > 7)
		return -EINVAL;
	for (unsigned i = 0; i < iovcnt; i++) {
		crc = crc32(crc, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
		all[i + 1] = iov[i];
	}
	if (len > MIGRATE_MAX_PAYLOAD)
		return -E2BIG;
	put_le32(header, type);
	put_le32(header + 4, len);
	put_le32(header + 8, crc);
	put_le32(header + 12, s->sent++);
	all[0] = (struct iovec){ header, sizeof(header) };
	s->bytes_sent += sizeof(header) + len;
	return write_all(s->fd, all, iovcnt + 1);
}

int migrate_send_buf(struct migrate_stream *s, enum migrate_msg type, const void *buf,
		     size_t len)
{
	struct iovec iov = { (void *)buf, len };

	return migrate_send(s, type, &iov, len ? 1 : 0);
}

int migrate_recv(struct migrate_stream *s, enum migrate_msg *type, void *buf, size_t cap,
		 size_t *len)
{
	uint8_t header[MIGRATE_HEADER_SIZE];
	uint32_t t, n;
	int ret = read_all(s->fd, header, sizeof(header));

	if (ret) {
		log_error("migration stream from %s: %s", s->peer,
			  ret == -ECONNRESET ? "the peer closed the connection" : strerror(-ret));
		return ret;
	}
	t = get_le32(header);
	n = get_le32(header + 4);
	if (t == 0 || t >= MSG_TYPES || n > cap || get_le32(header + 12) != s->received) {
		log_error("migration stream from %s: a malformed frame (type %u, %u bytes, "
			  "sequence %u, expected %u)", s->peer, t, n, get_le32(header + 12),
			  s->received);
		return -EPROTO;
	}
	ret = read_all(s->fd, buf, n);
	if (ret) {
		log_error("migration stream from %s: %s in %s", s->peer,
			  ret == -ECONNRESET ? "the peer closed the connection" : strerror(-ret),
			  names[t]);
		return ret;
	}
	if (crc32(crc32(0, Z_NULL, 0), buf, n) != get_le32(header + 8)) {
		log_error("migration stream from %s: %s damaged (CRC mismatch)", s->peer,
			  names[t]);
		return -EPROTO;
	}
	s->received++;
	*type = t;
	*len = n;
	return 0;
}

int migrate_parse_uri(const char *uri, char *host, size_t host_len, char *port,
		      size_t port_len)
{
	const char *h, *colon, *end;

	if (strncmp(uri, "tcp:", 4))
		return -EINVAL;
	h = uri + 4;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		h++;
		colon = end + 1;
	} else {
		colon = strrchr(h, ':');
		end = colon;
		if (!colon)
			return -EINVAL;
	}
	if ((size_t)(end - h) >= host_len || strlen(colon + 1) >= port_len || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -EINVAL;
	memcpy(host, h, end - h);
	host[end - h] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static int resolve(const char *uri, bool passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	char host[256], port[8];
	int ret;

	if (migrate_parse_uri(uri, host, sizeof(host), port, sizeof(port))) {
		log_error("%s: not tcp:HOST:PORT", uri);
		return -EINVAL;
	}
	ret = getaddrinfo(host[0] ? host : NULL, port, &hints, res);
	if (ret) {
		log_error("%s: %s", uri, gai_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

/* Pages go out in large frames: no need to wait for an ACK of each small write. */
static void tune(int fd)
{
	int one = 1, size = 4 << 20;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

int migrate_connect(const char *uri)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = -ECONNREFUSED;

	if (resolve(uri, false, &res))
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		log_error("%s: cannot connect: %s", uri, strerror(-err));
		return err;
	}
	tune(fd);
	return fd;
}

int migrate_listen(const char *uri)
{
	struct addrinfo *res;
	int fd, one = 1, err;

	if (resolve(uri, true, &res))
		return -EINVAL;
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1) < 0) {
		err = -errno;
		log_error("%s: cannot listen: %s", uri, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return err;
	}
	freeaddrinfo(res);
	return fd;
}
