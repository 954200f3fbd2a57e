# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volume content through libvirt streams: upload a file, read a volume
back (sparse), download it to a file, and the temporary names of both."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._usage import describe_user, volume_users

STREAM_CHUNK = 256 * 1024
ZEROS = bytes(STREAM_CHUNK)


@contextlib.contextmanager
def _stream(client, what, start, *args):
    """A libvirt stream that `start(stream, *args)` attached to a volume;
    any failure aborts it and reads "Failed to <what>: <why>"."""
    stream = client.new_stream(what)
    client.call(what, start, stream, *args)
    try:
        yield stream
    except BaseException as exc:
        try:
            stream.abort()
        except libvirt.libvirtError:  # best-effort cleanup: the failure reported is the one that got us here
            pass
        if isinstance(exc, libvirt.libvirtError):
            raise OperationFailed('Failed to %s: %s' % (what, exc.get_error_message()))
        if isinstance(exc, EnvironmentError):
            raise OperationFailed('Failed to %s: %s' % (what, exc))
        raise


def read_volume(client, volume, on_data, on_hole, length=0):
    """Download the volume's content (its first `length` bytes; 0: all)
    through a sparse stream.

    `on_data(offset, data)` and `on_hole(offset, length)` see each piece in
    order; when `on_data` returns False the download stops.  Returns the
    bytes read (holes included) and whether it read to the end.
    """
    offset = 0
    with _stream(client, 'download volume %s' % volume.name(), volume.download, 0, length,
                 libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) as stream:
        while True:
            got = stream.recvFlags(STREAM_CHUNK, libvirt.VIR_STREAM_RECV_STOP_AT_HOLE)
            if isinstance(got, int):  # -3: a hole follows
                length = stream.recvHole(0)
                on_hole(offset, length)
                offset += length
                continue
            if not got:
                break
            if on_data(offset, got) is False:
                stream.abort()
                return offset, False
            offset += len(got)
        stream.finish()
    return offset, True


def upload_file(client, volume, filename):
    """Send `filename` into the volume; returns its size and sha256."""
    size = os.path.getsize(filename)
    digest = hashlib.sha256()

    def piece(_stream, nbytes, source):
        data = source.read(nbytes)
        digest.update(data)
        return data

    with open(filename, 'rb') as handle:
        with _stream(client, 'upload %s to volume %s' % (filename, volume.name()), volume.upload, 0, size, 0) as stream:
            stream.sendAll(piece, handle)
            stream.finish()
    return size, digest.hexdigest()


def file_sha256(filename):
    """Size and sha256 of a file."""
    digest = hashlib.sha256()
    with open(filename, 'rb') as handle:
        for piece in iter(lambda: handle.read(STREAM_CHUNK), b''):
            digest.update(piece)
    return os.path.getsize(filename), digest.hexdigest()


def volume_sha256(client, volume, length):
    """sha256 of the volume's first `length` bytes, read back through libvirt."""
    digest = hashlib.sha256()

    def hole(_offset, hole_length):
        while hole_length:
            piece = min(hole_length, STREAM_CHUNK)
            digest.update(ZEROS[:piece])
            hole_length -= piece

    size, _complete = read_volume(client, volume, lambda _offset, data: digest.update(data), hole, length)
    return size, digest.hexdigest()


# download_to writes `.<name>.download-<random>` next to the target; the
# writer holds an flock on it, so a file of that name nobody holds is the
# leftover of a killed run.
DOWNLOAD_MARK = '.download-'


def _download_prefix(filename):
    return '.%s%s' % (os.path.basename(filename), DOWNLOAD_MARK)


def remove_stale_downloads(filename):
    """Delete the temporary files of earlier downloads to `filename` that no
    running download holds; returns their paths."""
    directory, prefix = os.path.dirname(filename), _download_prefix(filename)
    removed = []
    for entry in sorted(os.listdir(directory)):
        if not entry.startswith(prefix):
            continue
        path = os.path.join(directory, entry)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # a symlink, or gone already: not ours
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError):
            continue  # a download in progress holds it
        else:
            os.unlink(path)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def download_file(client, volume, filename):
    """Write the volume's content to `filename` (mode 0600, holes kept),
    replacing it only once the whole content has arrived.  The temporary
    file is removed on any failure, SIGTERM and SIGINT included (inside
    `interruptible()`)."""
    directory = os.path.dirname(filename)
    try:
        fd, temporary = tempfile.mkstemp(prefix=_download_prefix(filename), dir=directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        raise OperationFailed('Failed to download volume %s to %s: %s' % (volume.name(), filename, exc))
    try:
        with os.fdopen(fd, 'wb') as handle:
            def data(offset, chunk):
                handle.seek(offset)
                handle.write(chunk)

            size, _complete = read_volume(client, volume, data, lambda _offset, _length: None)
            handle.truncate(size)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(temporary, filename)  # still holding the lock: no one takes it for a leftover
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def file_matches_volume(client, volume, facts, filename):
    """Whether `filename` already holds exactly the volume's content."""
    if not os.path.isfile(filename) or os.path.getsize(filename) != facts.physical:
        return False
    with open(filename, 'rb') as handle:
        def data(offset, chunk):
            handle.seek(offset)
            return handle.read(len(chunk)) == chunk

        def hole(offset, length):
            handle.seek(offset)
            remaining = length
            while remaining:
                piece = handle.read(min(remaining, STREAM_CHUNK))
                if not piece or piece.count(0) != len(piece):
                    raise _Differs()
                remaining -= len(piece)

        try:
            _size, complete = read_volume(client, volume, data, hole)
        except _Differs:
            return False
    return complete


class _Differs(Exception):
    pass


def partial_prefix(name):
    """Temporary volumes of an upload are named `.<name>.partial-<random>`."""
    return '.%s.partial-' % name


def delete_quietly(volume):
    try:
        volume.delete(0)
    except libvirt.libvirtError:
        pass  # best-effort cleanup: gone already, or a leftover the next run removes


def refuse_download_target(client, target, label):
    """download_to writes regular files of its own only."""
    try:
        info = os.stat(target)
    except OSError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OperationFailed('Failed to download %s: download_to %s is a directory' % (label, target))
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OperationFailed('Failed to download %s: download_to %s is not a regular file (a device node, FIFO or '
                              'socket); it is never replaced' % (label, target))
    if not os.path.isdir(os.path.dirname(target)):
        raise OperationFailed('Failed to download %s: the directory of download_to %s does not exist'
                              % (label, target))
    users = volume_users(client, target)
    if users:
        raise OperationFailed('Failed to download %s: download_to %s is storage libvirt uses (%s); it is never '
                              'overwritten' % (label, target, ', '.join(describe_user(user) for user in users)))
