"""The renderer: inventory → validated site facts → rule families (rules/) → templates → lint.

Nothing here runs a daemon or touches a host; deployment (deploy/), the corpus runner (runner/),
the milter (milter/) and the lab (lab/) build on it, never the other way round.
"""
