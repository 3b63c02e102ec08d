"""bouncegen: anti-backscatter configuration for Postfix and SpamAssassin, from one site inventory."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("bouncegen")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
