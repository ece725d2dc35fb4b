/*
 * skiff ctl: a client for a running skiff's management API (skiff run --api-sock PATH),
 * Firecracker's REST API over HTTP/1.1 on a Unix socket.
 */
#ifndef SKIFF_CTL_H
#define SKIFF_CTL_H

/*
 * Runs "skiff ctl ARGS...": argv[0] is the first argument after "ctl". Returns the exit
 * status: 0 on success, 1 when the server refused the request, 2 on any other error.
 */
int ctl_main(int argc, char *const argv[]);

#endif
