"""The decommission plan: which volumes are a VM's own, decided from the
modules' structured facts (volume_info users: kind, domain, use, target)."""

from ansible_collections.lifecycle.libvirt.plugins.filter.decommission import FilterModule, decommission_plan

POOL = '/var/lib/libvirt/images'


def vm(name='vm1', disks=(('vda', 'disk', 'root.qcow2'), ('hdc', 'cdrom', 'install.iso')), managed_save=False):
    return dict(name=name, uuid='uuid-%s' % name, state='defined', managed_save=managed_save,
                disks=[dict(target=target, device=device, type='file', source='%s/%s' % (POOL, file))
                       for target, device, file in disks])


def user(kind, name, use, target=None, domain=None, path=None):
    return dict(kind=kind, name=name, domain=domain if domain is not None or kind == 'volume' else name,
                running=False, use=use, target=target, via='words never read', path=path or '')


def volume(name, *users):
    return dict(pool='default', name=name, path='%s/%s' % (POOL, name), format='qcow2', capacity=1, allocation=1,
                users=list(users))


def plan(vms, volumes, snapshots=None, save_files=None):
    facts = [dict(vm=item, snapshots=(snapshots or {}).get(item['name'], [])) for item in vms]
    return decommission_plan(vms, volumes, facts, '/save', '/nvram', save_files or {})


def test_own_volumes_come_overlays_first_and_the_rest_is_skipped_with_why():
    volumes = [
        volume('base.qcow2', user('domain', 'vm1', 'backing', 'vda', path=POOL + '/base.qcow2'),
               user('volume', 'default/root.qcow2', 'overlay')),
        volume('root.qcow2', user('domain', 'vm1', 'disk', 'vda', path=POOL + '/root.qcow2')),
        volume('install.iso', user('domain', 'vm1', 'disk', 'hdc', path=POOL + '/install.iso')),
        volume('shared.img', user('domain', 'vm1', 'disk', 'vda', path=POOL + '/shared.img'),
               user('domain', 'vm2', 'disk', 'vdb')),
        volume('golden.qcow2', user('domain', 'vm1', 'backing', 'vda', path=POOL + '/golden.qcow2'),
               user('volume', 'default/other-overlay.qcow2', 'overlay')),
        volume('kernel', user('domain', 'vm1', 'kernel')),
        volume('vm1_VARS.fd', user('domain', 'vm1', 'nvram', path=POOL + '/vm1_VARS.fd')),
    ]
    [entry] = plan([vm()], volumes)
    assert [(item['volume'], item['level']) for item in entry['volumes']] == [
        ('root.qcow2', 1), ('vm1_VARS.fd', 1), ('base.qcow2', 2)]
    assert [(item['volume'], item['reason']) for item in entry['skipped']] == [
        ('shared.img', 'shared with domain vm2'),
        ('golden.qcow2', 'backing file of default/other-overlay.qcow2')]
    # A CD-ROM and a kernel are not the VM's data: not planned at all.
    assert 'install.iso' not in str(entry) and 'kernel' not in [item['volume'] for item in entry['skipped']]


def test_a_snapshots_files_are_the_vms_and_files_outside_the_pools_are_listed_once():
    volumes = [volume('root.qcow2', user('domain', 'vm1', 'disk', 'vda', path=POOL + '/root.qcow2')),
               volume('root.s1', user('snapshot', 's1', 'disk', 'vda', domain='vm1', path=POOL + '/root.s1'))]
    snapshots = {'vm1': [dict(name='s1', disks=[dict(target='vda', snapshot='external', file=POOL + '/root.s1')]),
                         dict(name='s2', disks=[dict(target='vda', snapshot='external', file='/elsewhere/s2')])]}
    item = vm(disks=(('vda', 'disk', 'root.qcow2'), ('vdb', 'disk', '../data/extra.img')), managed_save=True)
    [entry] = plan([item], volumes, snapshots, save_files={'vm1': ['/backups/vm1.save', '/nvram/vm1_VARS.fd']})
    assert [volume['volume'] for volume in entry['volumes']] == ['root.qcow2', 'root.s1']
    assert entry['files'] == [
        dict(path=POOL + '/../data/extra.img', kind='disk vdb'),
        dict(path='/elsewhere/s2', kind='overlay of disk vda (snapshot s2)'),
        dict(path='/save/vm1.save', kind='managed save image'),
        dict(path='/nvram/vm1_VARS.fd', kind='nvram'),
        dict(path='/backups/vm1.save', kind='save file')]
    assert entry['snapshots'] == ['s1', 's2']


def test_two_vms_sharing_a_volume_both_keep_it():
    shared = volume('shared.img', user('domain', 'vm1', 'disk', 'vda', path=POOL + '/shared.img'),
                    user('domain', 'vm2', 'disk', 'vda', path=POOL + '/shared.img'))
    plans = plan([vm('vm1', (('vda', 'disk', 'shared.img'),)), vm('vm2', (('vda', 'disk', 'shared.img'),))],
                 [shared])
    assert [(entry['name'], entry['volumes'], [item['reason'] for item in entry['skipped']]) for entry in plans] == [
        ('vm1', [], ['shared with domain vm2']), ('vm2', [], ['shared with domain vm1'])]


def test_the_filter_is_registered():
    assert FilterModule().filters() == {'decommission_plan': decommission_plan}
