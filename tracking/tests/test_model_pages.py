"""The Models pages: the list (search, sort, pages, logged models), a model's page and the
contributor actions, for the whole permission cast; with data made through the registry
services, through the real mlflow client, and driven in headless Chromium."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.browser import login, shot, ws_path
from tracking.models import ModelVersion, RegisteredModel, RegisteredModelAlias
from tracking.services import registry
from tracking.services.experiments import experiment_create
from tracking.services.logged_models import logged_model_create, logged_model_finalize
from tracking.services.runs import run_create
from tracking.views.common import ws_kwargs, ws_reverse

WHO = ("owner", "contributor", "reader", "outsider", "anonymous")
READ = {"owner": 200, "contributor": 200, "reader": 200, "outsider": 404}


# --- Data through the services -------------------------------------------------------------


def _run(ws, name: str = "train-rf", experiment: str = "diabetes"):
    exp = ws.experiments.filter(name=experiment).first() or experiment_create(
        workspace=ws, name=experiment, actor=None
    )
    return run_create(
        workspace=ws, experiment=exp, user_id="olivia", start_time=None, run_name=name
    )


def _model(ws, name: str, *, versions: int = 1, run=None, **fields) -> RegisteredModel:
    """A registered model with versions registered from a run of the workspace."""
    model = registry.registered_model_create(workspace=ws, name=name, actor=None, **fields)
    run = run or _run(ws)
    for _ in range(versions):
        registry.model_version_create(
            workspace=ws,
            name=name,
            source=f"runs:/{run.run_uuid}/model",
            run_id=run.run_uuid,
            user_id="olivia",
        )
    return model


def _model_url(ws, view: str, name: str) -> str:
    return reverse(view, kwargs={**ws_kwargs(ws), "name": name})


def _client(cast, who: str) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(cast.user(who))
    return client


def _path(cast, suffix: str = "models/") -> str:
    return ws_path(cast, suffix=suffix)


def _text(response) -> str:
    return response.content.decode()


def _rows(html: str) -> list[str]:
    """The model names linked from the registered-models table, in order."""
    found = re.findall(r'<td class="model-name"><a href="[^"]+">([^<]+)</a>', html)
    return [unescape(name) for name in found]


def _flash(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


# --- Permissions ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(
    "suffix", ["models/", "models/?tab=logged", "models/diabetes/", "models/?q=dia"]
)
def test_pages_read_access(cast, who, suffix) -> None:
    _model(cast.workspace, "diabetes")
    response = _client(cast, who).get(_path(cast, suffix))
    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    else:
        assert response.status_code == READ[who]
    if response.status_code == 200:
        shown = "Logged models" if "logged" in suffix else "diabetes"
        assert shown in _text(response)


ACTIONS = {
    "alias-set": ("models/diabetes/aliases/", {"alias": "champion", "version": "1"}),
    "alias-delete": ("models/diabetes/aliases/", {"action": "delete", "alias": "old"}),
    "tag-set": ("models/diabetes/tags/", {"key": "team", "value": "risk"}),
    "tag-delete": ("models/diabetes/tags/", {"action": "delete", "key": "stale"}),
    "version-delete": ("models/diabetes/versions/2/delete/", {}),
    "model-delete": ("models/diabetes/delete/", {}),
}


def _state(ws) -> dict:
    """What the actions change, to see whether a refused one changed anything."""
    model = RegisteredModel.objects.filter(workspace=ws, name="diabetes").first()
    if model is None:
        return {"model": None}
    return {
        "aliases": dict(model.aliases.values_list("alias", "version")),
        "tags": dict(model.tags.values_list("key", "value")),
        "versions": sorted(
            ModelVersion.objects.filter(registered_model=model)
            .exclude(current_stage="Deleted_Internal")
            .values_list("version", flat=True)
        ),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_actions_write_access(cast, who, action) -> None:
    ws = cast.workspace
    _model(ws, "diabetes", versions=2, tags=[{"key": "stale", "value": "x"}])
    registry.registered_model_alias_set(workspace=ws, name="diabetes", alias="old", version=2)
    before = _state(ws)
    suffix, data = ACTIONS[action]
    response = _client(cast, who).post(_path(cast, suffix), data)
    after = _state(ws)
    if who in ("owner", "contributor"):
        assert response.status_code == 302
        assert after != before
        expected = {
            "alias-set": lambda: after["aliases"] == {"old": 2, "champion": 1},
            "alias-delete": lambda: after["aliases"] == {},
            "tag-set": lambda: after["tags"] == {"stale": "x", "team": "risk"},
            "tag-delete": lambda: after["tags"] == {},
            # The version's alias goes with it.
            "version-delete": lambda: after["versions"] == [1] and after["aliases"] == {},
            "model-delete": lambda: after == {"model": None},
        }[action]
        assert expected(), after
        return
    assert after == before
    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    else:
        assert response.status_code == {"reader": 403, "outsider": 404}[who]


@pytest.mark.django_db
def test_actions_refuse_get(cast) -> None:
    _model(cast.workspace, "diabetes")
    for suffix, _ in ACTIONS.values():
        assert _client(cast, "owner").get(_path(cast, suffix)).status_code == 405


@pytest.mark.django_db
def test_readers_see_no_actions_contributors_do(cast) -> None:
    _model(cast.workspace, "diabetes", versions=2)
    reader = _text(_client(cast, "reader").get(_path(cast, "models/diabetes/")))
    contributor = _text(_client(cast, "contributor").get(_path(cast, "models/diabetes/")))
    for marker in ("Delete model", "Set alias", "Set tag", "/versions/2/delete/"):
        assert marker not in reader
        assert marker in contributor
    assert "<form" not in reader.split('<main class="content">')[1]


# --- The list ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_search_is_a_substring_in_any_case(cast) -> None:
    ws = cast.workspace
    run = _run(ws)
    for name in ("diabetes-rf", "Diabetes_LR", "diabetesXlr", "churn", "it's-a-model", "50%-off"):
        _model(ws, name, run=run)
    client = _client(cast, "reader")

    def names(q: str) -> list[str]:
        return _rows(_text(client.get(_path(cast), {"q": q})))

    assert set(names("")) == {
        "diabetes-rf",
        "Diabetes_LR",
        "diabetesXlr",
        "churn",
        "it's-a-model",
        "50%-off",
    }
    assert set(names("DIAB")) == {"diabetes-rf", "Diabetes_LR", "diabetesXlr"}
    # Characters that are wildcards or quotes in MLflow's filter syntax are plain text here.
    assert names("s_l") == ["Diabetes_LR"]
    assert names("it's") == ["it's-a-model"]
    assert names("%") == ["50%-off"]
    assert names("  churn ") == ["churn"]
    assert names("ch\x00urn") == ["churn"]
    html = _text(client.get(_path(cast), {"q": "nothing-like-this"}))
    assert _rows(html) == []
    assert "No registered models match “nothing-like-this”" in html
    assert "Clear the search" in html


@pytest.mark.django_db
def test_htmx_search_answers_the_results_partial(cast) -> None:
    _model(cast.workspace, "diabetes")
    _model(cast.workspace, "churn")
    client = _client(cast, "reader")
    partial = client.get(_path(cast), {"q": "chu"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    html = _text(partial)
    assert "<html" not in html and 'class="model-tabs"' in html
    assert _rows(html) == ["churn"]
    assert "HX-Request" in partial["Vary"]
    # A history restore after a cache miss needs the whole page again.
    restore = client.get(
        _path(cast),
        {"q": "chu"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in _text(restore)
    # The search box keeps the URL deep-linkable.
    page = _text(client.get(_path(cast), {"q": "chu"}))
    assert 'hx-push-url="true"' in page
    assert 'hx-trigger="input changed delay:250ms, search"' in page
    assert 'value="chu"' in page


@pytest.mark.django_db
def test_list_columns(cast) -> None:
    ws = cast.workspace
    _model(
        ws,
        "diabetes",
        versions=3,
        description="Predicts disease progression one year after baseline. " * 4,
        tags=[{"key": "team", "value": "risk"}, {"key": "task", "value": "regression"}],
    )
    registry.registered_model_alias_set(workspace=ws, name="diabetes", alias="champion", version=2)
    registry.model_version_delete(workspace=ws, name="diabetes", version=3, actor=None)
    # A prompt lives in the same table but is not a model.
    registry.registered_model_create(
        workspace=ws,
        name="summarize",
        tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}],
        actor=None,
    )
    html = _text(_client(cast, "reader").get(_path(cast)))
    assert _rows(html) == ["diabetes"]
    assert f'href="{_model_url(ws, "model", "diabetes")}"' in html
    assert ">v2</a>" in html  # the newest live version: v3 was deleted
    assert "champion → v2" in html
    assert "team: risk" in html and "task: regression" in html
    # An excerpt of 90 characters (89 and an ellipsis) in the cell, the whole text on hover.
    excerpt = ("Predicts disease progression one year after baseline. " * 2)[:89]
    assert f">{excerpt}…<" in html
    assert f'title="{"Predicts disease progression one year after baseline. " * 4}"' in html
    assert "summarize" not in html
    assert re.search(r'Registered models <span class="count">1</span>', html)


@pytest.mark.django_db
def test_sort_and_pages(cast) -> None:
    ws = cast.workspace
    run = _run(ws)
    names = [f"model-{i:02d}" for i in range(30)]
    for name in names:
        _model(ws, name, versions=0, run=run)
    # Touch one model so it is the most recently modified.
    registry.registered_model_update(workspace=ws, name="model-07", description="fresh")
    client = _client(cast, "reader")
    first = _text(client.get(_path(cast)))
    assert _rows(first) == names[:25]
    assert "1–25 of 30" in first
    next_link = re.search(r'href="([^"]+)" rel="next"', first).group(1)
    assert parse_qs(urlsplit(next_link.replace("&amp;", "&")).query) == {"page": ["2"]}
    assert _rows(_text(client.get(_path(cast), {"page": 2}))) == names[25:]
    assert _rows(_text(client.get(_path(cast), {"sort": "-name"})))[:3] == names[::-1][:3]
    assert _rows(_text(client.get(_path(cast), {"sort": "-modified"})))[0] == "model-07"
    # Unknown values fall back to the defaults instead of failing.
    bad = client.get(_path(cast), {"sort": "drop table", "page": "x", "tab": "nope"})
    assert bad.status_code == 200
    assert _rows(_text(bad)) == names[:25]
    # Paging keeps the search and the sort.
    searched = _text(client.get(_path(cast), {"q": "model-", "sort": "-name"}))
    next_link = re.search(r'href="([^"]+)" rel="next"', searched).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(next_link).query) == {
        "q": ["model-"],
        "sort": ["-name"],
        "page": ["2"],
    }


@pytest.mark.django_db
def test_empty_state_tells_how_to_register(cast) -> None:
    html = _text(_client(cast, "owner").get(_path(cast)))
    assert "No registered models yet" in html
    assert 'registered_model_name="my-model"' in html
    assert "mlflow.register_model(" in html
    logged = _text(_client(cast, "owner").get(_path(cast), {"tab": "logged"}))
    assert "No logged models yet" in logged


@pytest.mark.django_db
def test_logged_models_tab(cast) -> None:
    ws = cast.workspace
    run = _run(ws, name="train-gbm")
    exp = run.experiment
    ready = logged_model_create(
        workspace=ws, experiment_id=str(exp.pk), name="gbm", source_run_id=run.run_uuid
    )
    logged_model_finalize(workspace=ws, model_id=ready.model_id, status=2)
    pending = logged_model_create(workspace=ws, experiment_id=str(exp.pk), name="scratch")
    registry.registered_model_create(workspace=ws, name="gbm-prod", actor=None)
    registry.model_version_create(
        workspace=ws, name="gbm-prod", source=f"models:/{ready.model_id}", model_id=ready.model_id
    )
    client = _client(cast, "reader")
    html = _text(client.get(_path(cast), {"tab": "logged"}))
    assert ready.model_id in html and pending.model_id in html
    assert re.search(r'Logged models <span class="count">2</span>', html)
    assert ">Ready</span>" in html and ">Pending</span>" in html
    assert "train-gbm" in html
    assert f'href="{ws_reverse(ws, "run", run_id=run.run_uuid)}"' in html
    assert f'href="{ws_reverse(ws, "experiment", experiment_id=exp.pk)}"' in html
    assert "gbm-prod v1" in html
    # Newest first by default; the search filters this tab too.
    assert html.index(pending.model_id) < html.index(ready.model_id)
    searched = _text(client.get(_path(cast), {"tab": "logged", "q": "GB"}))
    assert ready.model_id in searched and pending.model_id not in searched


# --- A model's page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_model_page(cast) -> None:
    ws = cast.workspace
    run = _run(ws, name="train-rf")
    _model(
        ws,
        "diabetes",
        versions=3,
        run=run,
        description="Predicts progression.",
        tags=[{"key": "team", "value": "risk"}],
    )
    registry.registered_model_alias_set(workspace=ws, name="diabetes", alias="champion", version=2)
    registry.model_version_tag_set(
        workspace=ws, name="diabetes", version=2, key="validated", value="yes"
    )
    registry.model_version_transition_stage(
        workspace=ws, name="diabetes", version=2, stage="Production"
    )
    registry.model_version_update(workspace=ws, name="diabetes", version=1, description="first")
    registry.model_version_delete(workspace=ws, name="diabetes", version=3, actor=None)
    response = _client(cast, "reader").get(_path(cast, "models/diabetes/"))
    assert response.status_code == 200
    html = _text(response)
    assert [label for label, _ in response.context["crumbs"]][-3:] == [
        "ws-main",
        "Models",
        "diabetes",
    ]
    assert response.context["crumbs"][-2][1] == ws_reverse(ws, "models")
    assert "Predicts progression." in html
    assert "team" in html and "risk" in html
    assert "champion → v2" in html
    assert re.findall(r'<tr id="v(\d+)">', html) == ["2", "1"]  # v3 was deleted
    assert "Production" in html and "validated: yes" in html and ">first<" in html
    assert html.count(">train-rf</") == 2
    assert "2 versions" in html
    assert f'href="{ws_reverse(ws, "run", run_id=run.run_uuid)}"' in html


@pytest.mark.django_db
def test_many_versions_page_and_a_purged_run(cast) -> None:
    ws = cast.workspace
    run = _run(ws, name="gone-soon")
    _model(ws, "busy", versions=55, run=run)
    client = _client(cast, "reader")
    first = _text(client.get(_path(cast, "models/busy/")))
    assert re.findall(r'<tr id="v(\d+)">', first) == [str(n) for n in range(55, 5, -1)]
    assert "1–50 of 55" in first and 'rel="next"' in first
    older = _text(client.get(_path(cast, "models/busy/"), {"page": 2}))
    assert re.findall(r'<tr id="v(\d+)">', older) == ["5", "4", "3", "2", "1"]
    # Versions outlive their run: the id stays, without a link to a page that is gone.
    run.delete()
    html = _text(client.get(_path(cast, "models/busy/"), {"page": 2}))
    assert run.run_uuid in html
    assert f'href="{ws_reverse(ws, "run", run_id=run.run_uuid)}"' not in html


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["models/nope/", "models/%20/", "models/other/"])
def test_unknown_model_is_404(cast, suffix) -> None:
    # A model of the same name in another workspace is not found here.
    _model(cast.other_workspace, "other")
    response = _client(cast, "owner").get(_path(cast, suffix))
    assert response.status_code == 404
    assert "Nothing here" in _text(response)


@pytest.mark.django_db
def test_model_name_with_special_characters_round_trips(cast) -> None:
    name = "risk model #1 (v2?) 100%"
    _model(cast.workspace, name)
    client = _client(cast, "owner")
    url = _model_url(cast.workspace, "model", name)
    assert _text(client.get(url)).count("risk model #1 (v2?) 100%") >= 2
    response = client.post(
        _model_url(cast.workspace, "model-alias", name), {"alias": "prod", "version": "1"}
    )
    assert response["Location"] == url
    assert RegisteredModelAlias.objects.get(alias="prod").version == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("suffix", "data", "message"),
    [
        (
            "models/diabetes/aliases/",
            {"alias": "latest", "version": "1"},
            "'latest' alias name (case insensitive) is reserved.",
        ),
        (
            "models/diabetes/aliases/",
            {"alias": "v1", "version": "1"},
            "Version alias name 'v1' is reserved.",
        ),
        (
            "models/diabetes/aliases/",
            {"alias": "champion", "version": "9"},
            "Model Version (name=diabetes, version=9) not found",
        ),
        (
            "models/diabetes/aliases/",
            {"alias": "champion", "version": "two"},
            "Parameter 'version' must be an integer, got 'two'.",
        ),
        ("models/diabetes/aliases/", {"alias": "bad alias!", "version": "1"}, "Invalid alias"),
        ("models/diabetes/tags/", {"key": "", "value": "x"}, "key"),
        ("models/diabetes/versions/7/delete/", {}, "Model Version (name=diabetes, version=7)"),
    ],
)
def test_bad_input_is_a_message_on_the_page(cast, suffix, data, message) -> None:
    _model(cast.workspace, "diabetes")
    client = _client(cast, "contributor")
    response = client.post(_path(cast, suffix), data, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == _model_url(cast.workspace, "model", "diabetes")
    flashes = _flash(response)
    assert len(flashes) == 1 and flashes[0][0] == "error"
    assert message in flashes[0][1]
    html = _text(response)
    assert 'class="flash error"' in html
    assert "Traceback" not in html and "/work/" not in html
    assert not RegisteredModelAlias.objects.exists()


@pytest.mark.django_db
def test_success_messages_and_model_delete_goes_back_to_list(cast) -> None:
    _model(cast.workspace, "diabetes")
    client = _client(cast, "owner")
    response = client.post(
        _path(cast, "models/diabetes/aliases/"), {"alias": "champion", "version": "1"}, follow=True
    )
    assert _flash(response) == [("success", "Alias “champion” now points to version 1.")]
    assert "champion → v1" in _text(response)
    response = client.post(_path(cast, "models/diabetes/delete/"), follow=True)
    assert response.redirect_chain[-1][0] == ws_reverse(cast.workspace, "models")
    assert _flash(response) == [("success", "Model “diabetes” and its versions deleted.")]
    assert "No registered models yet" in _text(response)
    # The model is gone: its page and its actions are 404 now.
    assert client.get(_path(cast, "models/diabetes/")).status_code == 404
    assert client.post(_path(cast, "models/diabetes/tags/"), {"key": "a"}).status_code == 404


# --- Through the real mlflow client -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_models_registered_with_the_mlflow_client(tracking, cast) -> None:
    import mlflow
    import numpy as np
    from sklearn.linear_model import LinearRegression

    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    y = np.array([1.0, 2.0, 4.0, 9.0])
    mlflow.set_experiment("diabetes")
    with mlflow.start_run(run_name="rf-baseline") as run:
        info = mlflow.sklearn.log_model(
            LinearRegression().fit(x, y), name="model", registered_model_name="diabetes-rf"
        )
    mlflow.register_model(f"runs:/{run.info.run_id}/model", "diabetes-rf")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("diabetes-rf", "champion", "2")
    client.set_registered_model_tag("diabetes-rf", "team", "risk")
    client.update_registered_model("diabetes-rf", description="Linear baseline.")

    web = _client(cast, "reader")
    listing = _text(web.get(_path(cast)))
    assert _rows(listing) == ["diabetes-rf"]
    assert "champion → v2" in listing and "team: risk" in listing
    assert "Linear baseline." in listing
    logged = _text(web.get(_path(cast), {"tab": "logged"}))
    assert info.model_id in logged and "rf-baseline" in logged and "diabetes-rf v1" in logged
    assert ">Ready</span>" in logged

    page = _text(web.get(_path(cast, "models/diabetes-rf/")))
    assert re.findall(r'<tr id="v(\d+)">', page) == ["2", "1"]
    assert page.count(">rf-baseline</") == 2
    assert f"models:/{info.model_id}" in page  # v1's source, as the client registered it

    # A change made on the page is what the client then reads.
    owner = _client(cast, "owner")
    owner.post(_path(cast, "models/diabetes-rf/aliases/"), {"alias": "champion", "version": "1"})
    owner.post(_path(cast, "models/diabetes-rf/versions/2/delete/"))
    assert client.get_model_version_by_alias("diabetes-rf", "champion").version == "1"
    assert [v.version for v in client.search_model_versions("name='diabetes-rf'")] == ["1"]


# --- In Chromium ---------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_search_open_and_change_a_model(page: Page, live_server, cast) -> None:
    ws = cast.workspace
    run = _run(ws, name="train-rf")
    _model(
        ws,
        "diabetes-rf",
        versions=3,
        run=run,
        description="Random forest on the diabetes data set; predicts progression after a year.",
        tags=[{"key": "team", "value": "risk"}, {"key": "framework", "value": "sklearn"}],
    )
    registry.registered_model_alias_set(
        workspace=ws, name="diabetes-rf", alias="champion", version=3
    )
    registry.registered_model_alias_set(
        workspace=ws, name="diabetes-rf", alias="challenger", version=2
    )
    registry.model_version_transition_stage(
        workspace=ws, name="diabetes-rf", version=3, stage="Production"
    )
    _model(ws, "diabetes-lr", versions=1, run=run, description="Linear baseline.")
    _model(ws, "churn-xgb", versions=2, run=_run(ws, name="xgb", experiment="churn"))
    _model(ws, "fraud-detector", versions=1, run=run, tags=[{"key": "team", "value": "payments"}])
    logged_model_create(
        workspace=ws, experiment_id=str(run.experiment_id), name="model", source_run_id=run.run_uuid
    )

    login(page, "carlos")
    page.goto(_path(cast))
    table = page.locator("table.models-table tbody tr")
    expect(table).to_have_count(4)
    expect(page.get_by_role("link", name="Registered models 4")).to_be_visible()
    shot(page, "models-list")

    page.get_by_label("Search models by name").press_sequentially("diab")
    expect(table).to_have_count(2)
    expect(page.locator("td.model-name")).to_have_text(["diabetes-lr", "diabetes-rf"])
    expect(page).to_have_url(re.compile(r"/models/\?q=diab$"))
    expect(page.get_by_label("Search models by name")).to_be_focused()
    shot(page, "models-search")

    page.get_by_label("Search models by name").fill("zzz")
    expect(page.get_by_role("heading", name="No registered models match “zzz”")).to_be_visible()
    shot(page, "models-search-no-match")
    page.get_by_role("link", name="Clear the search").click()
    expect(table).to_have_count(4)

    page.get_by_role("link", name="Logged models 1").click()
    expect(page.locator("table.models-table tbody tr")).to_have_count(1)
    shot(page, "models-logged")

    page.goto(_path(cast, "models/?q=diab"))
    page.get_by_role("link", name="diabetes-rf").click()
    expect(page.get_by_role("heading", name="diabetes-rf")).to_be_visible()
    expect(page.locator(".crumbs")).to_contain_text("ws-main›Models›diabetes-rf")
    expect(page.locator("table.versions-table tbody tr")).to_have_count(3)
    shot(page, "model-page")

    # A reserved alias is refused with a message on the page.
    page.get_by_label("Alias", exact=True).fill("latest")
    page.get_by_role("button", name="Set alias").click()
    expect(page.locator(".flash.error")).to_have_text(
        "'latest' alias name (case insensitive) is reserved."
    )
    shot(page, "model-error")

    page.get_by_label("Alias", exact=True).fill("staging")
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_role("button", name="Set alias").click()
    expect(page.locator(".flash.success")).to_have_text("Alias “staging” now points to version 1.")
    expect(page.locator("#v1")).to_contain_text("staging")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete version 2").click()
    expect(page.locator(".flash.success")).to_have_text("Version 2 of diabetes-rf deleted.")
    expect(page.locator("table.versions-table tbody tr")).to_have_count(2)
    expect(page.locator(".alias-list")).not_to_contain_text("challenger")
    shot(page, "model-after-changes")

    # A declined confirmation changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete model").click()
    expect(page.get_by_role("heading", name="diabetes-rf")).to_be_visible()
    assert RegisteredModel.objects.filter(workspace=ws, name="diabetes-rf").exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_reader_and_empty_state(page: Page, live_server, cast) -> None:
    login(page, "rita")
    page.goto(_path(cast))
    expect(page.get_by_role("heading", name="No registered models yet")).to_be_visible()
    expect(page.locator("#register-snippet")).to_contain_text("registered_model_name=")
    shot(page, "models-empty")

    _model(cast.workspace, "diabetes-rf", versions=2)
    page.goto(_path(cast, "models/diabetes-rf/"))
    expect(page.locator("table.versions-table tbody tr")).to_have_count(2)
    expect(page.get_by_role("button")).to_have_count(1)  # only "Sign out"
    shot(page, "model-page-reader")

    page.goto(_path(cast, "models/no-such-model/"))
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    shot(page, "model-404")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_pages_of_models(page: Page, live_server, cast) -> None:
    ws = cast.workspace
    run = _run(ws)
    for i in range(32):
        _model(ws, f"forecast-store-{i:02d}", versions=1 + i % 3, run=run)
    login(page, "rita")
    page.goto(_path(cast, "models/?sort=-name"))
    rows = page.locator("table.models-table tbody tr")
    expect(rows).to_have_count(25)
    expect(page.locator("td.model-name").first).to_have_text("forecast-store-31")
    expect(page.locator(".pager")).to_contain_text("1–25 of 32")
    shot(page, "models-paged")
    page.get_by_role("link", name="Next ›").click()
    expect(rows).to_have_count(7)
    expect(page).to_have_url(re.compile(r"/models/\?sort=-name&page=2$"))
    expect(page.locator("td.model-name").last).to_have_text("forecast-store-00")
