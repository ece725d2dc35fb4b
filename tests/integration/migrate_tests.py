"""Live migration between two "hosts": network namespaces joined by a veth pair, made here,
with a skiff in each; the probe's counter guest (which keeps dirtying and checking a memory
pattern) moves from one to the other."""
import os
import shutil
import subprocess
import uuid

from harness import Guest, Skip, check, probe_lines
from api_tests import _started, expect, test
from core_tests import counters

SRC_IP, DST_IP = "10.77.0.1", "10.77.0.2"


class Hosts:
    """Two namespaces, src and dst, with a veth pair between them."""

    def __enter__(self):
        if os.geteuid() != 0 or not shutil.which("ip"):
            raise Skip("needs root and iproute2 for the network namespaces")
        tag = uuid.uuid4().hex[:6]
        self.src, self.dst = f"skiff-src-{tag}", f"skiff-dst-{tag}"
        self.src_dev = f"vs{tag}"
        for ns in (self.src, self.dst):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        run = lambda ns, *cmd: subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)  # noqa: E731
        subprocess.run(["ip", "link", "add", f"vs{tag}", "netns", self.src, "type", "veth",
                        "peer", "name", f"vd{tag}", "netns", self.dst], check=True)
        for ns, dev, ip in ((self.src, f"vs{tag}", SRC_IP), (self.dst, f"vd{tag}", DST_IP)):
            run(ns, "ip", "link", "set", "lo", "up")
            run(ns, "ip", "addr", "add", ip + "/24", "dev", dev)
            run(ns, "ip", "link", "set", dev, "up")
        return self

    def __exit__(self, *exc):
        for ns in (self.src, self.dst):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def limit(self, rate, burst):
        """Slows the source's side of the link down, with a token bucket."""
        subprocess.run(["ip", "netns", "exec", self.src, "tc", "qdisc", "add", "dev",
                        self.src_dev, "root", "tbf", "rate", rate, "burst", burst, "latency",
                        "400ms"], check=True)

    def skiff(self, ns, argv, env=None):
        g = Guest(["ip", "netns", "exec", ns] + argv, env=env)
        _started.append(g)
        return g


def destination(ctx, hosts, port, env=None):
    g = hosts.skiff(hosts.dst, [ctx.skiff, "run", "--incoming", f"tcp:{DST_IP}:{port}",
                                "--debug-exit", "--log-level", "info"],
                    env=dict(os.environ, **(env or {})))
    check(g.wait_output("waiting on", stream="err"), f"no destination: {g.errors()}")
    return g


def source(ctx, hosts, cmdline="test=counter counter_ms=10 counter_mib=16", memory="256M",
           env=None):
    sock = os.path.join(ctx.tmp, f"mig-{uuid.uuid4().hex[:6]}.sock")
    g = hosts.skiff(hosts.src, [ctx.skiff, "run", "--api-sock", sock, "--kernel", ctx.probe,
                                "--cpus", "2", "--memory", memory, "--cmdline", cmdline,
                                "--debug-exit", "--log-level", "info"],
                    env=dict(os.environ, **(env or {})))
    check(g.wait_output("probe: counter=3 "), f"the source guest did not count: {g.errors()}")
    return g, sock


def wait_phase(g, sock, phases):
    """Polls GET /migrate until its phase is one of phases; returns the answer."""
    for _ in range(600):
        status, _ = expect(sock, "GET", "/migrate", status=200)
        if status["phase"] in phases:
            return status
        g.wait_output("never printed", timeout=0.05)  # the guest's output, read meanwhile
    check(False, f"migration never reached {phases}: {status}")


def last_counter(g):
    g.wait_output("never printed", timeout=0.05)
    seen = counters(probe_lines(g.text()))
    return seen[-1] if seen else 0


def expect_still_running(g, sock):
    """After a failed migration the source runs on, unharmed."""
    info, _ = expect(sock, "GET", "/", status=200)
    check(info["state"] == "Running", info)
    last = last_counter(g)
    check(g.wait_output(f"probe: counter={last + 3} "), f"the source stopped: {g.text()[-300:]}")
    check("result=fail" not in g.text(), g.text()[-300:])


