#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: domain
short_description: Converge a libvirt domain to a declared state and definition
version_added: 0.1.0
description:
  - Compares the declared state (and, when given, the declared domain XML) of one
    libvirt domain with what libvirt holds, and makes the smallest set of
    lifecycle moves (define, create, start, shutdown, destroy, suspend, resume,
    save, restore, managed save, reboot, undefine) that reach it.
  - The states are libvirt's own - Undefined (V(absent)), Defined/Stopped
    (V(defined)), V(running), V(paused), V(saved) - and every one is reachable
    from every other.
  - The XML comparison is semantic and its rules come from libvirt itself. The
    declared XML is first normalised by libvirt's own parser (its in-process test
    driver, so nothing on a host is touched), so defaults, the
    devices a declaration implies (the serial port of a console, controllers, the
    video card of a graphical console), units and canonical spellings, formatting
    and attribute order do not count as changes. What you write is compared; what
    you leave out is libvirt's. A list you write is complete - two C(<disk>)
    elements declared where libvirt has three removes the third - and a kind of
    device you do not mention at all is removed, except the ones libvirt adds
    itself (controllers, memory balloon, emulator, PS/2 input, audio).
  - A redefinition defines your XML as written, with only the uuid, MAC addresses
    and device addresses libvirt generated kept, so the stored definition is what
    C(virsh define) of your XML gives and those never churn. The XML is accepted
    when C(virsh define) accepts it. See docs/xml-comparison.md in the collection.
  - O(domains) converges many domains in one task, several at once (O(parallel)), each exactly as
    the single form does.
