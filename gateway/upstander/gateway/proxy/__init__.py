"""The gateway's reverse proxy to the services."""

from upstander.gateway.proxy.router import install_proxy
from upstander.gateway.proxy.upstreams import (
    SERVICES,
    UpstreamPool,
    get_health_upstreams,
    get_upstreams,
    start_upstreams,
    stop_upstreams,
)

__all__ = [
    "SERVICES",
    "UpstreamPool",
    "get_health_upstreams",
    "get_upstreams",
    "install_proxy",
    "start_upstreams",
    "stop_upstreams",
]
