"""The management API: Firecracker's REST API on a Unix socket, spoken with curl as its
users would, and skiff ctl."""
import json
import os
import socket
import stat
import subprocess
import threading

from harness import Guest, check, expect_pass, probe_lines, run, test as harness_test
from core_tests import counters

_started = []


def test(fn):
    """A test whose skiffs are killed when it ends, passed or not."""
    def wrapper(ctx):
        try:
            fn(ctx)
        finally:
            while _started:
                _started.pop().kill()
    wrapper.__name__ = fn.__name__
    return harness_test(wrapper)


def api(sock, method, path, body=None, raw=None):
    """One request with curl; returns (HTTP status, parsed JSON or text or None, headers)."""
    argv = ["curl", "-s", "--max-time", "10", "--unix-socket", sock, "-X", method,
            "-D", "-", "-o", "/dev/stdout", f"http://localhost{path}"]
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if data is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    p = subprocess.run(argv, input=(data or "").encode() if isinstance(data, str) or data is None
                       else data, capture_output=True, timeout=20)
    check(p.returncode == 0, f"curl {method} {path}: exit {p.returncode} {p.stderr!r}")
    head, _, payload = p.stdout.decode(errors="replace").partition("\r\n\r\n")
    status = int(head.split()[1])
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
               for l in head.split("\r\n")[1:] if ":" in l}
    if headers.get("content-type") == "application/json":
        payload = json.loads(payload)
    return status, payload or None, headers


def expect(sock, method, path, body=None, status=204, raw=None):
    got, payload, headers = api(sock, method, path, body, raw)
    check(got == status, f"{method} {path}: HTTP {got}, want {status}: {payload}")
    if status >= 400:
        check(isinstance(payload, dict) and payload.get("fault_message"),
              f"{method} {path}: no fault_message in {payload!r}")
    return payload, headers


def start(ctx, *extra, sock_name="api.sock", level="info"):
    """skiff run --api-sock, ready once it logs that it waits (or boots)."""
    sock = os.path.join(ctx.tmp, sock_name)
    g = Guest([ctx.skiff, "run", "--api-sock", sock, "--log-level", level, "--debug-exit",
               *extra])
    _started.append(g)
    check(g.wait_output(f"serving the API on {sock}", stream="err"),
          f"no API socket: {g.errors()}")
    return g, sock


def boot_counter(ctx, *extra):
    g, sock = start(ctx, "--kernel", ctx.probe, "--cmdline", "test=counter", *extra)
    check(g.wait_output("probe: counter=2 "), f"no counter: {g.text()} {g.errors()}")
    return g, sock


def stop(g, sock):
    expect(sock, "PUT", "/actions", {"action_type": "InstanceStop"})
    status = g.wait_exit()
    check(status == 0, f"exit status {status} after InstanceStop: {g.errors()}")
    check(not os.path.exists(sock), "the socket outlived skiff")