options:
  name: &name
    description:
      - Name of the domain. Required unless O(xml) is given, whose C(<name>) it must match.
    type: str
  xml: &xml
    description:
      - Full domain XML (as from C(virsh dumpxml), C(virt-install --print-xml) or a template).
      - Needed to create the domain; when the domain exists, its definition is
        converged to this XML.
      - Parsed with a hardened parser; a DOCTYPE (and so any entity) is refused.
      - The live XML of a running domain (plain C(virsh dumpxml)) is accepted too; what only
        describes the running process (its id, device aliases, pty paths, detected backing chains,
        dynamic security labels, automatic ports, the CPU model as libvirt expanded it) is not compared.
    type: str
  state:
    description:
      - V(absent) undefines the domain, together with its managed save image,
        snapshot metadata and NVRAM. It never deletes volumes or files. A running or
        paused domain is only removed with O(force=true).
      - V(defined) leaves it defined and stopped. A running guest is shut down
        gracefully (see O(shutdown_timeout)). Saved memory is restored and the guest
        then shut down, so nothing it had in flight is lost.
      - V(running) starts it, resumes it, or restores its saved memory (from
        O(save_file) when given, else from libvirt's managed save image).
      - V(paused) suspends it (starting or restoring it paused first if needed).
      - V(saved) saves its memory to O(save_file), or with libvirt's managed save
        when O(save_file) is not given, and stops it. A stopped domain is saved at
        the instant it powers on.
      - V(restarted) reboots a running guest, or starts a stopped one. It always
        reports a change. When the definition changed, a reboot would keep the old
        configuration, so the domain is shut down and started instead.
    type: str
    choices: [absent, defined, running, paused, saved, restarted]
    default: running
  persistent:
    description:
      - V(true) keeps the domain defined when it stops. V(false) makes a transient
        domain, created from O(xml), which ceases to exist when it stops or is saved
        to O(save_file).
      - An existing transient domain declared persistent is defined in place; a
        running persistent domain declared transient is undefined and keeps running.
    type: bool
    default: true
  autostart: &autostart
    description:
      - Whether libvirtd starts the domain when the host boots. Unchanged when omitted.
      - Only for persistent domains.
    type: bool
  shutdown_timeout:
    description:
      - Seconds to wait for a graceful shutdown (guest agent or ACPI power button,
        repeated every 5 seconds for guests still booting).
      - When it runs out the task fails and the domain keeps running, unless O(force=true).
      - V(0) does not ask the guest at all; with O(force=true) it destroys at once.
    type: int
    default: 120
  force:
    description:
      - Destroy (power off) the domain when the graceful shutdown times out.
      - Required to remove (O(state=absent)) a running or paused domain.
    type: bool
    default: false
  save_file: &save_file
    description:
      - With O(state=saved), save the memory to this file on the hypervisor
        host (works for transient domains, which then cease to exist).
      - With O(state=running), O(state=paused) or O(state=defined), restore from it
        when the domain is not running and the file holds this domain's state.
      - Like C(virsh restore), the file is kept after restoring. An image older than
        any of the domain's disks (the guest ran after it was saved) no longer counts
        as the domain's state - O(state=defined) leaves the domain as it is - and is
        never restored - O(state=running) and O(state=paused) fail and say so, since its
        memory no longer matches the disks. Remove the file, or leave out O(save_file),
        to boot afresh. The ages are compared only when the hypervisor is this host
        (a URI without a host name), and only for disks that are files (writes to a
        block device or a network disk leave no modification time to compare).
      - An existing file is only overwritten when it is an earlier save image of this
        domain, or an incomplete one; a symbolic link, a directory, a device node, another
        file or another domain's image is refused, in check mode too. It is recognised by
        its header (what libvirt reads), not by its name. On a remote hypervisor only
        libvirt can read the file, so there a path libvirt cannot read as a save image
        is refused unless it does not exist.
      - The file holds the guest's memory and is made readable by its owner only (0600),
        also when an older image with a looser mode is overwritten (on a local hypervisor;
        libvirt itself creates new images 0600).
      - A save that is interrupted (the module killed) is finished by libvirt, which
        marks the image complete only at the end; the next run finds it saved.
    type: path
  restart_on_change:
    description:
      - When a running domain's definition changed, apply the new definition now
        by shutting it down (see O(shutdown_timeout), O(force)) and starting it.
      - By default the new definition is stored, and - with O(state=running) - what of it libvirt
        can apply to the running guest is applied live - memory ballooned up to the maximum the guest runs
        with (steps C(grow_memory_live)), vCPUs hot-plugged up to their maximum
        (C(grow_vcpus_live)), new disks and network interfaces attached (C(hotplug)). The
        guest keeps running on the old configuration for the rest, and RV(pending_restart)
        says so.
    type: bool
    default: false
  memory: &memory
    description:
      - Structured definition (instead of O(xml), see docs/structured-definitions.md) - the
        memory the guest has, a size such as V(512M) or V(2G) (C(<currentMemory>)).
      - Required when any structured option is given. The structured options become domain
        XML that is compared, defined and reported exactly as O(xml) is.
    type: str
  max_memory: &max_memory
    description:
      - The most memory the guest can be ballooned up to (C(<memory>)); defaults to O(memory).
    type: str
  vcpus: &vcpus
    description: Virtual CPUs the guest runs with (C(<vcpu current>)); default 1.
    type: int
  max_vcpus: &max_vcpus
    description: The most virtual CPUs the guest can have (C(<vcpu>)); defaults to O(vcpus).
    type: int
  virt_type: &virt_type
    description:
      - The domain type, C(<domain type>) - V(kvm) (hardware virtualisation, the default) or
        V(qemu) (TCG emulation).
    type: str
    choices: [kvm, qemu]
  arch: &arch
    description: The guest architecture (C(<os><type arch>)); libvirt's default (the host's) when omitted.
    type: str
  machine: &machine
    description: The machine type (C(<os><type machine>)), for example V(q35) or V(pc); libvirt's default when omitted.
    type: str
  cpu_mode: &cpu_mode
    description:
      - The CPU the guest sees (C(<cpu mode>)); libvirt's default when omitted. Checked against the
        host's domain capabilities.
    type: str
    choices: [host-passthrough, host-model, custom]
  cpu_model: &cpu_model
    description: The CPU model of O(cpu_mode=custom) (C(<cpu><model>)), one the host's domain capabilities list.
    type: str
  firmware: &firmware
    description:
      - V(bios) (the default) or V(uefi) (C(<os firmware='efi'>), the firmware libvirt picks
        from the host's firmware descriptors). V(uefi) fails, before anything is defined, on a host
        without UEFI firmware.
    type: str
  secure_boot: &secure_boot
    description: With O(firmware=uefi), ask for a secure boot firmware (and SMM); fails when the host has none.
    type: bool
  boot: &boot
    description: The boot order (C(<os><boot dev>)), devices among V(hd), V(cdrom), V(network).
    type: list
    elements: str
  kernel: &kernel
    description: A kernel (a path on the hypervisor host) to boot directly (C(<os><kernel>)), instead of the firmware booting a disk.
    type: str
  initrd: &initrd
    description: The initrd of O(kernel) (C(<os><initrd>)).
    type: str
  cmdline: &cmdline
    description: The kernel command line of O(kernel) (C(<os><cmdline>)).
    type: str
  disks: &disks
    description:
      - The disks, in order (targets C(vda), C(vdb)... per bus). Each is a volume in a pool (O(disks[].pool)
        and O(disks[].volume)) or the volume at a path (O(disks[].path)); a missing pool or volume is an
        error before anything is defined, in check mode too.
    type: list
    elements: dict
    suboptions:
      pool:
        description: The storage pool of the volume.
        type: str
      volume:
        description: The volume's name in O(disks[].pool).
        type: str
      path:
        description: The path of a volume of a storage pool (looked up by libvirt, so it must be in a pool).
        type: str
      bus:
        description: The bus; V(virtio) for disks and V(sata) for CD-ROMs when omitted.
        type: str
        choices: [virtio, sata, scsi, ide, usb]
      device:
        description: V(disk) or V(cdrom) (always read-only).
        type: str
        choices: [disk, cdrom]
        default: disk
      cache:
        description: The cache mode (C(<driver cache>)); the hypervisor's default when omitted.
        type: str
        choices: [default, none, writethrough, writeback, directsync, unsafe]
      readonly:
        description: Attach the disk read-only.
        type: bool
        default: false
      format:
        description: The image format (C(<driver type>)); read from the volume when omitted.
        type: str
  interfaces: &interfaces
    description: The network interfaces, in order; each has one of O(interfaces[].network), O(interfaces[].bridge), O(interfaces[].direct).
    type: list
    elements: dict
    suboptions:
      network:
        description: A libvirt network (it must exist).
        type: str
      bridge:
        description: A bridge of the host.
        type: str
      direct:
        description: A host interface to attach to with macvtap (mode bridge).
        type: str
      mac:
        description: The MAC address; libvirt generates one when omitted, and keeps it on later runs.
        type: str
      model:
        description: The NIC model.
        type: str
        default: virtio
  graphics: &graphics
    description: V(none) (the default), V(vnc) or V(spice).
    type: str
    choices: [none, vnc, spice]
  graphics_listen: &graphics_listen
    description: The address the VNC/SPICE server listens on.
    type: str
  graphics_password: &graphics_password
    description: The VNC/SPICE password; never shown in clear in results or diffs.
    type: str
  serial_console: &serial_console
    description: A serial console (C(<console type='pty'>)); on unless V(false).
    type: bool
  serial_log: &serial_log
    description:
      - A file on the hypervisor host that receives the serial console's output (C(<serial><log append='off'>));
        it starts empty with each new QEMU process. Needs O(serial_console).
    type: str
  guest_agent: &guest_agent
    description:
      - The QEMU guest agent channel (C(org.qemu.guest_agent.0)); on unless V(false). Graceful
        shutdown and quiesced snapshots use it.
    type: bool
  rng: &rng
    description: A virtio random number generator fed from the host's C(/dev/urandom); on unless V(false).
    type: bool
  tpm: &tpm
    description: An emulated TPM 2.0; fails, before anything is defined, when the host cannot emulate one (swtpm).
    type: bool
  description: &description
    description: The domain's C(<description>).
    type: str
  tags: &tags
    description:
      - Tags kept in the domain's C(<metadata>), in the namespace the C(lifecycle.libvirt.libvirt)
        inventory reads by default (they become its C(libvirt_tags)).
    type: list
    elements: str
  domains:
    description:
      - Converge many domains in one task - one module run and one connection - instead of O(name) or O(xml).
      - Each item takes the options of the single form (O(name) or O(xml), O(state), the structured options...).
        An option an item leaves out (or sets to null) takes the value given at the top level of the task,
        so the top-level options are the defaults of every item.
      - Up to O(parallel) domains are converged at once, so the waits of a batch (graceful shutdowns, saves,
        restores) overlap and it takes about as long as its slowest member.
      - Every item is converged exactly as the single form converges it, with the same check mode, diff and
        idempotency. An item that fails does not stop the others; the task then fails at the end, naming
        each failed domain and why, and RV(domains) reports every item.
      - A batch that names one domain twice is refused before anything is done.
    type: list
    elements: dict
    suboptions:
      name: *name
      xml: *xml
      state:
        description: The O(state) of this domain; the top-level O(state) when omitted.
        type: str
        choices: [absent, defined, running, paused, saved, restarted]
      persistent:
        description: The O(persistent) of this domain; the top-level O(persistent) when omitted.
        type: bool
      autostart: *autostart
      shutdown_timeout:
        description: The O(shutdown_timeout) of this domain; the top-level O(shutdown_timeout) when omitted.
        type: int
      force:
        description: The O(force) of this domain; the top-level O(force) when omitted.
        type: bool
      save_file: *save_file
      restart_on_change:
        description: The O(restart_on_change) of this domain; the top-level O(restart_on_change) when omitted.
        type: bool
      memory: *memory
      max_memory: *max_memory
      vcpus: *vcpus
      max_vcpus: *max_vcpus
      virt_type: *virt_type
      arch: *arch
      machine: *machine
      cpu_mode: *cpu_mode
      cpu_model: *cpu_model
      firmware: *firmware
      secure_boot: *secure_boot
      boot: *boot
      kernel: *kernel
      initrd: *initrd
      cmdline: *cmdline
      disks: *disks
      interfaces: *interfaces
      graphics: *graphics
      graphics_listen: *graphics_listen
      graphics_password: *graphics_password
      serial_console: *serial_console
      serial_log: *serial_log
      guest_agent: *guest_agent
      rng: *rng
      tpm: *tpm
      description: *description
      tags: *tags
  parallel:
    description:
      - With O(domains), how many domains are converged at once (each by a thread of the module, sharing its
        connection).
      - V(1) converges them one after another, in order.
    type: int
    default: 8
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
attributes:
  check_mode:
    support: full
    details: Check mode plans the same steps as the real run and reports the same
      C(changed), C(actions) and C(diff); nothing is changed.
  diff_mode:
    support: full
    details: Shows state, persistence and autostart before and after, and the stored
      XML next to the XML that will be defined; with O(domains), for each domain.
  idempotent:
    support: partial
    details: Every state but V(restarted) is idempotent; V(restarted) always reboots
      and always reports a change.
notes:
  - The domain's volumes are never deleted; use M(lifecycle.libvirt.volume).
  - Runs converging the same domain of the same hypervisor take turns - each holds a
    lock file (under C(/run/lock/lifecycle.libvirt-UID)) on the host where the module
    runs, so the second observes what the first left. Runs on other hosts (a second
    controller) are not serialized by it; there libvirt's transient "cannot acquire
    state change lock" is retried, and a step refused because the domain changed
    meanwhile is planned again from what the domain is now.
  - A name (O(name) or the C(<name>) of O(xml)) that starts or ends with white space is
    refused; libvirt would keep the white space as part of the name.
  - Before defining, the XML is checked in check mode too - by libvirt's own parser in
    its in-process test driver, and against the host's domain capabilities (domain type,
    then machine) - so check mode does not predict a definition libvirt refuses.
    Checks only the hypervisor driver makes on define (for example QEMU's limit of 8
    characters for a VNC password) are not predicted.