@test
def migrate_counter_moves_to_another_host(ctx):
    with Hosts() as hosts:
        dst = destination(ctx, hosts, 4444)
        src, sock = source(ctx, hosts)
        expect(sock, "PUT", "/migrate", {"destination": f"tcp:{DST_IP}:4444"})
        status = src.wait_exit()
        check(status == 0, f"the source exited {status}: {src.errors()}")
        check("migrated to" in src.errors(), src.errors())
        last = counters(probe_lines(src.text()))[-1]
        check(dst.wait_output(f"probe: counter={last + 5} "),
              f"the destination did not go on from {last}: {dst.text()[:300]} {dst.errors()}")
        # The console goes on where it stopped, maybe in the middle of a line.
        seen = counters(probe_lines(src.text() + dst.text()))
        check(seen == list(range(1, len(seen) + 1)), f"the counter went {seen}")
        check("result=fail" not in dst.text(), dst.text()[-300:])


@test
def migrate_refused_before_the_source_pauses(ctx):
    with Hosts() as hosts:
        dst = destination(ctx, hosts, 4445, env={"SKIFF_MIGRATE_VERSION": "99"})
        src, sock = source(ctx, hosts)
        expect(sock, "PUT", "/migrate", {"destination": f"tcp:{DST_IP}:4445"})
        status = wait_phase(src, sock, ("failed", "completed"))
        check(status["phase"] == "failed" and "version" in status["error"], status)
        check(status["dirty_passes"] == 0 and status["bytes_sent"] < 65536, status)
        check(dst.wait_exit() == 2 and "refusing the migration" in dst.errors(), dst.errors())
        expect_still_running(src, sock)


@test
def migrate_cut_at_each_phase_leaves_the_source_running(ctx):
    for phase in ("ram", "dirty", "state"):
        with Hosts() as hosts:
            dst = destination(ctx, hosts, 4446)
            # A guest that dirties 1 MiB a millisecond, so that there are dirty passes.
            src, sock = source(ctx, hosts, cmdline="test=counter counter_ms=1 counter_mib=64",
                               env={"SKIFF_MIGRATE_CUT_AT": phase})
            expect(sock, "PUT", "/migrate", {"destination": f"tcp:{DST_IP}:4446",
                                             "downtime_ms": 1})
            status = wait_phase(src, sock, ("failed", "completed"))
            check(status["phase"] == "failed", f"cut at {phase}: {status}")
            check(dst.wait_exit() == 2, f"cut at {phase}: destination {dst.errors()}")
            expect_still_running(src, sock)
            expect(sock, "PUT", "/actions", {"action_type": "InstanceStop"})
            check(src.wait_exit() == 0, src.errors())


@test
def migrate_cancel_resumes_nothing_lost(ctx):
    with Hosts() as hosts:
        # A slow link, so that the first pass over RAM is still going when we cancel.
        hosts.limit("20mbit", "32kbit")
        dst = destination(ctx, hosts, 4447)
        src, sock = source(ctx, hosts, cmdline="test=counter counter_ms=10 counter_mib=64")
        expect(sock, "PUT", "/migrate", {"destination": f"tcp:{DST_IP}:4447"})
        wait_phase(src, sock, ("ram",))
        expect(sock, "PATCH", "/vm", {"state": "Paused"}, status=400)  # not while migrating
        expect(sock, "DELETE", "/migrate")
        status = wait_phase(src, sock, ("cancelled", "failed", "completed"))
        check(status["phase"] == "cancelled", status)
        check(dst.wait_exit() == 2, dst.errors())
        expect_still_running(src, sock)
        expect(sock, "DELETE", "/migrate", status=400)  # nothing left to cancel


@test
def migrate_with_disks_needs_no_shared_storage(ctx):
    src_img = ctx.file("mig-src.img", bytes(4 << 20))
    dst_img = os.path.join(ctx.tmp, "mig-dst.img")  # made by the destination
    with Hosts() as hosts:
        dst = hosts.skiff(hosts.dst, [ctx.skiff, "run", "--incoming", f"tcp:{DST_IP}:4448",
                                      "--disk", dst_img + ",id=data", "--debug-exit",
                                      "--log-level", "info"])
        check(dst.wait_output("waiting on", stream="err"), dst.errors())
        # The guest writes a sector every tick and checks the one before: data written on
        # the source is read back on the destination.
        src, sock = hosts_source_with_disk(ctx, hosts, src_img)
        # skiff ctl follows it to the end and sums it up.
        p = subprocess.run([ctx.skiff, "ctl", "--api-sock", sock, "migrate",
                            f"tcp:{DST_IP}:4448", "--with-disks"], capture_output=True,
                           text=True, timeout=120)
        check(p.returncode == 0 and p.stdout.startswith(f"migrated to tcp:{DST_IP}:4448: ") and
              "downtime" in p.stdout, f"ctl migrate: {p.returncode} {p.stdout!r} {p.stderr!r}")
        check(src.wait_exit() == 0, src.errors())
        last = counters(probe_lines(src.text()))[-1]
        check(dst.wait_output(f"probe: counter={last + 70} "),
              f"the destination stopped: {dst.text()[-300:]} {dst.errors()}")
        check("result=fail" not in dst.text(), dst.text()[-300:])
        dst.signal(15)
        check(dst.wait_exit() == 128 + 15, dst.errors())
        final = counters(probe_lines(dst.text()))[-1]
        image = open(dst_img, "rb").read()
        check(len(image) == 4 << 20, f"the destination's image is {len(image)} bytes")
        for n in range(final - 62, final + 1):
            sector = image[(n % 64) * 512:(n % 64) * 512 + 512]
            check(sector == b"skiffctr" + n.to_bytes(8, "little") * 63,
                  f"sector {n % 64} does not hold line {n}")


