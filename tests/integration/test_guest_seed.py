"""The test guest reads a cloud-init seed however NoCloud allows it to be
attached: the provision tests use an ISO 9660 CD-ROM; here the seed is a
VFAT file system labelled CIDATA on a virtio disk, made inside the guest."""

import guest


def test_the_guest_reads_a_vfat_seed_on_a_virtio_disk(conn, make_guest):
    vm = make_guest('vfat')
    pool = conn.storagePoolLookupByName('default')
    seed = pool.createXML("<volume><name>%s-seed.raw</name><capacity unit='MiB'>64</capacity>"
                          "<target><format type='raw'/></target></volume>" % vm.name, 0)
    disk = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
            "<target dev='vdb' bus='virtio'/></disk>" % seed.path())
    conn.createXML(vm.xml.replace('</devices>', disk + '\n  </devices>'), 0)
    vm.wait_ready()
    assert guest.seed_reports(vm.serial_log) == ['none']  # a blank disk is no seed

    with vm.shell() as shell:
        output = shell.run("mkdosfs -n CIDATA /dev/vdb && mkdir -p /tmp/seed && mount /dev/vdb /tmp/seed && "
                           "printf 'instance-id: i-vfat\\nlocal-hostname: vfat-host\\n' > /tmp/seed/meta-data && "
                           "umount /tmp/seed", timeout=60)
        assert shell.exit_status == 0, output
    conn.lookupByName(vm.name).reboot(0)  # the ACPI power button; libvirt starts it again
    vm.wait_ready(count=2)
    assert guest.seed_reports(vm.serial_log) == ['none', 'instance-id=i-vfat local-hostname=vfat-host']
    assert guest.wait_marker(vm.serial_log, count=2, timeout=0) == 2  # vda is still the data disk, counting boots
