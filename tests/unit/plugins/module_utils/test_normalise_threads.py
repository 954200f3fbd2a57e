"""Declarations normalised at once in threads of one process (as batch
convergence does) do not meet in libvirt's test driver, which they share."""

import threading

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient

DECLARED = "<domain type='qemu'><name>web%d</name><memory unit='MiB'>256</memory><os><type>hvm</type></os></domain>"


def test_normalising_in_threads_at_once():
    results, start = {}, threading.Barrier(8)

    def normalise(index):
        client = LibvirtClient(_xml.NORMALISING_URI)
        try:
            start.wait()
            results[index] = [_xml.normalised_by_libvirt(_xml.parse_xml(DECLARED % index), client)
                              for attempt in range(200)]
        finally:
            client.close()

    threads = [threading.Thread(target=normalise, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(8))
    for index, normalised in results.items():
        assert all(element is not None and element.findtext('name') == 'web%d' % index for element in normalised)
        assert all(element.findtext('memory') == str(256 * 1024) for element in normalised)
    # Nothing is left behind in the driver.
    client = LibvirtClient(_xml.NORMALISING_URI)
    try:
        assert not [d.name() for d in client.domains() if d.name().startswith('lifecycle-libvirt-normalise-')]
    finally:
        client.close()
