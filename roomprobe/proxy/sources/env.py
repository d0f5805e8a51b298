"""Environment variables: ``http_proxy``, ``https_proxy``, ``all_proxy``, ``no_proxy``.

Both spellings are read; the lowercase one wins, as curl and Python's urllib do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from roomprobe.proxy.sources import Source, normalise_proxy
from roomprobe.proxy.sources.bypass import split_list


def variables(environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """``{"http": (VARNAME, value), ...}`` with lowercase names winning over uppercase ones."""
    environ = os.environ if environ is None else environ
    out: dict[str, tuple[str, str]] = {}
    for key, value in environ.items():
        k = key.lower()
        if not k.endswith("_proxy") or not value:
            continue
        name = k[: -len("_proxy")]
        if key == k or name not in out:
            out[name] = (key, value)
    return out


def read(environ: Mapping[str, str] | None = None) -> Source:
    found = variables(environ)
    bypass = split_list(found.pop("no", ("", ""))[1])
    proxies = {scheme: normalise_proxy(v) for scheme, (_, v) in found.items()}
    origin = "environment" + (f" ({', '.join(sorted(k for k, _ in found.values()))})" if found else "")
    return Source("env", origin, proxies=proxies, bypass=bypass,
                  settings={scheme: name for scheme, (name, _) in found.items()})
