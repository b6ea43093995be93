"""The Slack Web API client every part of the bot uses: retries 429s, counts failures."""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import Metrics

RATE_LIMIT_RETRIES = 4
CONNECTION_RETRIES = 2


class CountingWebClient(AsyncWebClient):
    """AsyncWebClient that counts each failed call in slack_api_errors_total{method}.

    Every method (files_upload_v2's steps included) goes through api_call, so this one
    override sees them all, after slack-sdk's own retries have been spent.
    """

    metrics: Metrics | None = None

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, **kwargs)
        except (TimeoutError, SlackApiError, aiohttp.ClientError):
            if self.metrics is not None:
                self.metrics.slack_api_errors.labels(api_method).inc()
            raise


def slack_client(
    token: str | None, base_url: str, metrics: Metrics | None = None
) -> CountingWebClient:
    client = CountingWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )
    client.metrics = metrics
    return client
