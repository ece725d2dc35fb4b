"""Integration tests of virtio-net: the probe's UDP echo through user-mode networking
(libslirp) and through a TAP device in a network namespace the test makes itself."""
import os
import shutil
import socket
import subprocess
import sys
import threading

from harness import (Guest, Skip, check, expect_error, expect_pass, probe_lines, run,
                     test)
from virtio_tests import qemu_virtio_argv

ECHO_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)
"""


class UdpEcho:
    """A UDP echo server on loopback, for as long as the test runs."""

    def __enter__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(65536)
                self.sock.sendto(data, peer)
            except OSError:
                return

    def __exit__(self, *exc):
        self.sock.close()


def expect_echo(status, out, err):
    lines = expect_pass(status, out, err, "net-echo")
    check("probe: net-echo sent=3 received=3" in lines, lines)


@test
def net_user_echo(ctx):
    with UdpEcho() as echo:
        expect_echo(*ctx.boot(memory="256M", extra=["--net", "user"],
                              cmdline=f"test=net-echo net_peer=10.0.2.2:{echo.port}"))


@test
def net_user_same_as_qemu(ctx):
    with UdpEcho() as echo:
        cmdline = f"test=net-echo net_peer=10.0.2.2:{echo.port}"
        argv = qemu_virtio_argv(ctx, cmdline, ["-netdev", "user,id=n0",
                                               "-device", "virtio-net-device,netdev=n0"])
        qs, qout, qerr = run(argv, timeout=120)
        ss, sout, serr = ctx.boot(memory="256M", extra=["--net", "user"], cmdline=cmdline)
    check(qs == 1 and ss == 1, f"exit statuses QEMU {qs} skiff {ss}: {qerr[:200]} {serr[:200]}")
    check(probe_lines(sout) == probe_lines(qout), f"{probe_lines(sout)} != {probe_lines(qout)}")


def netns_run(ns, *cmd):
    subprocess.run(["ip", "netns", "exec", ns] + list(cmd), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@test
def net_tap_echo_in_netns(ctx):
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun"):
        raise Skip("needs root, iproute2 and /dev/net/tun")
    ns = f"skiff-it-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    server = None
    try:
        netns_run(ns, "ip", "link", "set", "lo", "up")
        netns_run(ns, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "vnet_hdr")
        netns_run(ns, "ip", "addr", "add", "10.0.3.1/24", "dev", "tap0")
        netns_run(ns, "ip", "link", "set", "tap0", "up")
        server = Guest(["ip", "netns", "exec", ns, sys.executable, "-c", ECHO_SERVER,
                        "10.0.3.1", "7"])
        check(server.wait_output("ready"), server.errors())
        argv = ["ip", "netns", "exec", ns] + ctx.argv(
            "--net", "tap=tap0,mac=02:00:00:00:03:02", memory="256M",
            cmdline="test=net-echo net_ip=10.0.3.2 net_peer=10.0.3.1:7")
        status, out, err = run(argv)
        expect_echo(status, out, err)
    finally:
        if server:
            server.kill()
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


@test
def net_bad_options(ctx):
    expect_error(ctx, ctx.argv("--net", "tap=nosuchtap9"), "tap=nosuchtap9")
    expect_error(ctx, ctx.argv("--net", "tap=t0,mac=01:02:03:04:05:06"), "bad MAC")
    expect_error(ctx, ctx.argv("--net", "user,mac=zz:zz"), "bad MAC")
    expect_error(ctx, ctx.argv("--net", "bridge=br0"), "tap=IFNAME or user")
    expect_error(ctx, ctx.argv("--net", "user,hostfwd=tcp::0-:22"), "bad hostfwd")
    expect_error(ctx, ctx.argv("--net", "user,mac=02:00:00:00:00:01",
                               "--net", "user,mac=02:00:00:00:00:01"), "MAC used")
