"""Bytes on the wire: how roomprobe measures, with no OS settings and no proxy choice of its own.

Lives here: ``tcpconnect`` (one TCP connect classifier; ``portfindings`` words its verdicts
once for the controller-port probe and the sweep), ``tcpsweep`` (many connects at once,
silence judged from measured round trips), ``icmperr`` (the ICMP behind a failed connect, from
Linux's error queue), ``udprecv`` (UDP receive with the packet's DSCP where the OS tells it),
``wire`` (HTTP head reader), ``tunnel`` (the one way through a proxy: HTTP CONNECT or SOCKS5),
``stun`` (RFC 5389 codec and exchange), ``httpsprobe`` (timed HTTPS along a route the caller's
resolver names), ``tlstrust``/``tlsverdict`` (the OS trust store and what a handshake proves),
``zoomranges`` (Zoom's published IP ranges, cached with their date) and ``traceroute`` with its
per-OS ``trace_*`` methods.

May import: ``roomprobe.core`` and ``roomprobe.net``. What the OS says lives in ``roomprobe.host``,
which proxy a URL takes in ``roomprobe.proxy``, the roomprobe-to-roomprobe protocol in
``roomprobe.peer``.
"""