seealso:
  - module: lifecycle.libvirt.domain_info
  - name: libvirt domain lifecycle
    description: The states and commands this module follows.
    link: https://libvirt.org/kbase/domainstatecapture.html
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: Define and start a guest from a template
  lifecycle.libvirt.domain:
    xml: "{{ lookup('ansible.builtin.template', 'web01.xml.j2') }}"
    state: running
    autostart: true

- name: Shut a guest down, destroying it if it has not stopped after 60 s
  lifecycle.libvirt.domain:
    name: web01
    state: defined
    shutdown_timeout: 60
    force: true

- name: Save a guest's memory with libvirt's managed save (restored by the next start)
  lifecycle.libvirt.domain:
    name: web01
    state: saved

- name: Save to a file of our own, then restore from it
  lifecycle.libvirt.domain:
    name: web01
    state: saved
    save_file: /var/lib/libvirt/save/web01.save
- name: Restore it
  lifecycle.libvirt.domain:
    name: web01
    state: running
    save_file: /var/lib/libvirt/save/web01.save

- name: A transient guest that disappears when it stops
  lifecycle.libvirt.domain:
    xml: "{{ lookup('ansible.builtin.file', 'scratch.xml') }}"
    persistent: false
    state: running

- name: Grow memory of a running guest and apply it now
  lifecycle.libvirt.domain:
    xml: "{{ lookup('ansible.builtin.template', 'web01.xml.j2') }}"
    restart_on_change: true

