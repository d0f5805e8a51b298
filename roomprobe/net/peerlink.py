"""One lock for the LAN link to a ``roomprobe serve`` peer, shared by the probes that load it.

Why: the runner starts every probe at once, and the bandwidth test saturates the link on
purpose. A quality measurement taken while it runs would report the bandwidth test's own queue
as jitter and loss. Probes that send to the peer hold ``PEER_LINK`` while they do.
"""

from __future__ import annotations

import threading

PEER_LINK = threading.Lock()
