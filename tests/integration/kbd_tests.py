"""SendCtrlAltDel: the keys travel through skiff's i8042 keyboard to the guest, which reads
them at CPL0 by polling the controller (test=kbd)."""
from api_tests import boot_counter, expect, start, stop, test
from harness import check, expect_pass, probe_lines

CTRL_ALT_DEL = "14 11 e0 71 e0 f0 71 f0 11 f0 14"  # scan code set 2: press, then release


@test
def kbd_send_ctrl_alt_del_reaches_the_guest(ctx):
    g, sock = start(ctx, "--kernel", ctx.probe, "--cmdline", "test=kbd")
    check(g.wait_output("probe: kbd waiting"), f"no ready line: {g.text()} {g.errors()}")
    expect(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    lines = expect_pass(g.wait_exit(), g.text(), g.errors(), "kbd")
    check("probe: kbd id=ab83" in lines, f"not an MF2 keyboard: {lines}")
    check(f"probe: kbd bytes={CTRL_ALT_DEL}" in lines, lines)


@test
def kbd_send_ctrl_alt_del_refused_until_the_guest_reads(ctx):
    # test=counter never reads the i8042: the first 11 bytes fit its 16, the next 11 don't.
    g, sock = boot_counter(ctx)
    expect(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    fault, _ = expect(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"}, status=400)
    check("buffer full" in fault["fault_message"], fault)
    check(not any("result=" in l for l in probe_lines(g.text())), g.text())
    stop(g, sock)
