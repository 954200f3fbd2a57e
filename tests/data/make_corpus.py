#!/usr/bin/env python3
"""Regenerate the domain XML corpus of tests/integration/test_xml_corpus.py.

Run on a host with virt-install and a qemu:///system libvirtd (as root):

    python tests/data/make_corpus.py

It writes, under tests/data/domains/:

* virt-install/<case>.xml - `virt-install --print-xml` for each option
  combination of CASES (the XML most people start from);
* dumpxml/<case>.inactive.xml - `virsh dumpxml --inactive` of that XML once
  defined, and dumpxml/<case>.live.xml - plain `virsh dumpxml` of the domain
  while it runs (its disks are empty scratch images; it is destroyed at once);
* SKIPPED.txt - the cases libvirt or QEMU refused here, with libvirt's reason.

With --formatdomain PATH (formatdomain.html of the Debian package
libvirt-doc, the documentation of the installed libvirt: `apt-get download
libvirt-doc` and `dpkg-deb -x`), it also writes formatdomain/<n>.xml: each
example of that page as a whole domain (a fragment is placed into a minimal
QEMU domain; an example listing alternatives gives one document each).
With --formatnetwork PATH (formatnetwork.html, likewise) it writes
tests/data/networks/formatnetwork/<n>.xml: each example as a network (a
fragment becomes the content of a network of its own).
Every object it makes is named lltest-corpus-* and removed again.
"""

import argparse
import html
import os
import re
import subprocess
import sys
import time

import libvirt
from lxml import etree

URI = 'qemu:///system'
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'domains')
IMAGES = '/var/lib/libvirt/images'

DISK = 'path=%s/{name}.qcow2,size=1,format=qcow2' % IMAGES