@test
def api_getting_started_boots_the_probe(ctx):
    disk = ctx.file("rootfs.img", bytes(1 << 20))
    g, sock = start(ctx, level="debug")
    info, _ = expect(sock, "GET", "/", status=200)
    check(info["state"] == "Not started" and info["app_name"] == "skiff", info)
    # Firecracker's getting-started sequence, in its order.
    expect(sock, "PUT", "/boot-source", {"kernel_image_path": ctx.probe,
                                         "boot_args": "test=blk-id"})
    expect(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": disk,
                                           "is_root_device": True, "is_read_only": False})
    expect(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    expect(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    status = g.wait_exit()
    lines = expect_pass(status, g.text(), g.errors(), "blk-id")
    check("probe: cpus=2 mem_mib=256" in lines and "probe: blk-id id=rootfs" in lines, lines)
    # Firecracker's root device: root=/dev/vda rw joined the command line.
    check("kernel command line: test=blk-id root=/dev/vda rw" in g.errors(), g.errors())
    check(not os.path.exists(sock), "the socket outlived skiff")


@test
def api_bad_requests_get_4xx(ctx):
    g, sock = start(ctx)
    cases = [
        ("PUT", "/boot-source", None, '{"kernel_image_path": ', 400),          # malformed
        ("PUT", "/boot-source", {"kernel_image_path": 7}, None, 400),           # wrong type
        ("PUT", "/boot-source", {"kernel_image_path": "/k", "x": 1}, None, 400),  # unknown field
        ("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 128}, None, 400),
        ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 1 << 40}, None, 400),
        ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128, "smt": True},
         None, 400),
        ("PATCH", "/machine-config", {"vcpu_count": "2"}, None, 400),
        ("PUT", "/drives/a", {"drive_id": "b", "path_on_host": "/d", "is_root_device": False},
         None, 400),
        ("PUT", "/boot-source", None, "", 400),                                  # no body
        ("PUT", "/boot-source", None, "[]", 400),
        ("GET", "/nowhere", None, None, 404),
        ("PUT", "/balloon", {"amount_mib": 1}, None, 400),                       # not ours yet
        ("PATCH", "/vm", {"state": "Paused"}, None, 400),                        # not started
        ("PATCH", "/drives/a", {"drive_id": "a", "path_on_host": "/d"}, None, 400),
        ("PUT", "/actions", {"action_type": "FlushMetrics"}, None, 400),         # no metrics
        ("PUT", "/actions", {"action_type": "InstanceStart"}, None, 400),        # no kernel
        ("PUT", "/actions", {"action_type": "Explode"}, None, 400),
        ("PUT", "/serial", {"serial_out_path": "/nonexistent/dir/file"}, None, 400),
        ("PUT", "/metrics", {"metrics_path": "/nonexistent/dir/file"}, None, 400),
        ("PUT", "/logger", {"level": "Loud"}, None, 400),
    ]
    for method, path, body, raw, want in cases:
        expect(sock, method, path, body, status=want, raw=raw)
    # A body announced too big is refused before it is read (curl, still sending, might
    # see the connection close first: talk to the socket directly).
    big = socket.socket(socket.AF_UNIX)
    big.connect(sock)
    big.settimeout(10)
    big.sendall(b"PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n")
    answer = big.recv(4096)
    check(answer.startswith(b"HTTP/1.1 413") and b"fault_message" in answer, answer)
    big.close()
    _, headers = expect(sock, "DELETE", "/machine-config", status=405)
    check(headers.get("allow") == "GET, PUT, PATCH", headers)

    # A client that sends half a request and stalls, and one that half-closes, hold no one up.
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(sock)
    slow.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    half = socket.socket(socket.AF_UNIX)
    half.connect(sock)
    half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    half.shutdown(socket.SHUT_WR)
    info, _ = expect(sock, "GET", "/", status=200)
    check(info["state"] == "Not started", info)
    half.settimeout(10)
    check(half.recv(4096).startswith(b"HTTP/1.1 200"), "the half-closed client got no answer")
    half.close()
    slow.close()

    # After all that, the VM still boots.
    expect(sock, "PUT", "/boot-source", {"kernel_image_path": ctx.probe,
                                         "boot_args": "test=hello"})
    expect(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    expect_pass(g.wait_exit(), g.text(), g.errors(), "hello")


@test
def api_pause_stops_the_counter(ctx):
    g, sock = boot_counter(ctx)
    expect(sock, "PUT", "/boot-source", {"kernel_image_path": ctx.probe}, status=400)
    expect(sock, "PATCH", "/vm", {"state": "Paused"})
    info, _ = expect(sock, "GET", "/", status=200)
    check(info["state"] == "Paused", info)
    g.wait_output("never printed", timeout=0.1)  # what the guest printed before the pause
    before = counters(probe_lines(g.text()))
    # While paused the guest prints nothing: watch its output for 0.6 s (6 ticks).
    g.wait_output("never printed", timeout=0.6)
    check(counters(probe_lines(g.text())) == before,
          f"counter advanced while paused: {before} -> {counters(probe_lines(g.text()))}")
    expect(sock, "PATCH", "/vm", {"state": "Resumed"})
    last = before[-1]
    check(g.wait_output(f"probe: counter={last + 3} "), f"counter did not resume: {g.text()}")
    seen = counters(probe_lines(g.text()))
    check(seen == list(range(1, len(seen) + 1)), f"counter skipped or repeated: {seen}")
    check("result=fail" not in g.text(), g.text())  # the memory pattern held
    stop(g, sock)


@test
def api_vm_config_round_trips(ctx):
    disk = ctx.file("data.img", bytes(1 << 20))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fwd = f"tcp:127.0.0.1:{port}-:22"
    g, sock = boot_counter(ctx, "--cpus", "2", "--memory", "192M", "--disk", disk + ",id=data",
                           "--rng", "--net", "user,hostfwd=" + fwd)
    config, _ = expect(sock, "GET", "/vm/config", status=200)
    stop(g, sock)
    check(config["machine-config"]["vcpu_count"] == 2 and
          config["machine-config"]["mem_size_mib"] == 192, config)
    check(config["drives"][0]["drive_id"] == "data" and "entropy" in config, config)
    check(config["network-interfaces"][0]["user_net"]["hostfwd"] == [fwd],
          config)
    # Fed back as a config file, it boots the same VM (with another test to run).
    config["boot-source"]["boot_args"] = "test=blk-id"
    path = ctx.file("again.json", json.dumps(config).encode())
    status, out, err = run([ctx.skiff, "run", "--config-file", path, "--debug-exit"])
    lines = expect_pass(status, out, err, "blk-id")
    check("probe: cpus=2 mem_mib=192" in lines and "probe: blk-id id=data" in lines, lines)


@test
def api_serves_clients_at_once(ctx):
    g, sock = start(ctx)
    errors = []

    def client(n):
        try:
            for i in range(10):
                expect(sock, "PUT", "/machine-config", {"vcpu_count": 1 + n % 4,
                                                        "mem_size_mib": 128 + n})
                got, _ = expect(sock, "GET", "/machine-config", status=200)
                check(got["vcpu_count"] in (1, 2, 3, 4), got)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not errors, errors[:1])
    got, _ = expect(sock, "GET", "/machine-config", status=200)
    # The last PUT wins whole: both fields come from one client's request.
    check(got["vcpu_count"] == 1 + (got["mem_size_mib"] - 128) % 4, f"a torn update: {got}")
    expect(sock, "PUT", "/actions", {"action_type": "InstanceStop"})
    check(g.wait_exit() == 0, g.errors())


