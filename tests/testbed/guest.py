"""The tiny test guest: build it, describe it to libvirt, talk to it.

The guest (tests/testbed/guest/) is a Debian cloud kernel plus a busybox
initramfs. It boots in a few seconds under TCG and

* prints ``LIFECYCLE-READY boots=N`` on ttyS0 when ready, N being a boot
  counter kept on the data disk ``vda`` (formatted on first boot), or 0
  without a data disk;
* before that, prints what its cloud-init NoCloud seed declares: it mounts
  the block device labelled ``cidata`` (an ISO 9660 CD-ROM on the IDE bus -
  the kernel has no SATA driver - or an ISO 9660 or VFAT virtio disk)
  read-only and prints ``LIFECYCLE-SEED instance-id=I local-hostname=H``
  from its meta-data, or ``LIFECYCLE-SEED none`` without one;
* powers off cleanly on the ACPI power button, unless booted with
  ``noacpi=True`` (then it ignores it, to test forced shutdown);
* runs a root shell on ttyS1, reachable through a unix socket
  (:class:`GuestShell`);
* with a NIC (``extra_devices``), asks for a DHCP lease on eth0 with
  busybox ``udhcpc`` in the background, after the ready marker.

Standard library only: the tests decide how to reach libvirt.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import textwrap
import time
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

REPO_DIR = Path(__file__).resolve().parents[2]
GUEST_SRC_DIR = Path(__file__).resolve().parent / "guest"
GUEST_DIR = REPO_DIR / ".cache" / "guest"

READY_MARKER = "LIFECYCLE-READY"
_READY_RE = re.compile(rf"{READY_MARKER} boots=(\d+)")
SEED_MARKER = "LIFECYCLE-SEED"
_SEED_RE = re.compile(rf"^{SEED_MARKER} (.*?)\r?$", re.MULTILINE)


def _attr(value: object) -> str:
    """An XML attribute value in single quotes, like the rest of the template."""
    return "'" + escape(str(value), {"'": "&apos;"}) + "'"


def build(outdir: str | os.PathLike = GUEST_DIR) -> Path:
    """Build (or reuse) ``outdir/vmlinuz`` and ``outdir/initrd.img``; return ``outdir``."""
    result = subprocess.run(
        ["bash", str(GUEST_SRC_DIR / "build.sh"), str(outdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"guest build failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return Path(outdir)


def domain_xml(
    name: str,
    *,
    domain_type: str = "qemu",
    memory_mib: int = 256,
    vcpus: int = 1,
    data_disk: str | os.PathLike | None = None,
    data_disk_format: str = "qcow2",
    serial_log: str | os.PathLike | None = None,
    shell_socket: str | os.PathLike | None = None,
    noacpi: bool = False,
    kernel: str | os.PathLike | None = None,
    initrd: str | os.PathLike | None = None,
    extra_devices: str = "",
) -> str:
    """Return the domain XML of a test guest booting the built kernel/initrd.

    ``data_disk`` becomes virtio ``vda``. ``serial_log`` receives ttyS0 (where
    the ready marker appears); libvirt empties it whenever a new QEMU process
    starts, not on reboot. ``shell_socket`` is the path of the unix socket for
    :class:`GuestShell` (libvirt creates it; its directory must exist).
    ``noacpi`` makes the guest ignore ACPI shutdown/reboot requests.
    ``extra_devices`` is raw XML put inside ``<devices>``.

    Use TCG (the default ``domain_type='qemu'``): this kernel does not boot
    under the test machines' KVM. There is no ``<uuid>``: redefining a
    defined name with this XML fails ("already exists with uuid"), undefine
    it first.
    """
    kernel = Path(kernel) if kernel else GUEST_DIR / "vmlinuz"
    initrd = Path(initrd) if initrd else GUEST_DIR / "initrd.img"
    cmdline = "console=ttyS0 quiet" + (" lifecycle.noacpi" if noacpi else "")

    devices = []
    if data_disk is not None:
        devices.append(
            "    <disk type='file' device='disk'>\n"
            f"      <driver name='qemu' type={_attr(data_disk_format)}/>\n"
            f"      <source file={_attr(data_disk)}/>\n"
            "      <target dev='vda' bus='virtio'/>\n"
            "    </disk>"
        )
    log_xml = (
        f"      <log file={_attr(serial_log)} append='off'/>\n" if serial_log else ""
    )
    devices.append(
        "    <serial type='pty'>\n"
        f"{log_xml}"
        "      <target port='0'/>\n"
        "    </serial>"
    )
    if shell_socket is not None:
        devices.append(
            "    <serial type='unix'>\n"
            f"      <source mode='bind' path={_attr(shell_socket)}/>\n"
            "      <target port='1'/>\n"
            "    </serial>"
        )
    if extra_devices.strip():
        devices.append(
            textwrap.indent(textwrap.dedent(extra_devices).strip("\n"), "    ")
        )
    devices_xml = "\n".join(devices)

    return f"""\
