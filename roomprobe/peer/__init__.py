"""The roomprobe-to-roomprobe protocol, both halves: ``check --peer`` and ``roomprobe serve``.

Client half: ``link`` (parsing ``--peer``), ``port`` (the protocol's one port number), ``tls``
(the pinned channel), ``speed`` (bandwidth streams), ``mediaflow``/``mediawire``/``mediastats``
(media-like UDP flows, their wire format and statistics). Server half: ``serve`` (the speed
endpoint and the Zoom Rooms stand-in), ``servetls`` (its certificate), ``reflector`` (the UDP
media reflector) and ``agent`` (``serve --agent``: a check run on request, for sweeps and path
traces back).

May import: ``roomprobe.core``, ``roomprobe.net``, ``roomprobe.host``, ``roomprobe.proxy`` and
``roomprobe.peer``.
"""
