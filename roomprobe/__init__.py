"""roomprobe: a network diagnostic agent for Zoom Rooms.

Kept tiny on purpose: ``roomprobe --help`` must start fast, so nothing heavy is imported here.
"""

__version__ = "0.1.0"
