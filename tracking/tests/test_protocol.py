"""The MLflow protocol at the HTTP level: authentication, roles, isolation, errors, limits."""

from __future__ import annotations

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.django_db(transaction=True)


def _headers(tracking, who: str = "owner") -> dict[str, str]:
    return {"Authorization": f"Bearer {tracking.tokens[who]}"}


def _api(tracking, path: str, uri: str | None = None) -> str:
    return f"{uri or tracking.uri}/api/2.0/mlflow/{path}"


def test_anonymous_and_bad_tokens_get_401(tracking):
    url = _api(tracking, "experiments/search")
    for headers in ({}, {"Authorization": "Bearer mls_not-a-token"}, {"Authorization": "Weird x"}):
        response = requests.post(url, json={}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_basic_auth_with_password_or_token(tracking, cast):
    cast.owner.set_password("s3cret-pass")
    cast.owner.save()
    url = _api(tracking, "experiments/search")
    assert requests.post(url, json={}, auth=("olivia", "s3cret-pass")).status_code == 200
    assert requests.post(url, json={}, auth=("olivia", tracking.tokens["owner"])).status_code == 200
    assert requests.post(url, json={}, auth=("olivia", "wrong")).status_code == 401
    # A token presented under another user's name is refused.
    assert requests.post(url, json={}, auth=("rita", tracking.tokens["owner"])).status_code == 401


def test_reader_reads_but_cannot_write(tracking, monkeypatch):
    owner = mlflow.MlflowClient()
    exp_id = owner.create_experiment("shared")
    run_id = owner.create_run(exp_id).info.run_id
    reader = tracking.client("reader", monkeypatch)
    assert reader.get_run(run_id).info.run_id == run_id
    assert reader.get_experiment(exp_id).name == "shared"
    for attempt in (
        lambda: reader.create_experiment("nope"),
        lambda: reader.log_metric(run_id, "m", 1.0),
        lambda: reader.set_tag(run_id, "t", "v"),
        lambda: reader.delete_run(run_id),
        lambda: reader.delete_experiment(exp_id),
    ):
        with pytest.raises(MlflowException) as err:
            attempt()
        assert err.value.error_code == "PERMISSION_DENIED"


def test_contributor_writes(tracking, monkeypatch):
    contributor = tracking.client("contributor", monkeypatch)
    exp_id = contributor.create_experiment("by-contributor")
    run = contributor.create_run(exp_id)
    contributor.log_metric(run.info.run_id, "m", 1.0)
    assert run.info.user_id == "carlos"


def test_outsider_cannot_see_the_workspace(tracking, monkeypatch):
    outsider = tracking.client("outsider", monkeypatch)
    with pytest.raises(MlflowException) as err:
        outsider.search_experiments()
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_ids_of_another_workspace_are_not_reachable(tracking, cast, monkeypatch):
    """The outsider's own run and experiment, asked for through our workspace's URI by an
    owner of ours, do not exist there."""
    other_uri = tracking.uri_for(cast.other_workspace)
    outsider = tracking.client("outsider", monkeypatch, uri=other_uri)
    foreign_exp = outsider.create_experiment("foreign")
    foreign_run = outsider.create_run(foreign_exp).info.run_id
    outsider.log_metric(foreign_run, "secret", 42.0)
    owner = tracking.client("owner", monkeypatch)
    for attempt in (
        lambda: owner.get_run(foreign_run),
        lambda: owner.get_experiment(foreign_exp),
        lambda: owner.log_metric(foreign_run, "m", 1.0),
        lambda: owner.get_metric_history(foreign_run, "secret"),
        lambda: owner.delete_run(foreign_run),
    ):
        with pytest.raises(MlflowException) as err:
            attempt()
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert owner.search_runs([foreign_exp]) == []
    # And our owner cannot use the other workspace's URI at all.
    with pytest.raises(MlflowException) as err:
        tracking.client("owner", monkeypatch, uri=other_uri).search_experiments()
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_workspace_limited_token_stays_in_its_workspace(tracking, cast, monkeypatch):
    from portal import services

    _, raw = services.token_create(user=cast.owner, name="ws-only", workspace=cast.workspace)
    other_sub_ws = services.workspace_create(
        actor=cast.owner, resource_group=cast.resource_group, name="ws-second"
    )
    url = _api(tracking, "experiments/search")
    headers = {"Authorization": f"Bearer {raw}"}
    assert requests.post(url, json={}, headers=headers).status_code == 200
    second = _api(tracking, "experiments/search", uri=tracking.uri_for(other_sub_ws))
    assert requests.post(second, json={}, headers=headers).status_code == 404


def test_read_scoped_token_cannot_write(tracking, cast):
    from portal import services

    _, raw = services.token_create(user=cast.owner, name="read-only", scope="read")
    headers = {"Authorization": f"Bearer {raw}"}
    assert requests.post(_api(tracking, "experiments/search"), json={}, headers=headers).ok
    response = requests.post(
        _api(tracking, "experiments/create"), json={"name": "x"}, headers=headers
    )
    assert response.status_code == 403


def test_posts_must_be_json(tracking):
    url = _api(tracking, "experiments/create")
    response = requests.post(url, data={"name": "form-post"}, headers=_headers(tracking))
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    response = requests.post(
        url,
        data="not json",
        headers={**_headers(tracking), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert mlflow.MlflowClient().get_experiment_by_name("form-post") is None


def test_request_size_limit(tracking, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {"name": "big", "tags": [{"key": "k", "value": "v" * 20_000}]}
    response = requests.post(
        _api(tracking, "experiments/create"), json=body, headers=_headers(tracking)
    )
    assert response.status_code == 413
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_unknown_endpoint_and_wrong_method(tracking):
    response = requests.get(_api(tracking, "no/such/thing"), headers=_headers(tracking))
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    response = requests.get(_api(tracking, "runs/create"), headers=_headers(tracking))
    assert response.status_code == 405


def test_ajax_api_serves_every_handler_with_the_same_access(tracking, monkeypatch):
    """mlflow server serves its API under /ajax-api/ as well (its UI calls that prefix):
    the same handlers, the same answers, the same roles."""
    ajax = f"{tracking.uri}/ajax-api/2.0/mlflow"
    owner = _headers(tracking)
    created = requests.post(f"{ajax}/experiments/create", json={"name": "via-ajax"}, headers=owner)
    assert created.status_code == 200, created.text
    exp_id = created.json()["experiment_id"]
    assert mlflow.MlflowClient().get_experiment(exp_id).name == "via-ajax"
    run_id = mlflow.MlflowClient().create_run(exp_id).info.run_id
    logged = requests.post(
        f"{ajax}/runs/log-metric",
        json={"run_id": run_id, "key": "m", "value": 2.5, "timestamp": 1, "step": 3},
        headers=owner,
    )
    assert logged.status_code == 200, logged.text
    for path, params in [
        ("runs/get", {"run_id": run_id}),
        ("metrics/get-history", {"run_id": run_id, "metric_key": "m"}),
        ("experiments/get-by-name", {"experiment_name": "via-ajax"}),
    ]:
        via_api = requests.get(_api(tracking, path), params=params, headers=owner)
        via_ajax = requests.get(f"{ajax}/{path}", params=params, headers=owner)
        assert via_ajax.status_code == 200, via_ajax.text
        assert via_ajax.json() == via_api.json()
    reader = _headers(tracking, "reader")
    assert requests.get(f"{ajax}/runs/get", params={"run_id": run_id}, headers=reader).ok
    denied = requests.post(f"{ajax}/runs/delete", json={"run_id": run_id}, headers=reader)
    assert (denied.status_code, denied.json()["error_code"]) == (403, "PERMISSION_DENIED")
    hidden = requests.get(
        f"{ajax}/runs/get", params={"run_id": run_id}, headers=_headers(tracking, "outsider")
    )
    assert hidden.status_code == 404
    assert requests.get(f"{ajax}/runs/get", params={"run_id": run_id}).status_code == 401
    # Artifacts too: a file put through one prefix is read through the other.
    artifacts = "2.0/mlflow-artifacts/artifacts/x/file.txt"
    put = requests.put(f"{tracking.uri}/ajax-api/{artifacts}", data=b"ajax", headers=owner)
    assert put.status_code == 200, put.text
    assert requests.get(f"{tracking.uri}/api/{artifacts}", headers=reader).content == b"ajax"
    unknown = requests.get(f"{ajax}/no/such/thing", headers=owner)
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    assert requests.get(f"{ajax}/runs/create", headers=owner).status_code == 405


def test_one_routing_table_for_every_prefix():
    """Each route answers under each of its prefixes with the one handler registered,
    and under no other path."""
    import tracking.mlflow.urls  # noqa: F401  (importing it registers every route)
    from tracking.mlflow.protocol import _resolve, routes

    for entry in routes():
        for path in entry.paths:
            concrete = path.replace("<path:artifact_path>", "a/b.txt")
            concrete = concrete.replace("<model_id>", "m-1").replace("<path:tag_key>", "k")
            found, _, _ = _resolve(entry.method, concrete)
            assert found is entry, path
        for other in {"api", "ajax-api", ""} - set(entry.prefixes):
            path = f"{other}/{entry.pattern}" if other else entry.pattern
            found, _, _ = _resolve(entry.method, path.replace("<path:artifact_path>", "a"))
            assert found is not entry, path
    # The dot of "2.0" is a dot, not any character.
    assert _resolve("GET", "api/2x0/mlflow-artifacts/artifacts/a")[0] is None


def test_version_is_what_the_client_reads(tracking, cast):
    """The client asks the server's version before logging spans (3.4 or later); it gets
    the installed mlflow's, as plain text, as mlflow server answers."""
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.tracking._tracking_service.utils import _get_store
    from packaging.version import Version

    RestStore._get_server_version.cache_clear()
    store = _get_store()
    assert isinstance(store, RestStore)
    assert store._get_server_version(store.get_host_creds()) == Version(mlflow.__version__)
    RestStore._get_server_version.cache_clear()
    response = requests.get(f"{tracking.uri}/version", headers=_headers(tracking, "reader"))
    assert (response.status_code, response.text) == (200, mlflow.__version__)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert requests.get(f"{tracking.uri}/version").status_code == 401
    outsider = requests.get(f"{tracking.uri}/version", headers=_headers(tracking, "outsider"))
    assert outsider.status_code == 404
    for elsewhere in ("api/version", "ajax-api/version", "api/2.0/mlflow/version"):
        response = requests.get(f"{tracking.uri}/{elsewhere}", headers=_headers(tracking))
        assert response.status_code == 404, elsewhere


def test_bad_arguments_are_invalid_parameter_value(tracking):
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("bad-args")).info.run_id
    headers = _headers(tracking)
    cases = [
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": "abc", "timestamp": 1}),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": "soon"}),
        ("runs/log-metric", {"run_id": run_id, "key": "../m", "value": 1, "timestamp": 1}),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "timestamp": 1}),
        ("runs/log-parameter", {"run_id": run_id, "key": "k" * 300, "value": "v"}),
        ("runs/create", {"experiment_id": "abc"}),
        ("experiments/create", {"name": ""}),
    ]
    for path, body in cases:
        response = requests.post(_api(tracking, path), json=body, headers=headers)
        assert response.status_code in (400, 404), (path, body, response.text)
        payload = response.json()
        assert payload["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
        assert "Traceback" not in response.text and "/work/" not in response.text


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc",
        "/tmp/elsewhere",
        "s3://bucket/x",
        "https://evil.example/x",
        "mlflow-artifacts:/../other",
        "mlflow-artifacts:/%2e%2e/other",
        "mlflow-artifacts:/%252e%252e/other",
        "mlflow-artifacts://evil.example/x",
    ],
)
def test_clients_cannot_choose_an_artifact_location_outside(tracking, location):
    client = mlflow.MlflowClient()
    with pytest.raises(MlflowException) as err:
        client.create_experiment("escape", artifact_location=location)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_revocation_applies_once_the_access_cache_expires(tracking, cast, settings):
    from portal import services
    from portal.access_cache import access_cache_clear

    settings.ACCESS_CACHE_SECONDS = 1
    token, raw = services.token_create(user=cast.owner, name="short")
    url = _api(tracking, "experiments/search")
    headers = {"Authorization": f"Bearer {raw}"}
    assert requests.post(url, json={}, headers=headers).status_code == 200
    services.token_revoke(actor=cast.owner, token=token)
    import time

    time.sleep(1.1)
    assert requests.post(url, json={}, headers=headers).status_code == 401
    access_cache_clear()


def test_role_change_applies_once_the_access_cache_expires(tracking, cast, settings):
    import time

    from portal import services
    from portal.models import Membership

    settings.ACCESS_CACHE_SECONDS = 1
    url = _api(tracking, "experiments/create")
    headers = _headers(tracking, "reader")
    assert requests.post(url, json={"name": "a"}, headers=headers).status_code == 403
    membership = Membership.objects.get(user=cast.reader, workspace=cast.workspace)
    services.membership_revoke(actor=cast.owner, membership=membership)
    services.membership_grant(
        actor=cast.owner, scope=cast.workspace, user=cast.reader, role="contributor"
    )
    time.sleep(1.1)
    assert requests.post(url, json={"name": "b"}, headers=headers).status_code == 200


def test_the_clients_view_run_link_opens_the_workspace(client, cast):
    from portal.selectors import tracking_uri

    client.force_login(cast.reader)
    response = client.get(tracking_uri(cast.workspace, "") + "/")
    assert response.status_code == 302
    ws = cast.workspace
    assert response["Location"] == (
        f"/subscriptions/{ws.resource_group.subscription_id}/resourceGroups/rg-main"
        "/workspaces/ws-main/"
    )
