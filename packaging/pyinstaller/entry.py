"""The frozen binaries' entry point (both ``roomprobe`` and the windowless ``roomprobe-w``).

``roomprobe --pac-worker`` (how roomprobe.proxy.sources.pac starts its PAC child when frozen: there
is no ``python -m`` inside the binary) becomes the worker before click is even imported, so the
child starts as fast as the binary can. Otherwise ``main_windowless`` runs: it is ``main`` when a
console exists; in the ``console=False`` build it sends output to a log file instead of nowhere.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["--pac-worker"]:
        from roomprobe.proxy.sources.pacworker import main as pac_worker

        raise SystemExit(pac_worker())
    from roomprobe.cli import main_windowless

    main_windowless()
