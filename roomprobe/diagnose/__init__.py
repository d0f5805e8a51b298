"""From findings to Zoom error codes: the catalog, the rules, the mapping.

Lives here: ``catalog`` (the error-code catalog, ``data/codes.toml``), ``rules`` (the declarative
rules in ``data/rules.toml``), ``mapping`` (findings -> likely codes with likelihood, because,
fix). It reads results (finding dicts) only: it never runs a probe or touches the network.

May import: ``roomprobe.core`` and ``roomprobe.diagnose``.
"""
