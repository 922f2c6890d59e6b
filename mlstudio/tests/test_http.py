"""The HTTP layer without a server: throttling retries, error mapping, paging."""

from __future__ import annotations

import json

import pytest
import requests

from mlstudio import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ThrottledError,
    TokenAuthentication,
    ValidationError,
    WorkspaceNotFound,
)
from mlstudio._client.http import HttpClient, normalize_server_url
from mlstudio.exceptions import ServerError, ServiceUnavailableError


def response(status: int, body=None, headers=None, url="http://s/api/v1/x") -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made.url = url
    made.headers.update(headers or {})
    made._content = json.dumps(body).encode() if body is not None else b"<html>oops</html>"
    return made


@pytest.fixture
def client(monkeypatch):
    made = HttpClient("http://s/", TokenAuthentication("mls_t"))
    made.sent = []
    made.answers = []

    def request(method, url, **kwargs):
        made.sent.append((method, url, kwargs))
        return made.answers.pop(0)

    monkeypatch.setattr(made.session, "request", request)
    return made


def test_429_is_retried_after_the_servers_retry_after(client, monkeypatch):
    waits = []
    monkeypatch.setattr("mlstudio._client.http.time.sleep", waits.append)
    throttled = {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Slow down."}
    client.answers = [
        response(429, throttled, {"Retry-After": "3"}),
        response(429, throttled, {"Retry-After": "1"}),
        response(200, {"ok": True}),
    ]
    assert client.get("x") == {"ok": True}
    assert waits == [3.0, 1.0]
    assert client.sent[0][2]["headers"] == {"Authorization": "Bearer mls_t"}

    client.answers = [response(429, throttled, {"Retry-After": "2"}) for _ in range(6)]
    with pytest.raises(ThrottledError, match="Slow down") as caught:
        client.get("x")
    assert caught.value.retry_after == 2.0 and caught.value.status_code == 429


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}, ValidationError, None),
        (400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "dup"}, ConflictError, None),
        (401, {"error_code": "UNAUTHENTICATED", "message": "who"}, AuthenticationError, None),
        (
            404,
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "gone"},
            WorkspaceNotFound,
            None,
        ),
        (404, None, WorkspaceNotFound, "RESOURCE_DOES_NOT_EXIST"),
        (502, None, ServerError, "INTERNAL_ERROR"),
    ],
)
def test_errors_map_to_exceptions(client, status, body, expected, code):
    client.answers = [response(status, body)]
    with pytest.raises(expected) as caught:
        client.get("x", not_found=WorkspaceNotFound)
    assert caught.value.status_code == status
    assert caught.value.error_code == (code or body["error_code"])
    if body:
        assert caught.value.message == body["message"]


def test_a_page_that_is_not_json_is_a_clear_error(client):
    client.answers = [response(200, None)]
    with pytest.raises(ServerError, match="not JSON"):
        client.get("x")


def test_paging_follows_next_links(client):
    client.answers = [
        response(200, {"next": "http://s/api/v1/x?cursor=a", "previous": None, "results": [1, 2]}),
        response(200, {"next": None, "previous": None, "results": [3]}),
    ]
    assert list(client.paged("x", {"page_size": 2})) == [1, 2, 3]
    assert [url for _, url, _ in client.sent] == ["http://s/api/v1/x", "http://s/api/v1/x?cursor=a"]


def test_unreachable_server():
    with pytest.raises(ServiceUnavailableError, match="Cannot reach"):
        HttpClient("http://127.0.0.1:9", None).get("user")
    assert issubclass(WorkspaceNotFound, NotFoundError)
    assert normalize_server_url("https://studio.example/api/v1/") == "https://studio.example"