@test
def api_socket_mode_and_stale_socket(ctx):
    path = os.path.join(ctx.tmp, "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # a socket file no one listens on, as a killed skiff leaves
    g, sock = start(ctx, sock_name="stale.sock")
    check(stat.S_IMODE(os.stat(sock).st_mode) == 0o600, oct(os.stat(sock).st_mode))
    # A second skiff on a live socket is refused, and so is a path that is not a socket.
    status, _, err = run([ctx.skiff, "run", "--api-sock", sock], timeout=20)
    check(status == 2 and "another process is serving it" in err, err)
    plain = ctx.file("plain-file", b"keep me")
    status, _, err = run([ctx.skiff, "run", "--api-sock", plain], timeout=20)
    check(status == 2 and "not a socket" in err and open(plain, "rb").read() == b"keep me", err)
    g.signal(15)
    check(g.wait_exit() == 128 + 15, g.errors())
    check(not os.path.exists(sock), "the socket outlived skiff")


@test
def api_metrics_logger_and_serial(ctx):
    log = os.path.join(ctx.tmp, "skiff.log")
    metrics = os.path.join(ctx.tmp, "metrics.json")
    serial = os.path.join(ctx.tmp, "serial.out")
    g, sock = start(ctx)
    expect(sock, "PUT", "/logger", {"log_path": log, "level": "Info", "show_level": True})
    expect(sock, "PUT", "/metrics", {"metrics_path": metrics, "properties": {"host": "h1"}})
    expect(sock, "PUT", "/metrics", {"metrics_path": metrics}, status=400)  # only once
    expect(sock, "PUT", "/serial", {"serial_out_path": serial})
    expect(sock, "PUT", "/boot-source", {"kernel_image_path": ctx.probe,
                                         "boot_args": "test=counter"})
    expect(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    # The guest's console now goes to the file.
    for _ in range(200):
        g.wait_output("never printed", timeout=0.05)
        if os.path.exists(serial) and b"probe: counter=2 " in open(serial, "rb").read():
            break
    check(b"probe: counter=2 " in open(serial, "rb").read(), "no counter in serial_out_path")
    check("probe:" not in g.text(), "the console still went to stdout")
    expect(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    expect(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    lines = open(metrics).read().splitlines()
    check(len(lines) == 2, lines)
    first = json.loads(lines[0])
    check(first["vcpu_exits_total"]["io"] > 0 and first["uptime_us"] > 0, first)
    check(first["properties"] == {"host": "h1"} and first["api_responses_total"]["2xx"] >= 5,
          first)
    text, headers = expect(sock, "GET", "/metrics", status=200)
    check(headers["content-type"].startswith("text/plain"), headers)
    check("# TYPE skiff_vcpu_exits_total counter" in text and
          'skiff_api_requests_total{request="flush_metrics"} 2' in text, text)
    stop(g, sock)
    logged = open(log).read()
    check("skiff: [INFO] " in logged and "InstanceStop" in logged, logged)


@test
def api_patch_drive_swaps_the_image(ctx):
    old = ctx.file("old.img", bytes(1 << 20))
    new = ctx.file("new.img", bytes(2 << 20))
    g, sock = boot_counter(ctx, "--disk", old + ",id=data")
    expect(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": "/nonexistent"},
           status=400)
    expect(sock, "PATCH", "/drives/nodrive", {"drive_id": "nodrive", "path_on_host": new},
           status=400)
    expect(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": new})
    config, _ = expect(sock, "GET", "/vm/config", status=200)
    check(config["drives"][0]["path_on_host"] == new, config)
    # The old image is free again: another VM can write it.
    status, out, err = ctx.boot(["--disk", old], cmdline="test=hello")
    expect_pass(status, out, err, "hello")
    stop(g, sock)


@test
def ctl_controls_a_running_vm(ctx):
    g, sock = boot_counter(ctx, "--cpus", "2", "--memory", "96M")

    def ctl(*args, want=0):
        p = subprocess.run([ctx.skiff, "ctl", "--api-sock", sock, *args], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == want, f"ctl {args}: exit {p.returncode}: {p.stderr}")
        return p.stdout

    out = ctl("status")
    check("state: Running" in out and "vcpus: 2" in out and "memory: 96 MiB" in out, out)
    ctl("pause")
    check(json.loads(ctl("--json", "status"))["instance_info"]["state"] == "Paused", "")
    ctl("resume")
    check(json.loads(ctl("config", "--json"))["machine-config"]["vcpu_count"] == 2, "")
    ctl("stop")
    check(g.wait_exit() == 0, g.errors())
    p = subprocess.run([ctx.skiff, "ctl", "--api-sock", sock, "status"], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 2 and sock in p.stderr, p.stderr)
