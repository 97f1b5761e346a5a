"""Sync a file to disk in the background while it is still being written.

Private helper of :mod:`ckptwidgets.sources.bundle._writer`. Linux starts writing a file's dirty
pages back only when they reach a tenth of the memory (``vm.dirty_background_ratio``), so a
checkpoint of a few GB would sit in the page cache until the final ``fsync``, which then
waits for all of it after the last byte is written. Asking for a sync every few tens of
megabytes from another thread lets the disk write while we read and checksum the next
tensors; the final ``fsync`` waits for the last few megabytes only. (``sync_file_range``
would start the write-back without a thread, but Python has no binding for it and it is
Linux only.)

Example
-------
>>> import tempfile
>>> with tempfile.TemporaryFile() as f:
...     sync = BackgroundSync(f.fileno())
...     _ = f.write(b"x" * 100); f.flush()
...     sync.request()
...     sync.stop()
...     sync.error is None
True
"""
from __future__ import annotations

import os
import threading

__all__ = ["BackgroundSync", "SyncedWrites", "sync_data", "SYNC_EVERY_BYTES"]

#: :class:`SyncedWrites` asks for a sync each time this many bytes were written since the last.
SYNC_EVERY_BYTES = 64 << 20


def sync_data(fd: int) -> None:
    """The file's data to disk: ``fdatasync`` (no metadata) where the platform has it (not macOS)."""
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


class BackgroundSync(threading.Thread):
    """Syncs one file descriptor's data to disk each time :meth:`request` is called.

    The thread starts at once. Requests made while a sync runs coalesce into one more. A
    failing sync is kept in :attr:`error` (for the writer to raise) and ends the thread.
    Call :meth:`stop` before closing the file.

    Parameters
    ----------
    fd : int
        The file descriptor, open for writing.
    """

    def __init__(self, fd: int):
        super().__init__(name="ckptwidgets-sync", daemon=True)
        self._fd, self._wake, self._stopping, self._pending = fd, threading.Event(), False, False
        #: The ``OSError`` of a failed sync, or None.
        self.error: OSError | None = None
        self.start()

    def request(self) -> None:
        """Ask for a sync of what the file holds now (returns at once)."""
        self._pending = True
        self._wake.set()

    def run(self) -> None:
        # A request made before stop() is still carried out, so that whether a failing sync
        # is seen here does not depend on how the threads happen to be scheduled.
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._pending:
                self._pending = False
                try:
                    sync_data(self._fd)
                except OSError as error:
                    self.error = error
                    return
            if self._stopping and not self._pending:
                return

    def stop(self) -> None:
        """Wait for the syncs requested so far to end; no more are made (the file may be closed after this)."""
        self._stopping = True
        self._wake.set()
        self.join()


class SyncedWrites:
    """Writes to an open file, a :class:`BackgroundSync` syncing every :data:`SYNC_EVERY_BYTES`.

    Small files never start the thread. :meth:`finish` waits for the syncs, raises a failed
    one, and syncs the rest (data and size: ``fsync``); :meth:`stop` only ends the thread
    (on an error path, before the file is closed and removed).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryFile() as f:
    ...     writes = SyncedWrites(f)
    ...     writes.write(b"x" * 100)
    ...     writes.finish()
    ...     writes.written
    100
    """

    def __init__(self, file, every: int = SYNC_EVERY_BYTES):
        self._file, self._every = file, every
        self._unsynced, self.written = 0, 0
        self._syncer: BackgroundSync | None = None

    def write(self, piece) -> None:
        self._file.write(piece)
        size = len(piece) if isinstance(piece, bytes) else memoryview(piece).nbytes
        self.written += size
        self._unsynced += size
        if self._unsynced < self._every:
            return
        self._unsynced = 0
        self._file.flush()
        if self._syncer is None:
            self._syncer = BackgroundSync(self._file.fileno())
        elif self._syncer.error is not None:
            raise self._syncer.error
        self._syncer.request()

    def stop(self) -> None:
        if self._syncer is not None:
            self._syncer.stop()

    def finish(self) -> None:
        self._file.flush()
        self.stop()
        if self._syncer is not None and self._syncer.error is not None:
            raise self._syncer.error
        os.fsync(self._file.fileno())  # what is left, and the file's size