- name: Remove a guest (its disks stay)
  lifecycle.libvirt.domain:
    name: web01
    state: absent
    force: true
    shutdown_timeout: 30

- name: A guest from structured options instead of XML
  lifecycle.libvirt.domain:
    name: web02
    state: running
    memory: 2G
    vcpus: 2
    cpu_mode: host-passthrough
    machine: q35
    firmware: uefi
    disks:
      - {pool: default, volume: web02-root.qcow2}
      - {pool: default, volume: web02-seed.iso, device: cdrom}
    interfaces:
      - {network: default}
      - {bridge: br0, mac: "52:54:00:aa:bb:01"}
    tags: [web, production]

- name: Manage guests of a remote hypervisor
  lifecycle.libvirt.domain:
    uri: qemu+ssh://admin@kvm01.example.com/system
    name: web01
    state: running

- name: Converge many guests in one task, four at a time; the top-level options are every item's defaults
  lifecycle.libvirt.domain:
    state: defined
    shutdown_timeout: 60
    force: true
    parallel: 4
    domains:
      - name: web01
      - name: web02
      - name: db01
        state: saved
      - xml: "{{ lookup('ansible.builtin.template', 'web03.xml.j2') }}"
        state: running
        autostart: true
      - name: scratch01
        state: absent

- name: Start the web tier; the guests that started stay started when one fails
  lifecycle.libvirt.domain:
    domains: [{name: web01}, {name: web02}, {name: web03}]
  register: guests
  ignore_errors: true

