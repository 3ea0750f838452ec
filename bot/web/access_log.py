"""The gateway's access log without query strings.

aiohttp's `%r` prints the request line with its query, and WeChat puts its signature, timestamp,
nonce and the user's OpenID there (`/wechat?signature=…&openid=…`); aiohttp 3.9's AccessLogger has
no path-only field. This logger writes remote address, time, method, path (no query), HTTP
version, status, size and duration, and no Referer (it may carry a query of its own).
"""

from __future__ import annotations

import time

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time_taken: float) -> None:
        stamp = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime())
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        self.logger.info(
            '%s %s "%s %s %s" %s %s %.3fs',
            request.remote or "-",
            stamp,
            request.method,
            request.path,
            version,
            response.status,
            response.body_length,
            time_taken,
        )
