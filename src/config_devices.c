/* The device options of `skiff run`: --disk, --net and their sub-options. */
#include "config.h"

#include "api/vm_json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits "a,b,c" in place; returns the next token or NULL at the end. */
static char *next_token(char **rest)
{
	char *tok = *rest, *comma;

	if (!tok)
		return NULL;
	comma = strchr(tok, ',');
	if (comma) {
		*comma = '\0';
		*rest = comma + 1;
	} else {
		*rest = NULL;
	}
	return tok;
}

int config_parse_mac(const char *text, uint8_t mac[6])
{
	unsigned v[6];
	int end = 0;

	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &end) != 6 || (size_t)end != strlen(text) || strlen(text) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = v[i];
	/* A device address must be unicast and not all zeroes. */
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
	return 0;
}

static int parse_port(const char *text, uint16_t *port)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || v < 1 || v > 65535 || !isdigit((unsigned char)*text))
		return -EINVAL;
	*port = v;
	return 0;
}

static int parse_addr(const char *text, uint32_t *addr)
{
	struct in_addr in;

	if (!*text) {
		*addr = 0;
		return 0;
	}
	if (inet_pton(AF_INET, text, &in) != 1)
		return -EINVAL;
	*addr = in.s_addr;
	return 0;
}

/* [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
int config_parse_hostfwd(const char *text, struct net_hostfwd *fwd)
{
	char buf[128], *proto, *haddr, *hport, *gaddr, *gport, *dash;

	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	proto = buf;
	haddr = strchr(proto, ':');
	if (!haddr)
		return -EINVAL;
	*haddr++ = '\0';
	hport = strchr(haddr, ':');
	dash = hport ? strchr(hport, '-') : NULL;
	if (!dash)
		return -EINVAL;
	*hport++ = '\0';
	*dash = '\0';
	gaddr = dash + 1;
	gport = strrchr(gaddr, ':');
	if (!gport)
		return -EINVAL;
	*gport++ = '\0';
	if (!strcmp(proto, "udp"))
		fwd->udp = true;
	else if (!*proto || !strcmp(proto, "tcp"))
		fwd->udp = false;
	else
		return -EINVAL;
	if (parse_addr(haddr, &fwd->host_addr) || parse_port(hport, &fwd->host_port) ||
	    parse_addr(gaddr, &fwd->guest_addr) || parse_port(gport, &fwd->guest_port))
		return -EINVAL;
	return 0;
}

int config_parse_disk(char *text, struct vm_config *vm)
{
	char *copy = strdup(text), *rest = copy, *tok;
	struct blk_config *disk;
	int ret = -EINVAL;

	if (!copy)
		return -ENOMEM;
	if (vm->nr_disks == VM_MAX_DISKS) {
		fprintf(stderr, "skiff: --disk %s: at most %d disks\n", text, VM_MAX_DISKS);
		goto out;
	}
	disk = &vm->disks[vm->nr_disks];
	memset(disk, 0, sizeof(*disk));
	tok = next_token(&rest);
	if (!*tok) {
		fprintf(stderr, "skiff: --disk %s: the image path comes first\n", text);
		goto out;
	}
	while ((tok = next_token(&rest))) {
		if (!strcmp(tok, "readonly")) {
			disk->readonly = true;
		} else if (!strncmp(tok, "id=", 3) && vm_json_valid_id(tok + 3) &&
			   strlen(tok + 3) <= BLK_ID_MAX) {
			strcpy(disk->id, tok + 3);
		} else {
			fprintf(stderr, "skiff: --disk %s: bad option '%s' (readonly, id=NAME of 1 to "
					"%d of A-Z a-z 0-9 _ . -)\n", text, tok, BLK_ID_MAX);
			goto out;
		}
	}
	for (unsigned i = 0; i < vm->nr_disks; i++) {
		if (disk->id[0] && !strcmp(vm->disks[i].id, disk->id)) {
			fprintf(stderr, "skiff: --disk %s: id=%s is used by another disk\n", text,
				disk->id);
			goto out;
		}
	}
	/* The path is the first token: end it in place, so the config points into argv. */
	text[strcspn(text, ",")] = '\0';
	disk->path = text;
	vm->nr_disks++;
	ret = 0;
out:
	free(copy);
	return ret;
}

int config_parse_net(const char *text, struct vm_config *vm)
{
	char *copy = strdup(text), *rest = copy, *tok;
	struct net_config *net;
	int ret = -EINVAL;

	if (!copy)
		return -ENOMEM;
	if (vm->nr_nets == VM_MAX_NETS) {
		fprintf(stderr, "skiff: --net %s: at most %d network devices\n", text, VM_MAX_NETS);
		goto out;
	}
	net = &vm->nets[vm->nr_nets];
	memset(net, 0, sizeof(*net));
	tok = next_token(&rest);
	if (!strcmp(tok, "user")) {
		net->backend = NET_USER;
	} else if (!strncmp(tok, "tap=", 4) && tok[4] && strlen(tok + 4) < IFNAMSIZ) {
		net->backend = NET_TAP;
		strcpy(net->ifname, tok + 4);
	} else {
		fprintf(stderr, "skiff: --net %s: starts with tap=IFNAME or user\n", text);
		goto out;
	}
	while ((tok = next_token(&rest))) {
		if (!strncmp(tok, "mac=", 4)) {
			if (config_parse_mac(tok + 4, net->mac)) {
				fprintf(stderr, "skiff: --net %s: bad MAC '%s' (want a unicast "
						"XX:XX:XX:XX:XX:XX)\n", text, tok + 4);
				goto out;
			}
			net->mac_set = true;
		} else if (!strncmp(tok, "hostfwd=", 8) && net->backend == NET_USER) {
			if (net->nr_hostfwd == NET_MAX_HOSTFWD ||
			    config_parse_hostfwd(tok + 8, &net->hostfwd[net->nr_hostfwd])) {
				fprintf(stderr, "skiff: --net %s: bad hostfwd '%s' (want [tcp|udp]:"
						"[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, at most "
						"%d)\n", text, tok + 8, NET_MAX_HOSTFWD);
				goto out;
			}
			net->nr_hostfwd++;
		} else {
			fprintf(stderr, "skiff: --net %s: bad option '%s'\n", text, tok);
			goto out;
		}
	}
	for (unsigned i = 0; i < vm->nr_nets; i++) {
		if (net->mac_set && vm->nets[i].mac_set && !memcmp(net->mac, vm->nets[i].mac, 6)) {
			fprintf(stderr, "skiff: --net %s: MAC used by another device\n", text);
			goto out;
		}
	}
	vm->nr_nets++;
	ret = 0;
out:
	free(copy);
	return ret;
}