# name -> extra virt-install arguments (the base gives name, memory, vcpus,
# osinfo, virt type and --import).
CASES = {
    'default': ['--disk', DISK],
    'no-disk': ['--disk', 'none'],
    'console-pty': ['--disk', DISK, '--graphics', 'none', '--console', 'pty'],
    'console-pty-virtio': ['--disk', DISK, '--graphics', 'none', '--console', 'pty,target.type=virtio'],
    'serial-pty': ['--disk', DISK, '--graphics', 'none', '--serial', 'pty'],
    'serial-file': ['--disk', DISK, '--graphics', 'none', '--serial', 'file,path=/var/log/lltest-corpus.log'],
    'serial-tcp': ['--disk', DISK, '--graphics', 'none', '--serial', 'tcp,host=127.0.0.1:4555,mode=bind,protocol.type=telnet'],
    'serial-unix': ['--disk', DISK, '--graphics', 'none', '--serial', 'unix,path=/run/lltest-corpus.sock,mode=bind'],
    'two-serials': ['--disk', DISK, '--graphics', 'none', '--serial', 'pty', '--serial', 'pty'],
    'parallel': ['--disk', DISK, '--parallel', 'pty'],
    'vnc': ['--disk', DISK, '--graphics', 'vnc'],
    'vnc-listen': ['--disk', DISK, '--graphics', 'vnc,listen=0.0.0.0,port=5977'],
    'vnc-password': ['--disk', DISK, '--graphics', 'vnc,password=s3cret'],
    'spice': ['--disk', DISK, '--graphics', 'spice'],
    'spice-password': ['--disk', DISK, '--graphics', 'spice,password=s3cret'],
    'graphics-none': ['--disk', DISK, '--graphics', 'none'],
    'video-vga': ['--disk', DISK, '--video', 'vga'],
    'video-virtio': ['--disk', DISK, '--video', 'virtio'],
    'video-qxl': ['--disk', DISK, '--video', 'qxl'],
    'video-cirrus': ['--disk', DISK, '--video', 'cirrus'],
    'video-bochs': ['--disk', DISK, '--video', 'bochs'],
    'video-none': ['--disk', DISK, '--graphics', 'none', '--video', 'none'],
    'sound-ich9': ['--disk', DISK, '--sound', 'ich9'],
    'sound-ac97': ['--disk', DISK, '--sound', 'ac97'],
    'sound-none': ['--disk', DISK, '--sound', 'none'],
    'channel-agent': ['--disk', DISK, '--channel', 'unix,target.type=virtio,target.name=org.qemu.guest_agent.0'],
    'channel-spicevmc': ['--disk', DISK, '--graphics', 'spice', '--channel', 'spicevmc'],
    'channel-agent-and-spicevmc': ['--disk', DISK, '--graphics', 'spice', '--channel', 'spicevmc',
                                   '--channel', 'unix,target.type=virtio,target.name=org.qemu.guest_agent.0'],
    'channel-pty-guestfwd': ['--disk', DISK, '--channel', 'pty,target.type=guestfwd,target.address=10.0.2.1,target.port=4600'],
    'rng-urandom': ['--disk', DISK, '--rng', '/dev/urandom'],
    'rng-builtin': ['--disk', DISK, '--rng', 'builtin'],
    'rng-egd-unix': ['--disk', DISK, '--rng', 'egd,backend.type=unix,backend.source.path=/run/lltest-egd.sock,backend.source.mode=bind'],
    'tpm-emulator': ['--disk', DISK, '--tpm', 'emulator'],
    'tpm-passthrough': ['--disk', DISK, '--tpm', '/dev/tpm0'],
    'tpm-none': ['--disk', DISK, '--tpm', 'none'],
    'watchdog-i6300esb': ['--disk', DISK, '--watchdog', 'i6300esb,action=poweroff'],
    'watchdog-ib700': ['--disk', DISK, '--watchdog', 'ib700,action=reset'],
    'uefi-loader': ['--disk', DISK, '--boot', 'loader=/usr/share/qemu/bios-256k.bin,loader.readonly=yes,loader.type=rom'],
    'firmware-efi': ['--disk', DISK, '--boot', 'uefi'],
    'cpu-host-passthrough': ['--disk', DISK, '--cpu', 'host-passthrough'],
    'cpu-host-model': ['--disk', DISK, '--cpu', 'host-model'],
    'cpu-custom': ['--disk', DISK, '--cpu', 'qemu64,+x2apic,-vmx'],
    'cpu-topology': ['--disk', DISK, '--vcpus', '4,sockets=2,cores=2,threads=1', '--cpu', 'qemu64'],
    'vcpus-hotplug': ['--disk', DISK, '--vcpus', '2,maxvcpus=4'],
    'memory-backing-hugepages': ['--disk', DISK, '--memorybacking', 'hugepages=yes'],
    'memory-backing-memfd': ['--disk', DISK, '--memorybacking', 'source.type=memfd,access.mode=shared'],
    'memory-hotplug': ['--disk', DISK, '--memory', '256,maxmemory=1024', '--cpu', 'qemu64,cell0.memory=262144,cell0.cpus=0'],
    'numa-two-cells': ['--disk', DISK, '--vcpus', '2', '--memory', '512',
                       '--cpu', 'qemu64,cell0.memory=262144,cell0.cpus=0,cell1.memory=262144,cell1.cpus=1'],
    'numatune': ['--disk', DISK, '--numatune', '0,mode=preferred'],
    'memtune': ['--disk', DISK, '--memtune', 'hard_limit=1048576,soft_limit=524288'],
    'iothreads': ['--disk', 'path=%s/{name}.qcow2,size=1,format=qcow2,bus=virtio,driver.iothread=1' % IMAGES,
                  '--iothreads', '2'],
    'filesystem-9p': ['--disk', DISK, '--filesystem', '/srv,share'],
    'filesystem-virtiofs': ['--disk', DISK, '--memorybacking', 'source.type=memfd,access.mode=shared',
                            '--filesystem', 'type=mount,accessmode=passthrough,driver.type=virtiofs,source.dir=/srv,target.dir=share'],
    'usb-none': ['--disk', DISK, '--controller', 'type=usb,model=none', '--graphics', 'none'],
    'usb-qemu-xhci': ['--disk', DISK, '--controller', 'usb,model=qemu-xhci'],
    'usb-ich9-ehci': ['--disk', DISK, '--controller', 'usb,model=ich9-ehci1'],
    'usb2': ['--disk', DISK, '--controller', 'usb2'],
    'q35': ['--disk', DISK, '--machine', 'q35'],
    'q35-usb2': ['--disk', DISK, '--machine', 'q35', '--controller', 'usb2'],
    'disk-virtio-none': ['--disk', 'path=%s/{name}.qcow2,size=1,format=qcow2,bus=virtio,cache=none' % IMAGES],
    'disk-sata-writeback': ['--disk', 'path=%s/{name}.qcow2,size=1,format=qcow2,bus=sata,cache=writeback' % IMAGES],
    'disk-scsi-writethrough': ['--disk', 'path=%s/{name}.qcow2,size=1,format=qcow2,bus=scsi,cache=writethrough' % IMAGES],
    'disk-ide-unsafe': ['--disk', 'path=%s/{name}.qcow2,size=1,format=qcow2,bus=ide,cache=unsafe' % IMAGES],
    'disk-usb-directsync': ['--disk', 'path=%s/{name}.qcow2,size=1,format=qcow2,bus=usb,cache=directsync' % IMAGES],
    'disk-sd': ['--disk', 'path=%s/{name}.qcow2,size=1,format=qcow2,bus=sd' % IMAGES],
    'disk-raw-io-native': ['--disk', 'path=%s/{name}.img,size=1,format=raw,bus=virtio,cache=none,io=native' % IMAGES],
    'disk-pool-volume': ['--disk', 'vol=default/{name}.qcow2,bus=virtio'],
    'disk-pool-volume-type': ['--disk', 'vol=default/{name}.qcow2,bus=virtio', '--xml', './devices/disk/@type=volume',
                              '--xml', 'xpath.delete=./devices/disk/source/@file',
                              '--xml', './devices/disk/source/@pool=default',
                              '--xml', './devices/disk/source/@volume={name}.qcow2'],
    'disk-cdrom-and-floppy': ['--disk', DISK, '--disk', 'device=cdrom,bus=sata', '--disk', 'device=floppy'],
    'disk-readonly-shareable': ['--disk', 'path=%s/{name}.img,size=1,format=raw,bus=virtio,readonly=on,shareable=on' % IMAGES],
    'network-user': ['--disk', DISK, '--network', 'user'],
    'network-default': ['--disk', DISK, '--network', 'network=default,model=virtio'],
    'network-bridge': ['--disk', DISK, '--network', 'bridge=lltestbr0,model=e1000e'],
    'network-two-nics': ['--disk', DISK, '--network', 'user,mac=52:54:00:12:34:56', '--network', 'user,model=rtl8139'],
    'network-none': ['--disk', DISK, '--network', 'none'],
    'boot-menu': ['--disk', DISK, '--boot', 'hd,cdrom,menu=on'],
    'boot-kernel': ['--disk', DISK, '--graphics', 'none', '--boot', 'kernel=/boot/vmlinuz-corpus,initrd=/boot/initrd-corpus,kernel_args=console=ttyS0'],
    'boot-useserial': ['--disk', DISK, '--boot', 'hd,useserial=on,bios.rebootTimeout=0'],
    'features-clock': ['--disk', DISK, '--features', 'acpi=on,apic=on,pae=on', '--clock', 'offset=localtime,rtc_tickpolicy=catchup'],
    'events': ['--disk', DISK, '--events', 'on_poweroff=destroy,on_reboot=restart,on_crash=preserve'],
    'redirdev-and-smartcard': ['--disk', DISK, '--graphics', 'spice', '--redirdev', 'usb,type=spicevmc',
                               '--smartcard', 'passthrough,type=spicevmc'],
    'redirfilter': ['--disk', DISK, '--graphics', 'spice', '--redirdev', 'usb,type=spicevmc',
                    '--xml', './devices/redirfilter/usbdev/@allow=yes'],
    'input-tablet-keyboard': ['--disk', DISK, '--input', 'tablet', '--input', 'keyboard,bus=virtio'],
    'memballoon-none': ['--disk', DISK, '--memballoon', 'none'],
    'panic-and-vsock': ['--disk', DISK, '--panic', 'default', '--vsock', 'cid.auto=yes'],
    'metadata': ['--disk', DISK, '--metadata', 'title=Corpus,description=A domain of the corpus'],
    'resource-and-seclabel': ['--disk', DISK, '--seclabel', 'type=none'],
    'hostdev-free-pci-none': ['--disk', DISK, '--hostdev', '0x1234:0x5678'],
}


