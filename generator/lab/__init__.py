"""The test lab and the benchmarks: a private Postfix on loopback, the one mail builder that the
tests, the storm and the benchmarks share, ``make storm`` and ``make bench``. Shipped in the
wheel so that ``python -m bouncegen.storm`` runs against an installed bouncegen; nothing in the
product imports it."""
