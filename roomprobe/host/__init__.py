"""What the OS says: interfaces, routes, neighbours, resolvers, Wi-Fi, displays, the Zoom Rooms app.

Lives here: ``osnet/`` (interfaces, routes, neighbours per OS, with a parser for each OS's
command output and the signed-in room user), ``dnsconf`` (the OS's resolvers), ``wifi`` and
``wlanapi`` (the Wi-Fi link; wlanapi is Windows' native API), ``displays`` (how many screens the
room drives), ``appconns`` (the Zoom Rooms app's own connections) and ``evidence`` (time zone,
time window and the Zoom Rooms app version for the evidence pack).

Reads the OS only; sends nothing. May import: ``roomprobe.core``, ``roomprobe.net`` and
``roomprobe.host``.
"""
