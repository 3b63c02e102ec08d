"""``python -m bouncegen.storm``: the bounce-storm benchmark, kept at this name for scripts and
sites that call it; the code lives in the lab (lab/storm.py)."""

from .lab.storm import main

if __name__ == "__main__":
    raise SystemExit(main())