<domain type={_attr(domain_type)}>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{int(memory_mib)}</memory>
  <vcpu>{int(vcpus)}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(kernel))}</kernel>
    <initrd>{escape(str(initrd))}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
{devices_xml}
  </devices>
</domain>
"""


def _read_text(path: str | os.PathLike) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def wait_marker(
    log_path: str | os.PathLike, count: int = 1, timeout: float = 60
) -> int:
    """Wait until the serial log holds ``count`` ready markers; return the last boots=N.

    Count markers relative to the current log: it starts empty with each new
    QEMU process (start, restore) but keeps growing across guest reboots.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = _read_text(log_path)
        boots = _READY_RE.findall(text)
        if len(boots) >= count:
            return int(boots[-1])
        if time.monotonic() >= deadline:
            tail = "\n".join(text.splitlines()[-20:])
            raise TimeoutError(
                f"{len(boots)} of {count} '{READY_MARKER}' markers in {log_path} "
                f"after {timeout} s; log tail:\n{tail}"
            )
        time.sleep(0.1)


def seed_reports(log_path: str | os.PathLike) -> list[str]:
    """What the guest said about its seed at each boot of the current log, in order.

    Each is ``none``, ``unreadable DEVICE`` or ``instance-id=I local-hostname=H``.
    The guest prints it before its ready marker: wait for that first.
    """
    return _SEED_RE.findall(_read_text(log_path))


class GuestShell:
    """Run commands in the guest's root shell on ttyS1 through QEMU's unix socket.

    The guest side is an interactive busybox sh on a tty: it echoes the input
    and prints prompts. :meth:`run` brackets the command's output between two
    markers, spelled so that the echoed command line never matches them, and
    returns only what lies between. The shell persists across connections; a
    new connection is made when the old one broke (e.g. the domain restarted).
    Wait for the ready marker before the first command of each boot. Avoid
    tab characters (the shell's line editor completes on them) and ``exit``
    (the shell is respawned, but output still queued is lost).
    """

    def __init__(self, socket_path: str | os.PathLike):
        self.socket_path = str(socket_path)
        self.exit_status: int | None = None  # of the last run()
        self._sock: socket.socket | None = None

    def connect(self, timeout: float = 10) -> None:
        """(Re)connect, waiting up to ``timeout`` s for QEMU to create the socket."""
        self.close()
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
            else:
                self._sock = sock
                return

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> GuestShell:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _drain(self) -> None:
        """Discard pending output (prompts, leftovers of a timed-out command).

        Raise ConnectionError when QEMU has closed the connection.
        """
        assert self._sock is not None
        self._sock.setblocking(False)
        try:
            while True:
                if not self._sock.recv(65536):
                    raise ConnectionResetError("guest shell socket closed")
        except BlockingIOError:
            pass
        finally:
            self._sock.setblocking(True)

    def run(self, command: str, timeout: float = 10) -> str:
        """Run a shell command in the guest; return its output (stdout and stderr).

        The exit status is left in :attr:`exit_status`.
        """
        token = uuid.uuid4().hex
        begin, end = f"@@BEGIN-{token}@@", f"@@END-{token}-"
        # All on one line, so the shell (and the tty) echo the whole input
        # before anything runs. Quotes split the markers in that echo: only
        # the output of the echo commands contains them whole. `command eval`
        # keeps a syntax error in `command` from aborting the whole line.
        line = (
            f"echo '@@BEGIN-'{token}'@@'; command eval {shlex.quote(command)}; "
            f"echo '@@END-'{token}'-'$?'@@'\n"
        )
        # Fresh connection if there is none or QEMU dropped the old one
        # (nothing was sent yet, so retrying cannot run the command twice).
        try:
            if self._sock is None:
                raise ConnectionResetError
            self._drain()
        except OSError:
            self.connect(timeout)
        assert self._sock is not None
        self._sock.sendall(line.encode())

        deadline = time.monotonic() + timeout
        received = b""
        end_re = re.compile(re.escape(end) + r"(\d+)@@")
        while True:
            text = received.decode("utf-8", errors="replace")
            match = end_re.search(text)
            if match:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Interrupt the command (ttyS1 is the shell's controlling tty)
                # so that the shell takes the next command.
                self._sock.sendall(b"\x03")
                raise TimeoutError(
                    f"guest shell: no result for {command!r} in {timeout} s:\n{text}"
                )
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                self.close()
                raise ConnectionResetError(
                    f"guest shell socket closed while running {command!r}"
                )
            received += chunk

        self.exit_status = int(match.group(1))
        output = text[text.index(begin) + len(begin) : match.start()]
        # The tty turns "\n" into "\r\n"; the first one ends the begin marker.
        return output.replace("\r\n", "\n").removeprefix("\n")
