"""Socket-level helpers and OS network facts: what the probes measure with.

Lives here: ``tcpconnect`` (one TCP connect classifier), ``tcpsweep`` (many connects at once,
silence judged from measured round trips), ``icmperr`` (the ICMP behind a
failed connect, from Linux's error queue), ``wire`` (HTTP head reader), ``stun``
(RFC 5389 codec), ``httpsprobe`` (timed HTTPS through the proxy), ``speed`` (bandwidth
transfers), ``zoomranges`` (Zoom's published IP ranges, cached with their date),
``appconns`` (the Zoom Rooms app's own connections), ``dnsconf`` (the OS resolvers),
``peerport`` (the peer protocol's one port number),
``proxies`` (which proxy a URL uses), ``osnet/``
(interfaces, routes, neighbours, Wi-Fi per OS, with parsers for each OS's command output) and
``proxysrc/`` (every place proxy settings live: environment, WinINet, WinHTTP, scutil, GNOME,
PAC/WPAD).

May import: ``roomprobe.core`` and ``roomprobe.net``. Never probes, diagnosis, report or fleet.
"""
