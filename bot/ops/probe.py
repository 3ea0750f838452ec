"""The one readiness probe: does something answer HTTP at a URL (a started service, its health
URL)? Used by the supervisor (`make run`), the local cluster and the tests' running stack."""

from __future__ import annotations

import urllib.error
import urllib.request

PROBE_TIMEOUT_SECONDS = 2.0
# Health URLs are the services this machine started: never asked through an HTTP proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """True when something answers HTTP at `url` within `timeout` (any status: it is up)."""
    try:
        with _OPENER.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, with an error status
    except OSError:  # refused, reset, timed out (URLError is an OSError)
        return False
