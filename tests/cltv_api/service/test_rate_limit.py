"""Rate limiting: token buckets per API key, per share token and per client IP; 429 problems
with ``Retry-After`` and RateLimit headers; health checks and metrics exempt; 0 = off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cltv_api.main import create_app
from cltv_api.ratelimit import TokenBuckets, caller_key
from tests.cltv_api.service.conftest import Credentials, TestClient, make_settings, new_workspace

PROBLEMS = "https://cltv.dev/problems/"
CALCULATOR = (
    "/v1/calculator?average_order_value=50&purchases_per_period=1&gross_margin=1&retention_rate=0.8"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_one_request_per_refill_interval() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    decisions = [buckets.take("k") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    # Empty bucket at 2 tokens/s: one token is back after 0.5 s, rounded up to whole seconds.
    assert decisions[3].retry_after_seconds == 1
    # Full again after 3 tokens / (2 tokens/s) = 1.5 s, rounded up.
    assert decisions[3].reset_seconds == 2
    clock.now += 0.4  # 0.8 tokens: still refused
    assert not buckets.take("k").allowed
    clock.now += 0.1  # 1.0 token (0.4 s + 0.1 s at 2 tokens/s)
    assert buckets.take("k").allowed
    assert buckets.take("other").allowed  # every caller has their own bucket


def test_a_long_idle_caller_gets_only_the_burst_back() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=10.0, burst=2, clock=clock)
    for _ in range(2):
        buckets.take("k")
    clock.now += 3600  # an hour at 10/s would be 36,000 tokens; the bucket holds 2
    assert [buckets.take("k").allowed for _ in range(3)] == [True, True, False]


def test_idle_buckets_are_forgotten_when_there_are_too_many() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock, max_buckets=3)
    for key in ("a", "b", "c"):
        buckets.take(key)
    clock.now += 2.0  # all refilled (2 tokens at 1/s): as good as new
    buckets.take("d")
    assert len(buckets) == 1
    for key in ("e", "f"):
        buckets.take(key)
    buckets.take("g")  # none idle: the oldest goes
    assert len(buckets) == 3


def test_a_bucket_needs_a_positive_rate_and_burst() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBuckets(rate=0.0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        TokenBuckets(rate=1.0, burst=0)


def _scope(path: str, headers: list[tuple[bytes, bytes]], client: Any = ("10.0.0.1", 5)) -> Any:
    return {"type": "http", "path": path, "headers": headers, "client": client}


def test_callers_are_keys_share_tokens_or_ip_addresses_never_in_plaintext() -> None:
    key = "cltv_" + "k" * 40
    bearer = caller_key(_scope("/v1/fits", [(b"authorization", f"Bearer {key}".encode())]))
    header = caller_key(_scope("/v1/fits", [(b"x-api-key", key.encode())]))
    assert bearer == header and bearer.startswith("key:") and key not in bearer
    token = "cltv_share_" + "s" * 40
    share = caller_key(_scope(f"/v1/share/{token}/value", []))
    assert share.startswith("share:") and token not in share
    assert caller_key(_scope("/v1/calculator", [])) == "ip:10.0.0.1"
    assert caller_key(_scope("/v1/calculator", [], client=None)) == "ip:unknown"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[TestClient, Callable[[str], Credentials]]]:
    """An app allowing bursts of 2 requests and 0.5 request/s after that."""
    settings = make_settings(tmp_path / "data", rate_limit_per_second=0.5, rate_limit_burst=2)
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, lambda name: new_workspace(app.state.db, name)


def test_a_key_over_its_limit_gets_429_problem_with_retry_after_and_ratelimit_headers(
    limited: tuple[TestClient, Callable[[str], Credentials]],
) -> None:
    client, workspace = limited
    mine, theirs = workspace("mine"), workspace("theirs")
    first = client.get("/v1/workspace", headers=mine.headers)
    second = client.get("/v1/workspace", headers={"X-API-Key": mine.key})  # same key, same bucket
    refused = client.get("/v1/workspace", headers=mine.headers)
    assert (first.status_code, second.status_code, refused.status_code) == (200, 200, 429)
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("2", "1")
    assert first.headers["ratelimit-policy"] == "2;w=4"  # 2 requests refill in 2 / 0.5 = 4 s
    assert "retry-after" not in first.headers
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["type"], problem["title"], problem["status"]) == (
        PROBLEMS + "too-many-requests",
        "Too Many Requests",
        429,
    )
    # One token comes back after 1 / (0.5 per s) = 2 s: Retry-After is whole seconds.
    assert refused.headers["retry-after"] == "2" and problem["retry_after"] == 2
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-reset"] == "4"  # 2 tokens back after 4 s
    assert refused.headers["x-request-id"]  # the outer middleware still applies
    # Another key has its own budget.
    assert client.get("/v1/workspace", headers=theirs.headers).status_code == 200


def test_anonymous_requests_are_limited_per_client_ip(
    limited: tuple[TestClient, Callable[[str], Credentials]],
) -> None:
    client, _ = limited
    statuses = [client.get(CALCULATOR).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # The same app seen from another address.
    other = TestClient(client.app, client=("192.0.2.7", 4000))
    assert other.get(CALCULATOR).status_code == 200


def test_share_pulls_are_limited_per_token(
    limited: tuple[TestClient, Callable[[str], Credentials]],
) -> None:
    client, _ = limited
    first, second = ("cltv_share_" + c * 40 for c in "AB")
    pulls = [client.get(f"/v1/share/{first}/value?metric=npv").status_code for _ in range(3)]
    assert pulls == [404, 404, 429]  # unknown tokens are 404 until the limit is reached
    assert client.get(f"/v1/share/{second}/value?metric=npv").status_code == 404
    refused = client.get(f"/v1/share/{first}/value?metric=npv")
    assert refused.json()["instance"] == "/v1/share/<token>/value"  # the token is not echoed


def test_health_checks_and_metrics_are_never_limited(
    limited: tuple[TestClient, Callable[[str], Credentials]],
) -> None:
    client, _ = limited
    for path in ("/healthz", "/readyz", "/metrics"):
        responses = [client.get(path) for _ in range(5)]
        assert [r.status_code for r in responses] == [200] * 5
        assert "ratelimit-limit" not in responses[-1].headers


def test_options_and_head_probes_do_not_use_up_the_tokens(
    limited: tuple[TestClient, Callable[[str], Credentials]],
) -> None:
    # LibreOffice's WEBSERVICE sends OPTIONS and HEAD before each GET (burst here: 2).
    client, _ = limited
    url = "/v1/share/cltv_share_" + "C" * 40 + "/value?metric=npv"
    for _ in range(5):
        client.options(url)
        client.head(url)
    assert [client.get(url).status_code for _ in range(3)] == [404, 404, 429]


def test_a_rate_of_zero_turns_limiting_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", rate_limit_per_second=0, rate_limit_burst=1)
    with TestClient(create_app(settings)) as client:
        responses = [client.get(CALCULATOR) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert "ratelimit-limit" not in responses[-1].headers


def test_the_default_limit_is_generous() -> None:
    settings = make_settings(Path("unused"))
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (50.0, 100)