- name: The guests that failed, and why
  ansible.builtin.debug:
    msg: "{{ guests.domains | selectattr('failed') | items2dict(key_name='name', value_name='msg') }}"
'''

RETURN = r'''
name:
  description: Name of the domain.
  returned: without O(domains)
  type: str
  sample: web01
state:
  description:
    - State after the task - V(absent), V(defined), V(running), V(paused), V(saved);
      in check mode, the state the real run would reach.
  returned: without O(domains)
  type: str
  sample: running
previous_state:
  description:
    - State before the task. Besides the declarable states it can be V(crashed) or
      V(pmsuspended) (suspended by the guest's power management).
  returned: without O(domains)
  type: str
  sample: defined
uuid:
  description: UUID of the domain; null when it does not exist (or, in check mode, is not created yet and O(xml) has no uuid).
  returned: without O(domains)
  type: str
  sample: 2f3d4c1e-8c4e-4f7c-9d2a-0b8f1d9a7e11
persistent:
  description: Whether the domain is persistent (stays defined when stopped).
  returned: without O(domains)
  type: bool
autostart:
  description: Whether the domain starts with the host.
  returned: without O(domains)
  type: bool
pending_restart:
  description:
    - True when the domain runs with a configuration that differs from the declared one
      (O(xml) or the structured options) even after what could be applied live
      (see O(restart_on_change)). The new definition is stored and takes effect at its next start.
    - A guest without a balloon driver does not take memory given live (it is still waited
      for 20 seconds); its result then says V(true) although check mode predicted V(false).
  returned: without O(domains)
  type: bool
actions:
  description: The lifecycle steps taken (or, in check mode, that would be taken), in order.
  returned: without O(domains)
  type: list
  elements: str
  sample: [define, start]
differences:
  description:
    - The real differences between O(xml) and the stored definition, one readable line each.
    - A VNC/SPICE password that changed is shown as C(********), never in clear (so is the diff).
  returned: without O(domains)
  type: list
  elements: str
  sample: ["/domain/memory: 268435456 -> 536870912 bytes"]
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 4.21
diff:
  description:
    - Before and after, as shown by C(--diff).
    - With O(domains), the entries of every domain, in the order of the items (each names its domain).
  returned: when diff mode is on
  type: list
  elements: dict
domains:
  description:
    - With O(domains), the result of each item, in the order of the items.
    - Besides the fields below, each has those the single form returns (RV(uuid), RV(persistent),
      RV(autostart), RV(pending_restart), RV(differences)) when the item converged.
  returned: with O(domains)
  type: list
  elements: dict
  contains:
    name:
      description: Name of the domain; null when an item without O(domains[].name) has XML that cannot be read.
      type: str
      sample: web01
    changed:
      description: Whether this domain was (in check mode, would be) changed.
      type: bool
    actions:
      description: The lifecycle steps taken for this domain, as RV(actions) of the single form (up to a failure).
      returned: unless the item failed before its steps were planned
      type: list
      elements: str
      sample: [shutdown]
    state:
      description: State of this domain after the task, as RV(state) of the single form.
      returned: unless the item failed
      type: str
      sample: defined
    previous_state:
      description: State of this domain before the task, as RV(previous_state) of the single form.
      returned: unless the item failed before its steps were planned
      type: str
      sample: running
    failed:
      description: Whether converging this domain failed; the task fails when any did.
      type: bool
    msg:
      description: Why converging this domain failed.
      returned: when it failed
      type: str
      sample: "domain web04 does not exist; xml is required to create it"
    duration:
      description: Seconds converging this domain took (waiting for its lock included).
      returned: unless the item failed before it was converged (its options refused)
      type: float
      sample: 3.91
    diff:
      description: This domain's entries of RV(diff).
      returned: when diff mode is on, unless the item failed before its steps were planned
      type: list
      elements: dict
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._batch import BatchForm
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._definition import (
    STRUCTURED_ARGUMENT_SPEC, structured_domain_spec)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._domain import DOMAIN_ARGUMENT_SPEC, converge_domain

SINGLE_ARGUMENT_SPEC = dict(DOMAIN_ARGUMENT_SPEC, **STRUCTURED_ARGUMENT_SPEC)
BATCH = BatchForm('domains', SINGLE_ARGUMENT_SPEC)
ARGUMENT_SPEC = dict(SINGLE_ARGUMENT_SPEC, **BATCH.argument_spec(required_one_of=[('name', 'xml')]))


def main():
    module = LibvirtModule(argument_spec=ARGUMENT_SPEC,
                           required_one_of=[('name', 'xml', 'domains')],
                           mutually_exclusive=[('domains', 'name'), ('domains', 'xml')],
                           supports_check_mode=True)
    module.run(lambda client: BATCH.converge(
        module.params, lambda params: structured_domain_spec(client, params),
        lambda spec: converge_domain(client, spec, module.check_mode), module._diff))


if __name__ == '__main__':
    main()
