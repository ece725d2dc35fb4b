/*
 * virtio-net (virtio 1.2 §5.1) with just enough Ethernet, ARP (RFC 826), IPv4 and UDP to
 * exchange datagrams with one peer through one gateway, and the net-echo test. After net_open,
 * all of it runs at CPL3.
 */
#include "virtio.h"

#define NET_F_MAC		5
#define NET_HDR_LEN		12	/* virtio_net_hdr; 1.x always has num_buffers */
#define NET_RX_QUEUE		0
#define NET_TX_QUEUE		1
#define NET_LOCAL_PORT		40000
#define NET_TRIES		5
#define NET_RETRY_TSC		(1ULL << 31)	/* no calibration: about a second */

#define ETH_HLEN		14
#define ETH_MIN_PAYLOAD		46
#define ETH_P_IP		0x0800
#define ETH_P_ARP		0x0806
#define ARP_LEN			28
#define ARP_HW_ETHER		1
#define ARP_REQUEST		1
#define ARP_REPLY		2
#define IP_HLEN			20
#define IP_DONT_FRAGMENT	0x4000
#define IP_FRAGMENT_BITS	0x3fff	/* more-fragments and the offset */
#define IP_TTL			64
#define IP_PROTO_UDP		17
#define UDP_HLEN		8

#define ECHO_COUNT		3
#define ECHO_ALL		((1u << ECHO_COUNT) - 1)
#define ECHO_PREFIX		"skiff-echo-"
#define ECHO_LEN		(sizeof(ECHO_PREFIX))	/* the prefix and one digit */

struct echo_job {
	struct net *net;
	unsigned int sent;	/* bit i: "skiff-echo-<i+1>" went out at least once */
	unsigned int received;
	const char *reason;
};

static const uint8_t broadcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t zero_mac[6];
/* Locally administered, for a device that has no MAC of its own (§5.1.5). */
static const uint8_t fallback_mac[6] = { 0x02, 0x73, 0x6b, 0x69, 0x66, 0x66 };

static struct net net_dev;

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* A.B.C.D; returns what follows it, or NULL. */
static const char *parse_ipv4(const char *s, uint32_t *ip)
{
	uint64_t octet;
	int i;

	*ip = 0;
	for (i = 0; i < 4; i++) {
		if (i && *s++ != '.')
			return NULL;
		s = parse_u64(s, &octet);
		if (!s || octet > 255)
			return NULL;
		*ip = *ip << 8 | (uint32_t)octet;
	}
	return s;
}

/* net_ip=A.B.C.D, net_peer=A.B.C.D:PORT, net_gw=A.B.C.D. */
static const char *parse_addresses(const struct probe *p, struct net *net)
{
	const char *s;
	uint64_t port;

	net->ip = 0x0a00020f;
	net->peer = 0x0a000202;
	net->peer_port = 7;
	s = cmdline_value(p, "net_ip", NULL);
	if (s && !parse_ipv4(s, &net->ip))
		return "bad-net-ip";
	s = cmdline_value(p, "net_peer", NULL);
	if (s) {
		s = parse_ipv4(s, &net->peer);
		if (!s || *s++ != ':' || !parse_u64(s, &port) || !port || port > 0xffff)
			return "bad-net-peer";
		net->peer_port = (uint16_t)port;
	}
	net->gw = net->peer;
	s = cmdline_value(p, "net_gw", NULL);
	if (s && !parse_ipv4(s, &net->gw))
		return "bad-net-gw";
	return NULL;
}

const char *net_open(const struct probe *p, struct net *net)
{
	const char *reason = parse_addresses(p, net);
	unsigned int i;

	if (!reason)
		reason = virtio_find(p, VIRTIO_ID_NET, &net->dev);
	if (!reason)
		reason = virtio_start(&net->dev, BIT(NET_F_MAC) | BIT(VIRTIO_F_RING_EVENT_IDX));
	if (!reason)
		reason = virtq_init(&net->dev, &net->rx, NET_RX_QUEUE);
	if (!reason)
		reason = virtq_init(&net->dev, &net->tx, NET_TX_QUEUE);
	if (reason)
		return reason;
	for (i = 0; i < 6; i++) {
		net->mac[i] = net->dev.features & BIT(NET_F_MAC) ? virtio_config8(&net->dev, i)
								 : fallback_mac[i];
	}
	virtio_ready(&net->dev);
	return NULL;
}

static void rx_post(struct net *net, uint8_t *buf)
{
	struct virtq_buf b = { buf, NET_BUF_SIZE, true };

	virtq_add(&net->rx, &b, 1, NULL, buf);
}

