#!/usr/bin/env python3
"""download.py: a BITS download from Python, with the qmgr package (python/ of the checkout).

    python3 download.py URL DESTINATION

Install the package with `pip install ./python`, or run this from a checkout with
PYTHONPATH=python/src. libqmgr.so is found through $QMGR_LIB, the install prefixes, the
checkout's target/ or the system's loader. Prints the progress as it changes; exits 0 on
success, 1 on failure.
"""

import os
import sys

import qmgr


def download(url: str, destination: str) -> bool:
    with qmgr.Manager() as manager, manager.create_job("download.py") as job:
        try:
            job.add_file(url, os.path.abspath(destination))
            job.resume()
        except qmgr.QmgrError:
            job.cancel()
            raise
        state = job.wait(on_progress=lambda p: print(f"{p.bytes_transferred} bytes", flush=True))
        if state is qmgr.JobState.TRANSFERRED:
            transferred = job.progress.bytes_transferred
            job.complete()
            print(f"downloaded {transferred} bytes to {destination}")
            return True
        if state is qmgr.JobState.ERROR:
            print(f"error: {job.error}", file=sys.stderr)
            job.cancel()
        else:
            print(f"the job ended elsewhere ({state.name})", file=sys.stderr)
        return False


def main() -> int:
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} URL DESTINATION", file=sys.stderr)
        return 2
    try:
        return 0 if download(sys.argv[1], sys.argv[2]) else 1
    except (qmgr.QmgrError, qmgr.LibraryNotFound) as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