def virt_install(name, extra):
    command = ['virt-install', '--connect', URI, '--print-xml', '--dry-run', '--name', name,
               '--memory', '256', '--vcpus', '1', '--osinfo', 'detect=off,require=off', '--virt-type', 'qemu',
               '--import', '--noautoconsole'] + [arg.format(name=name) for arg in extra]
    if '--network' not in extra:
        # This host has no 'default' network: user networking lets it start.
        command += ['--network', 'user']
    if '--memory' in extra:
        command[command.index('--memory') + 1:command.index('--memory') + 2] = []
        command.remove('--memory')
    if '--vcpus' in extra:
        command[command.index('--vcpus') + 1:command.index('--vcpus') + 2] = []
        command.remove('--vcpus')
    for _attempt in range(10):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if 'has asynchronous jobs running' not in done.stderr:
            break
        time.sleep(3)  # another client's job on the pool (a wipe, an upload)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1]
    return done.stdout, None


def scratch_images(root_xml):
    """Create the disk images a domain points at (empty), so it can start."""
    root = etree.fromstring(root_xml.encode())
    made = []
    for source in root.iterfind('devices/disk/source'):
        path = source.get('file')
        if path and not os.path.exists(path):
            driver = source.getparent().find('driver')
            fmt = driver.get('type') if driver is not None and driver.get('type') else 'raw'
            subprocess.run(['qemu-img', 'create', '-q', '-f', fmt, path, '16M'], check=True)
            made.append(path)
    return made