/* CPL3: receive buffers to the device, transmit buffers to the free list. */
void net_start(struct net *net)
{
	unsigned int i;

	for (i = 0; i < NET_BUFS && i < net->rx.size; i++)
		rx_post(net, net->rx_bufs[i]);
	virtq_kick(&net->rx);
	for (i = 0; i < NET_BUFS && i < net->tx.size; i++)
		net->tx_free[net->tx_free_count++] = net->tx_bufs[i];
}

/* A free transmit buffer with its headers written: where the frame's payload goes, or NULL. */
static uint8_t *frame_start(struct net *net, const uint8_t *dst, uint16_t type)
{
	uint8_t *buf, *eth;

	if (!net->tx_free_count)
		return NULL;
	buf = net->tx_free[--net->tx_free_count];
	eth = buf + NET_HDR_LEN;
	memset(buf, 0, NET_HDR_LEN);
	memcpy(eth, dst, 6);
	memcpy(eth + 6, net->mac, 6);
	put16(eth + 12, type);
	return eth + ETH_HLEN;
}

static void frame_send(struct net *net, uint8_t *payload, uint32_t len)
{
	uint8_t *buf = payload - ETH_HLEN - NET_HDR_LEN;
	struct virtq_buf b;

	if (len < ETH_MIN_PAYLOAD) {
		memset(payload + len, 0, ETH_MIN_PAYLOAD - len);
		len = ETH_MIN_PAYLOAD;
	}
	b = (struct virtq_buf){ buf, NET_HDR_LEN + ETH_HLEN + len, false };
	/* Cannot fail: there are no more transmit buffers than descriptors. */
	virtq_add(&net->tx, &b, 1, NULL, buf);
	virtq_kick(&net->tx);
}

static void arp_send(struct net *net, uint16_t op, const uint8_t *dst, const uint8_t *target_mac,
		     uint32_t target_ip)
{
	uint8_t *a = frame_start(net, dst, ETH_P_ARP);

	if (!a)
		return;
	put16(a, ARP_HW_ETHER);
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, net->mac, 6);
	put32(a + 14, net->ip);
	memcpy(a + 18, target_mac, 6);
	put32(a + 24, target_ip);
	frame_send(net, a, ARP_LEN);
}

static void arp_receive(struct net *net, const uint8_t *a)
{
	uint32_t sender = get32(a + 14);

	if (get16(a) != ARP_HW_ETHER || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4)
		return;
	if (sender == net->gw) {
		memcpy(net->gw_mac, a + 8, 6);
		net->gw_known = true;
	}
	if (get16(a + 6) == ARP_REQUEST && get32(a + 24) == net->ip)
		arp_send(net, ARP_REPLY, a + 8, a + 8, sender);
}