def hosts_source_with_disk(ctx, hosts, image):
    sock = os.path.join(ctx.tmp, f"mig-{uuid.uuid4().hex[:6]}.sock")
    g = hosts.skiff(hosts.src, [ctx.skiff, "run", "--api-sock", sock, "--kernel", ctx.probe,
                                "--memory", "128M", "--disk", image + ",id=data", "--cmdline",
                                "test=counter counter_ms=10 counter_blk=1", "--debug-exit",
                                "--log-level", "info"])
    check(g.wait_output("probe: counter=3 "), f"the source guest did not count: {g.errors()}")
    return g, sock


@test
def migrate_throttles_a_guest_that_outruns_the_link(ctx):
    with Hosts() as hosts:
        # 200 Mbit/s, and a guest rewriting its 8 MiB region every 8 ms: the dirty set never
        # shrinks by itself, so the source has to slow the guest down.
        hosts.limit("200mbit", "256kbit")
        dst = destination(ctx, hosts, 4449)
        src, sock = source(ctx, hosts, memory="64M",
                           cmdline="test=counter counter_ms=1 counter_mib=8")
        expect(sock, "PUT", "/migrate", {"destination": f"tcp:{DST_IP}:4449"})
        status = wait_phase(src, sock, ("dirty-passes",))
        for _ in range(400):
            status, _ = expect(sock, "GET", "/migrate", status=200)
            if status["throttle_percent"] or status["phase"] != "dirty-passes":
                break
            src.wait_output("never printed", timeout=0.05)
        check(status["throttle_percent"] > 0, f"never throttled: {status}")
        check(src.wait_exit(120) == 0, f"the migration did not end: {src.errors()[-500:]}")
        check("throttling it to" in src.errors(), src.errors()[-500:])
        last = counters(probe_lines(src.text()))[-1]
        check(dst.wait_output(f"probe: counter={last + 5} "), dst.errors())
        check("result=fail" not in dst.text(), dst.text()[-300:])


@test
def migrate_to_another_tap(ctx):
    with Hosts() as hosts:
        for ns, tap in ((hosts.src, "tsrc"), (hosts.dst, "tdst")):
            subprocess.run(["ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", tap,
                            "mode", "tap", "vnet_hdr"], check=True)
        dsock = os.path.join(ctx.tmp, "mig-dst.sock")
        dst = hosts.skiff(hosts.dst, [ctx.skiff, "run", "--incoming", f"tcp:{DST_IP}:4450",
                                      "--net", "tap=tdst", "--api-sock", dsock,
                                      "--debug-exit", "--log-level", "info"])
        check(dst.wait_output("waiting on", stream="err"), dst.errors())
        sock = os.path.join(ctx.tmp, "mig-tap.sock")
        src = hosts.skiff(hosts.src, [ctx.skiff, "run", "--api-sock", sock, "--kernel",
                                      ctx.probe, "--net", "tap=tsrc", "--cmdline",
                                      "test=counter", "--debug-exit"])
        check(src.wait_output("probe: counter=2 "), src.errors())
        expect(sock, "PUT", "/migrate", {"destination": f"tcp:{DST_IP}:4450"})
        check(src.wait_exit() == 0, src.errors())
        last = counters(probe_lines(src.text()))[-1]
        check(dst.wait_output(f"probe: counter={last + 2} "), dst.errors())
        config, _ = expect(dsock, "GET", "/vm/config", status=200)
        check(config["network-interfaces"][0]["host_dev_name"] == "tdst", config)
        expect(dsock, "PUT", "/actions", {"action_type": "InstanceStop"})
        check(dst.wait_exit() == 0, dst.errors())
