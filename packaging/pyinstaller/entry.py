"""The frozen binaries' entry point (both ``roomprobe`` and the windowless ``roomprobe-w``).

``main_windowless`` is ``main`` when a console exists; in the ``console=False`` build it sends
output to a log file instead of nowhere.
"""

from roomprobe.cli import main_windowless

if __name__ == "__main__":
    main_windowless()