static uint16_t ip_checksum(const uint8_t *p, uint32_t len)
{
	uint32_t sum = 0, i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Hands datagrams from the peer to our port to net->udp_rx; drops everything else. */
static void ip_receive(struct net *net, const uint8_t *ip, uint32_t len)
{
	uint32_t hlen, total, udp_len;
	const uint8_t *udp;

	if (len < IP_HLEN || ip[0] >> 4 != 4)
		return;
	hlen = (ip[0] & 0xf) * 4u;
	total = get16(ip + 2);
	if (hlen < IP_HLEN || total > len || total < hlen + UDP_HLEN)
		return;
	if (ip[9] != IP_PROTO_UDP || (get16(ip + 6) & IP_FRAGMENT_BITS) ||
	    get32(ip + 12) != net->peer || get32(ip + 16) != net->ip)
		return;
	udp = ip + hlen;
	udp_len = get16(udp + 4);
	if (get16(udp) != net->peer_port || get16(udp + 2) != NET_LOCAL_PORT ||
	    udp_len < UDP_HLEN || udp_len > total - hlen)
		return;
	if (net->udp_rx)
		net->udp_rx(net->udp_arg, udp + UDP_HLEN, udp_len - UDP_HLEN);
}

static void frame_receive(struct net *net, const uint8_t *eth, uint32_t len)
{
	if (len < ETH_HLEN)
		return;
	if (get16(eth + 12) == ETH_P_ARP && len >= ETH_HLEN + ARP_LEN)
		arp_receive(net, eth + ETH_HLEN);
	else if (get16(eth + 12) == ETH_P_IP)
		ip_receive(net, eth + ETH_HLEN, len - ETH_HLEN);
}

/* CPL3: takes back sent buffers, handles and re-posts received ones; returns frames sent. */
uint64_t net_poll(struct net *net)
{
	uint64_t sent = 0;
	bool received = false;
	uint8_t *buf;
	uint32_t len;

	while ((buf = virtq_get(&net->tx, &len))) {
		net->tx_free[net->tx_free_count++] = buf;
		sent++;
	}
	while ((buf = virtq_get(&net->rx, &len))) {
		if (len > NET_HDR_LEN && len <= NET_BUF_SIZE)
			frame_receive(net, buf + NET_HDR_LEN, len - NET_HDR_LEN);
		rx_post(net, buf);
		received = true;
	}
	if (received)
		virtq_kick(&net->rx);
	return sent;
}

/* CPL3 */
bool net_resolve_gateway(struct net *net)
{
	uint64_t deadline;
	int try;

	for (try = 0; try < NET_TRIES && !net->gw_known; try++) {
		arp_send(net, ARP_REQUEST, broadcast_mac, zero_mac, net->gw);
		deadline = rdtsc() + NET_RETRY_TSC;
		while (!net->gw_known && rdtsc() < deadline)
			net_poll(net);
	}
	return net->gw_known;
}

/* CPL3: one datagram to the peer through the gateway; len is at most NET_UDP_MAX. */
int net_send_udp(struct net *net, const void *data, uint32_t len)
{
	uint8_t *ip = frame_start(net, net->gw_mac, ETH_P_IP), *udp;

	if (!ip)
		return -1;
	ip[0] = 0x45;	/* version 4, 5 words of header */
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(IP_HLEN + UDP_HLEN + len));
	put16(ip + 4, net->ip_id++);
	put16(ip + 6, IP_DONT_FRAGMENT);
	ip[8] = IP_TTL;
	ip[9] = IP_PROTO_UDP;
	put16(ip + 10, 0);
	put32(ip + 12, net->ip);
	put32(ip + 16, net->peer);
	put16(ip + 10, ip_checksum(ip, IP_HLEN));
	udp = ip + IP_HLEN;
	put16(udp, NET_LOCAL_PORT);
	put16(udp + 2, net->peer_port);
	put16(udp + 4, (uint16_t)(UDP_HLEN + len));
	put16(udp + 6, 0);	/* no checksum, as IPv4 allows */
	memcpy(udp + UDP_HLEN, data, len);
	frame_send(net, ip, IP_HLEN + UDP_HLEN + len);
	return 0;
}

static void echo_udp(void *arg, const uint8_t *data, uint32_t len)
{
	struct echo_job *job = arg;
	unsigned int n;

	if (len != ECHO_LEN || memcmp(data, ECHO_PREFIX, ECHO_LEN - 1))
		return;
	n = data[ECHO_LEN - 1] - '1';
	if (n < ECHO_COUNT)
		job->received |= 1u << n;
}

static unsigned int echo_count(unsigned int mask)
{
	unsigned int i, n = 0;

	for (i = 0; i < ECHO_COUNT; i++)
		n += mask >> i & 1;
	return n;
}

/* CPL3: sends what has not come back yet, once a try. */
static uint64_t net_echo_user(void *arg)
{
	struct echo_job *job = arg;
	struct net *net = job->net;
	char msg[ECHO_LEN] = ECHO_PREFIX "0";
	uint64_t deadline;
	unsigned int i;
	int try;

	net_start(net);
	if (!net_resolve_gateway(net)) {
		job->reason = "arp-timeout";
		return 1;
	}
	for (try = 0; try < NET_TRIES && job->received != ECHO_ALL; try++) {
		for (i = 0; i < ECHO_COUNT; i++) {
			msg[ECHO_LEN - 1] = (char)('1' + i);
			if (!(job->received & 1u << i) && !net_send_udp(net, msg, ECHO_LEN))
				job->sent |= 1u << i;
		}
		deadline = rdtsc() + NET_RETRY_TSC;
		while (job->received != ECHO_ALL && rdtsc() < deadline)
			net_poll(net);
	}
	if (job->received != ECHO_ALL)
		job->reason = "echo-timeout";
	return 0;
}

const char *test_net_echo(struct probe *p)
{
	struct echo_job job = { .net = &net_dev };
	const char *reason = net_open(p, &net_dev);

	if (reason)
		return reason;
	net_dev.udp_rx = echo_udp;
	net_dev.udp_arg = &job;
	user_run(p->bsp, net_echo_user, &job);
	printk("probe: net-echo sent=%u received=%u\n", echo_count(job.sent),
	       echo_count(job.received));
	return job.reason;
}