# The minimal domain a documentation fragment is placed in.
BASE_DOMAIN = """<domain type='qemu'><name>lltest-doc</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>"""

# Children of <domain> (everything else in an example is a device).
DOMAIN_CHILDREN = frozenset((
    'name', 'uuid', 'genid', 'title', 'description', 'metadata', 'os', 'bootloader', 'bootloader_args',
    'sysinfo', 'vcpu', 'vcpus', 'iothreads', 'iothreadids', 'cputune', 'memory', 'maxMemory', 'currentMemory',
    'memoryBacking', 'memtune', 'numatune', 'resource', 'cpu', 'features', 'clock', 'on_poweroff', 'on_reboot',
    'on_crash', 'on_lockfailure', 'pm', 'perf', 'idmap', 'seclabel', 'keywrap', 'launchSecurity',
    'blkiotune', 'throttlegroups', 'devices', 'hugepages', 'defaultiothread'))


def example_elements(html_path):
    """The top-level elements of each <pre> example of a libvirt
    documentation page that is XML (prose, shell commands and elided
    examples are passed over)."""
    with open(html_path) as page:
        blocks = re.findall(r'<pre[^>]*>(.*?)</pre>', page.read(), re.S)
    for block in blocks:
        text = html.unescape(re.sub(r'<[^>]+>', '', block))
        text = '\n'.join(line for line in text.splitlines() if line.strip() not in ('...', '..', '....'))
        try:
            fragment = etree.fromstring('<fragment>%s</fragment>' % text)
        except etree.XMLSyntaxError:
            continue
        top = [child for child in fragment if isinstance(child.tag, str)]
        if top:
            yield top


def documentation_examples(html_path):
    """Each <pre> example of formatdomain.html as whole domain documents."""
    documents = []
    for top in example_elements(html_path):
        if top[0].tag == 'domain':
            if top[0].find('name') is not None:
                documents.extend(etree.tostring(child, encoding='unicode') for child in top if child.tag == 'domain')
                continue
            top = list(top[0])  # a fragment written inside <domain>
        # A top-level kind written twice lists alternatives: one document each.
        kinds = [child.tag for child in top if child.tag in DOMAIN_CHILDREN and child.tag != 'devices']
        repeated = [kind for kind in set(kinds) if kinds.count(kind) > 1]
        variants = [[child] for child in top] if repeated else [top]
        for variant in variants:
            domain = etree.fromstring(BASE_DOMAIN)
            devices = domain.find('devices')
            for child in variant:
                if child.tag == 'devices':
                    for device in child:
                        if device.tag == 'emulator':
                            devices.remove(devices.find('emulator'))
                        devices.append(device)
                elif child.tag in DOMAIN_CHILDREN:
                    for old in domain.findall(child.tag):
                        domain.remove(old)
                    devices.addprevious(child)
                elif isinstance(child.tag, str):
                    devices.append(child)
            documents.append(etree.tostring(domain, encoding='unicode'))
    return documents


