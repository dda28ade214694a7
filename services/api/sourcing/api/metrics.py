"""The gateway's own series: requests by route and status, latency, rate-limit rejections."""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "sourcing_http_requests_total",
    "HTTP requests answered by the gateway",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "sourcing_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RATE_LIMITED = Counter(
    "sourcing_http_rate_limited_total",
    "Requests refused with 429 by the per-client rate limit",
)
