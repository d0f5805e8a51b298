"""Which proxy a URL takes, as Zoom decides it.

Lives here: ``resolver`` (the one answer to "which proxy does this URL use", cached per process)
and ``sources/`` (every place proxy settings live: environment, WinINet, WinHTTP, scutil, GNOME,
PAC/WPAD, with their checks).

May import: ``roomprobe.core``, ``roomprobe.net``, ``roomprobe.host`` and ``roomprobe.proxy``.
"""