def network_examples(html_path):
    """Each <pre> example of formatnetwork.html as a whole network document:
    a fragment goes into a network of its own name."""
    documents = []
    for index, top in enumerate(example_elements(html_path)):
        if top[0].tag == 'network':
            network = top[0]
        else:
            network = etree.fromstring('<network/>')
            network.extend(top)
        if network.find('name') is None:
            network.insert(0, etree.fromstring('<name>example%d</name>' % index))
        documents.append(etree.tostring(network, encoding='unicode'))
    return documents


def write_documentation_examples(documents, directory):
    os.makedirs(directory, exist_ok=True)
    for index, document in enumerate(documents):
        with open(os.path.join(directory, '%03d.xml' % index), 'w') as out:
            out.write(document + '\n')


def generate(conn, case, name, extra):
    """Write the documents of one case; return what could not be made."""
    printed, error = virt_install(name, extra)
    if printed is None:
        return ['%s: virt-install refused it: %s' % (case, error)]
    with open(os.path.join(OUT, 'virt-install', case + '.xml'), 'w') as out:
        out.write(printed)
    try:
        domain = conn.defineXML(printed)
    except libvirt.libvirtError as exc:
        return ['%s: libvirt refused to define it: %s' % (case, exc.get_error_message())]
    made = []
    try:
        with open(os.path.join(OUT, 'dumpxml', case + '.inactive.xml'), 'w') as out:
            out.write(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        made = scratch_images(printed)
        try:
            domain.create()
        except libvirt.libvirtError as exc:
            return ['%s.live: QEMU did not start here: %s' % (case, exc.get_error_message())]
        with open(os.path.join(OUT, 'dumpxml', case + '.live.xml'), 'w') as out:
            out.write(domain.XMLDesc(0))
        domain.destroy()
        return []
    finally:
        domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_TPM)
        for path in made:
            os.unlink(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--formatdomain', help='formatdomain.html of libvirt-doc; only the examples are written')
    parser.add_argument('--formatnetwork', help='formatnetwork.html of libvirt-doc; only the examples are written')
    parser.add_argument('cases', nargs='*', help='regenerate only these cases of CASES')
    args = parser.parse_args()
    if args.formatdomain or args.formatnetwork:
        if args.formatdomain:
            write_documentation_examples(documentation_examples(args.formatdomain), os.path.join(OUT, 'formatdomain'))
        if args.formatnetwork:
            write_documentation_examples(network_examples(args.formatnetwork),
                                         os.path.join(HERE, 'networks', 'formatnetwork'))
        return
    conn = libvirt.open(URI)
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    skipped_file = os.path.join(OUT, 'SKIPPED.txt')
    skipped = []
    if args.cases and os.path.exists(skipped_file):
        with open(skipped_file) as previous:
            skipped = [line.rstrip('\n') for line in previous
                       if re.split(r'[.:]', line)[0] not in args.cases]
    for directory in ('virt-install', 'dumpxml'):
        os.makedirs(os.path.join(OUT, directory), exist_ok=True)
    pool = conn.storagePoolLookupByName('default')
    for index, (case, extra) in enumerate(sorted(CASES.items())):
        if args.cases and case not in args.cases:
            continue
        name = 'lltest-corpus-%02d' % index
        volume = None
        if any(arg.startswith('vol=default/') for arg in extra):
            volume = pool.createXML("<volume><name>%s.qcow2</name><capacity unit='MiB'>16</capacity>"
                                    "<target><format type='qcow2'/></target></volume>" % name, 0)
        try:
            skipped += generate(conn, case, name, extra)
        finally:
            if volume is not None:
                volume.delete(0)
        print(case, file=sys.stderr)
    pool.refresh(0)
    with open(skipped_file, 'w') as out:
        out.write(''.join(line + '\n' for line in sorted(skipped)))


if __name__ == '__main__':
    main()
