"""The run page and its artifact endpoints: access rules, what the page shows for data
logged with the real `mlflow` client, artifact previews of each kind, path traversal,
downloads, and a bounded number of queries for a big run."""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from html.parser import HTMLParser

import mlflow
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tracking.models import LatestMetric, Param, Run, RunTag
from tracking.selectors.artifact_preview import PREVIEW_BYTES, TABLE_ROWS
from tracking.selectors.run_page import CHILDREN_SHOWN
from tracking.services.experiments import default_experiment, now_ms
from tracking.services.runs import run_create, run_delete
from tracking.views.charts import MAX_RUNS

CAST = ["owner", "contributor", "reader", "outsider", "anonymous"]
SEES = {"owner": 200, "contributor": 200, "reader": 200, "outsider": 404, "anonymous": 302}


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    """Workspaces created by the test keep their artifacts under tmp_path."""
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")


# --- Helpers ---------------------------------------------------------------------------------


def ws_kw(cast, workspace=None) -> dict:
    ws = workspace or cast.workspace
    rg = ws.resource_group
    return {"subscription_id": rg.subscription_id, "resource_group": rg.name, "workspace": ws.name}


def url(cast, name: str, run_id: str, **query: str) -> str:
    base = reverse(name, kwargs={**ws_kw(cast), "run_id": run_id})
    if query:
        base += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return base


def client_for(cast, who: str) -> Client:
    client = Client()
    user = cast.user(who)
    if user is not None:
        client.force_login(user)
    return client


def htmx(client: Client, path: str):
    return client.get(path, headers={"HX-Request": "true"})


def make_run(cast, name: str = "plain-run", workspace=None) -> Run:
    ws = workspace or cast.workspace
    return run_create(
        workspace=ws,
        experiment=default_experiment(workspace=ws),
        user_id="olivia",
        start_time=now_ms(),
        run_name=name,
    )


class Attrs(HTMLParser):
    """Attributes of the elements carrying a given attribute."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = dict(attrs)
        if self.marker in values:
            self.found.append(values)


def elements_with(html: str, marker: str) -> list[dict[str, str]]:
    parser = Attrs(marker)
    parser.feed(html)
    return parser.found


def text(response) -> str:
    return response.content.decode()


# --- Access rules ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize(
    "name, query, htmx_request",
    [
        ("run", {}, False),
        ("run", {"tab": "artifacts"}, False),
        ("run", {"tab": "children"}, False),
        ("run", {"tab": "models"}, False),
        ("run", {"tab": "metrics"}, False),
        ("run-artifacts", {"path": ""}, True),
        ("run-artifact-preview", {"path": "notes.txt"}, True),
        ("run-artifact", {"path": "notes.txt"}, False),
    ],
)
def test_every_endpoint_follows_the_access_rules(cast, who, name, query, htmx_request):
    from tracking.artifacts import artifact_uri_path, join, store_for

    run = make_run(cast)
    store_for(cast.workspace).write(join(artifact_uri_path(run.artifact_uri), "notes.txt"), [b"hi"])
    client = client_for(cast, who)
    path = url(cast, name, run.run_uuid, **query)
    response = htmx(client, path) if htmx_request else client.get(path)
    assert response.status_code == SEES[who], (who, name)
    if who == "anonymous":
        assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_run_of_another_workspace_is_not_found(cast):
    foreign = make_run(cast, workspace=cast.other_workspace)
    client = client_for(cast, "owner")
    for name in ("run", "run-artifacts", "run-artifact", "run-artifact-preview"):
        response = htmx(client, url(cast, name, foreign.run_uuid, path="x.txt"))
        assert response.status_code == 404, name
    assert client.get(url(cast, "run", "no-such-run")).status_code == 404


@pytest.mark.django_db
def test_writes_are_offered_to_contributors_only(cast):
    run = make_run(cast)
    action = reverse("run-action", kwargs=ws_kw(cast))
    for who in ("owner", "contributor"):
        html = text(client_for(cast, who).get(url(cast, "run", run.run_uuid)))
        assert f'action="{action}"' in html
        assert ">Delete</button>" in html
    html = text(client_for(cast, "reader").get(url(cast, "run", run.run_uuid)))
    assert action not in html
    assert ">Delete</button>" not in html
    assert "Restore" not in html


@pytest.mark.django_db
def test_deleted_run_shows_a_banner_and_restore_for_contributors(cast):
    run = make_run(cast)
    run_delete(run=run, actor=None)
    page = url(cast, "run", run.run_uuid)
    html = text(client_for(cast, "contributor").get(page))
    assert "This run is deleted." in html
    assert ">Restore</button>" in html
    assert ">Delete</button>" not in html
    reader_html = text(client_for(cast, "reader").get(page))
    assert "This run is deleted." in reader_html
    assert ">Restore</button>" not in reader_html

    # The button's form restores the run and comes back to the page.
    forms = elements_with(html, "data-confirm") + elements_with(html, "action")
    assert any(f.get("action") == reverse("run-action", kwargs=ws_kw(cast)) for f in forms)
    response = client_for(cast, "contributor").post(
        reverse("run-action", kwargs=ws_kw(cast)),
        {"action": "restore", "run_ids": run.run_uuid, "next": page},
    )
    assert response.status_code == 302 and response["Location"] == page
    run.refresh_from_db()
    assert run.lifecycle_stage == "active"
    assert "This run is deleted." not in text(client_for(cast, "contributor").get(page))


# --- What the page shows -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_overview_shows_what_the_client_logged(tracking, cast):
    import pandas as pd

    mlflow.set_experiment("overview")
    with mlflow.start_run(run_name="trainer", description="Tuned <b>alpha</b> by hand.") as parent:
        mlflow.log_params({"alpha": "0.5", "l1_ratio": "0.1"})
        mlflow.set_tags({"team": "vision", "mlflow.source.git.commit": "0123456789abcdef0123"})
        mlflow.log_metric("rmse", 0.7812345, step=3)
        mlflow.log_metric("r2", float("nan"))
        frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
        dataset = mlflow.data.from_pandas(frame, source="s3://bucket/diabetes.csv", name="diabetes")
        mlflow.log_input(dataset, context="training")
        with mlflow.start_run(run_name="fold-1", nested=True) as child:
            mlflow.log_metric("rmse", 0.9, step=1)
    client = client_for(cast, "reader")
    html = text(client.get(url(cast, "run", parent.info.run_id)))
    assert "<h1>trainer" in html
    assert 'class="run-status finished"' in html
    assert parent.info.run_id in html
    assert "alpha" in html and "l1_ratio" in html
    assert "vision" in html
    assert "0123456789ab" in html  # the commit, shortened
    assert "0.781234" in html and ">NaN<" in html
    assert "Tuned &lt;b&gt;alpha&lt;/b&gt; by hand." in html  # the description, escaped
    assert "diabetes" in html and "s3://bucket/diabetes.csv" in html and "training" in html
    # mlflow.* tags sit in the collapsed section, not in the user's tags table.
    tags_table = html.split('id="tags-table"')[1].split("</table>")[0]
    assert "team" in tags_table and "mlflow.runName" not in tags_table
    assert "System tags" in html and "mlflow.user" in html
    experiment_page = reverse(
        "experiment", kwargs={**ws_kw(cast), "experiment_id": int(parent.info.experiment_id)}
    )
    assert f'href="{experiment_page}"' in html
    assert f'href="{url(cast, "run", child.info.run_id)}"' not in html  # children tab only

    child_html = text(client.get(url(cast, "run", child.info.run_id)))
    assert f'href="{url(cast, "run", parent.info.run_id)}">trainer</a>' in child_html

    children = text(client.get(url(cast, "run", parent.info.run_id, tab="children")))
    assert f'href="{url(cast, "run", child.info.run_id)}">fold-1</a>' in children
    assert ">rmse</th>" in children and "0.9" in children
    crumbs = children.split('class="crumbs"')[1].split("</nav>")[0]
    assert "overview" in crumbs and "trainer" in crumbs


@pytest.mark.django_db
def test_metrics_tab_embeds_the_chart_component(cast):
    run = make_run(cast, name='odd "name" <x>')
    for key in ("loss", "acc"):
        LatestMetric.objects.create(run=run, key=key, value=1.0, timestamp=1, step=0)
    html = text(client_for(cast, "reader").get(url(cast, "run", run.run_uuid, tab="metrics")))
    (charts,) = elements_with(html, "data-metric-charts")
    assert charts["data-url"] == reverse("chart-metric", kwargs=ws_kw(cast))
    assert json.loads(charts["data-runs"]) == [{"id": run.run_uuid, "name": 'odd "name" <x>'}]
    assert json.loads(charts["data-keys"]) == ["acc", "loss"]
    assert "vendor/plotly/plotly-partial.min.js" in html and "js/charts.js" in html
    assert "css/charts.css" in html
    # Other tabs do not load plotly.
    assert "plotly" not in text(client_for(cast, "reader").get(url(cast, "run", run.run_uuid)))


@pytest.mark.django_db
def test_empty_run_shows_empty_states(cast):
    run = make_run(cast)
    client = client_for(cast, "reader")
    assert "No parameters logged." in text(client.get(url(cast, "run", run.run_uuid)))
    assert "No metrics yet" in text(client.get(url(cast, "run", run.run_uuid, tab="metrics")))
    assert "No artifacts logged" in text(
        client.get(url(cast, "run", run.run_uuid, tab="artifacts"))
    )
    assert "No child runs" in text(client.get(url(cast, "run", run.run_uuid, tab="children")))
    models = text(client.get(url(cast, "run", run.run_uuid, tab="models")))
    assert "No models logged by this run." in models
    # An unknown tab is the overview.
    assert "Properties" in text(client.get(url(cast, "run", run.run_uuid, tab="<script>")))


# --- Artifacts: tree and previews ------------------------------------------------------------


def _png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def logged(tracking, tmp_path):
    """A run with one artifact of each kind, logged with the real client."""
    mlflow.set_experiment("artifacts")
    files = tmp_path / "files"
    (files / "data").mkdir(parents=True)
    (files / "data" / "table.csv").write_text(
        "name,score\n" + "".join(f"row{i},{i / 10}\n" for i in range(150))
    )
    (files / "data" / "table.tsv").write_text("a\tb\n1\t2\n")
    (files / "plot.png").write_bytes(_png_bytes())
    (files / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        "<script>alert(1)</script><rect width='10' height='10'/></svg>"
    )
    (files / "weights.bin").write_bytes(os.urandom(2048))
    (files / "page.html").write_text("<script>alert('x')</script>")
    with mlflow.start_run(run_name="with-artifacts") as run:
        mlflow.log_text("epoch 1 loss=0.5\nepoch 2 loss=0.25\n", "logs/train.log")
        mlflow.log_text("print('hi')\n", "code/train.py")
        mlflow.log_text("# Notes\n\n**bold**\n", "README.md")
        mlflow.log_dict({"lr": 0.1, "layers": [64, 32]}, "config.json")
        mlflow.log_dict({"lr": 0.1}, "config.yaml")
        mlflow.log_text("{not json", "broken.json")
        mlflow.log_artifacts(str(files))
    return run.info.run_id


def preview(cast, run_id: str, path: str, who: str = "reader", **extra: str):
    return htmx(
        client_for(cast, who), url(cast, "run-artifact-preview", run_id, path=path, **extra)
    )


@pytest.mark.django_db(transaction=True)
def test_tree_lists_folders_first_and_expands_lazily(logged, cast):
    client = client_for(cast, "reader")
    html = text(client.get(url(cast, "run", logged, tab="artifacts")))
    names = re.findall(r'class="name"[^>]*>([^<]+)<', html)
    assert names[:3] == ["code", "data", "logs"]  # folders first
    assert "plot.png" in names and "config.json" in names
    assert "table.csv" not in names  # inside a folder that is not open yet
    folder = [d for d in elements_with(html, "hx-get") if "path=data" in d["hx-get"]]
    assert folder and folder[0]["hx-trigger"] == "toggle once"

    listing = text(htmx(client, url(cast, "run-artifacts", logged, path="data")))
    assert "table.csv" in listing and "table.tsv" in listing
    assert "path=data/table.csv" in listing
    assert "<html" not in listing  # a fragment

    # A deep link opens the folders down to the file and shows its preview.
    deep = text(client.get(url(cast, "run", logged, tab="artifacts", path="data/table.csv")))
    assert "table.csv" in deep and 'class="node file selected"' in deep
    assert "<th>score</th>" in deep


@pytest.mark.django_db(transaction=True)
def test_previews_of_each_kind(logged, cast):
    log = text(preview(cast, logged, "logs/train.log"))
    assert "epoch 2 loss=0.25" in log and "preview-text" in log

    assert "print(&#x27;hi&#x27;)" in text(preview(cast, logged, "code/train.py"))
    assert "**bold**" in text(preview(cast, logged, "README.md"))
    assert "lr: 0.1" in text(preview(cast, logged, "config.yaml"))

    pretty = text(preview(cast, logged, "config.json"))
    assert "&quot;layers&quot;: [\n    64,\n    32\n  ]" in pretty

    broken = text(preview(cast, logged, "broken.json"))
    assert "Not valid JSON" in broken and "{not json" in broken

    table = text(preview(cast, logged, "data/table.csv"))
    assert "<th>name</th><th>score</th>" in table
    assert "<td>row0</td><td>0.0</td>" in table
    assert f"<td>row{TABLE_ROWS - 1}</td>" in table and f"<td>row{TABLE_ROWS}</td>" not in table
    assert f"The first {TABLE_ROWS} rows are shown" in table
    tsv = text(preview(cast, logged, "data/table.tsv"))
    assert "<th>a</th><th>b</th>" in tsv and "<td>1</td><td>2</td>" in tsv

    image = text(preview(cast, logged, "plot.png"))
    (img,) = [a for a in elements_with(image, "src") if "plot.png" in a["src"]]
    assert img["src"].startswith(url(cast, "run-artifact", logged))

    svg = text(preview(cast, logged, "logo.svg"))
    assert "<svg" not in svg and "alert(1)" not in svg  # only ever an <img>
    assert [a for a in elements_with(svg, "src") if "logo.svg" in a["src"]]

    binary = text(preview(cast, logged, "weights.bin"))
    assert "No preview" in binary and "download=1" in binary

    html_file = text(preview(cast, logged, "page.html"))
    assert "<script>alert" not in html_file and "&lt;script&gt;" in html_file

    # Errors name the path as the user gave it, not where the store keeps it.
    missing = preview(cast, logged, "nope.txt")
    assert missing.status_code == 404
    assert text(missing).strip().endswith("No such artifact: &#x27;nope.txt&#x27;.</div>")
    folder = preview(cast, logged, "data")
    assert folder.status_code == 400 and "&#x27;data&#x27; is a folder" in text(folder)

    # A plain visit to a preview URL opens the page on that file.
    plain = client_for(cast, "reader").get(url(cast, "run-artifact-preview", logged, path="a b"))
    assert plain.status_code == 302
    assert plain["Location"] == url(cast, "run", logged) + "?tab=artifacts&path=a+b"


@pytest.mark.django_db(transaction=True)
def test_downloads_stream_with_safe_headers(logged, cast):
    client = client_for(cast, "reader")

    def get(path: str, **extra: str):
        response = client.get(url(cast, "run-artifact", logged, path=path, **extra))
        assert response.status_code == 200
        assert response["X-Content-Type-Options"] == "nosniff"
        return response, b"".join(response.streaming_content)

    response, body = get("plot.png")
    assert body == _png_bytes() and response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")
    response, _ = get("plot.png", download="1")
    assert response["Content-Disposition"].startswith("attachment")
    for risky in ("logo.svg", "page.html", "weights.bin"):
        response, _ = get(risky)
        assert response["Content-Disposition"].startswith("attachment"), risky
        assert "sandbox" in response["Content-Security-Policy"]
    # Text types go out as text/plain: with nosniff a browser only ever shows them as text.
    response, _ = get("config.json")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    response, body = get("logs/train.log")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert body.startswith(b"epoch 1")
    assert response["Content-Length"] == str(len(body))

    missing = client.get(url(cast, "run-artifact", logged, path="nope.txt"))
    assert missing.status_code == 404
    assert "No such artifact" in text(missing) and "Back to the run" in text(missing)


@pytest.mark.django_db(transaction=True)
def test_mlmodel_of_a_logged_sklearn_model(tracking, cast):
    import numpy as np
    from sklearn.linear_model import LinearRegression

    mlflow.set_experiment("models")
    X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    model = LinearRegression().fit(X, np.array([1.0, 2.0, 3.0]))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X[:1], registered_model_name="diabetes-rf"
        )
    run_id = run.info.run_id
    client = client_for(cast, "reader")

    models = text(client.get(url(cast, "run", run_id, tab="models")))
    assert info.model_id in models
    model_page = reverse("model", kwargs={**ws_kw(cast), "name": "diabetes-rf"})
    assert f'href="{model_page}"' in models

    # MLflow 3 keeps the model's files under the model: browsable from the run's tab.
    tab = text(client.get(url(cast, "run", run_id, tab="artifacts")))
    assert info.model_id in tab and f"model={info.model_id}" in tab
    listing = text(htmx(client, url(cast, "run-artifacts", run_id, model=info.model_id)))
    assert "MLmodel" in listing and "model.skops" in listing

    html = text(preview(cast, run_id, "MLmodel", model=info.model_id))
    assert 'class="mlmodel"' in html
    assert "sklearn" in html and "python_function" in html
    assert "sklearn_version" in html and "loader_module" in html
    assert info.model_id in html  # model uuid / id
    assert f'href="{url(cast, "run", run_id)}"' in html and "(this run)" in html
    assert "Inputs" in html and "tensor of float64" in html

    binary = text(preview(cast, run_id, "model.skops", model=info.model_id))
    assert "No preview" in binary

    # Another run's model id is not reachable through this run.
    with mlflow.start_run() as other:
        pass
    response = preview(cast, other.info.run_id, "MLmodel", model=info.model_id)
    assert response.status_code == 404 and "no logged model" in text(response)


@pytest.mark.django_db(transaction=True)
def test_big_text_is_truncated_without_reading_it_whole(tracking, cast, monkeypatch):
    from tracking.artifacts.local import LocalReader

    mlflow.set_experiment("big")
    line = "step 0123456789 loss 0.123456789\n"
    with mlflow.start_run() as run:
        mlflow.log_text(line * (3 * PREVIEW_BYTES // len(line)), "logs/big.log")
    read = []
    real_read = LocalReader.read

    def counting_read(self, n=-1):
        chunk = real_read(self, n)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(LocalReader, "read", counting_read)
    html = text(preview(cast, run.info.run_id, "logs/big.log"))
    assert "Truncated: showing the first 1.0\xa0MB of 3.0\xa0MB" in html
    shown = html.split('<pre class="preview-text">')[1].split("</pre>")[0]
    assert PREVIEW_BYTES - len(line) < len(shown) <= PREVIEW_BYTES
    assert sum(read) <= PREVIEW_BYTES + 1


TRAVERSALS = [
    "../secret.txt",
    "../../etc/passwd",
    "/etc/passwd",
    "%2e%2e/secret.txt",
    "%252e%252e/secret.txt",
    "logs/../../secret.txt",
    "..%2fsecret.txt",
    "C:/windows/win.ini",
    "logs\\..\\..\\secret.txt",
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["run-artifacts", "run-artifact-preview", "run-artifact"])
@pytest.mark.parametrize("raw", TRAVERSALS)
def test_path_traversal_is_refused(cast, settings, tmp_path, name, raw):
    from urllib.parse import quote

    run = make_run(cast)
    (tmp_path / "artifacts" / "secret.txt").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "artifacts" / "secret.txt").write_text("TOP SECRET")
    client = client_for(cast, "owner")
    for model in ("", uuid.uuid4().hex):
        query = f"?path={quote(raw, safe='')}" + (f"&model={model}" if model else "")
        response = htmx(
            client, reverse(name, kwargs={**ws_kw(cast), "run_id": run.run_uuid}) + query
        )
        assert response.status_code in (400, 404), (name, raw)
        body = text(response)
        assert "TOP SECRET" not in body
        assert str(tmp_path) not in body and "Traceback" not in body
        if not model:
            assert response.status_code == 400 and "Invalid path" in body
    # The page itself says so too, and still renders.
    page = client.get(url(cast, "run", run.run_uuid, tab="artifacts", path=quote(raw, safe="")))
    assert page.status_code == 200 and "Invalid path" in text(page)


# --- Performance -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_big_run_page_makes_a_bounded_number_of_queries(cast, django_assert_max_num_queries):
    run = make_run(cast, name="big")
    Param.objects.bulk_create(
        [Param(run=run, key=f"param_{i:03}", value=f"value {i}") for i in range(500)]
    )
    RunTag.objects.bulk_create([RunTag(run=run, key=f"tag_{i}", value="x") for i in range(50)])
    LatestMetric.objects.bulk_create(
        [
            LatestMetric(run=run, key=f"metric_{i:03}", value=i, timestamp=now_ms(), step=4999)
            for i in range(200)
        ]
    )
    add_children(run, 250)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999) "
            "INSERT INTO tracking_metricpoint (series_id, step, timestamp, value, is_nan) "
            # Series outermost, so points go in primary-key order (much faster to insert).
            "SELECT s.id, n.i, n.i, n.i * 0.5, %s FROM tracking_latestmetric s CROSS JOIN n "
            "WHERE s.run_id = %s ORDER BY s.id, n.i",
            [False, run.pk],
        )
        cursor.execute(
            "SELECT COUNT(*) FROM tracking_metricpoint p JOIN tracking_latestmetric s "
            "ON s.id = p.series_id WHERE s.run_id = %s",
            [run.pk],
        )
        assert cursor.fetchone()[0] == 1_000_000
    client = client_for(cast, "reader")
    client.get(url(cast, "run", run.run_uuid))  # warm the session and access caches
    for tab in ("overview", "metrics", "artifacts", "children", "models"):
        with django_assert_max_num_queries(14) as queries:
            response = client.get(url(cast, "run", run.run_uuid, tab=tab))
        assert response.status_code == 200
        assert not any("tracking_metricpoint" in q["sql"] for q in queries.captured_queries)
    overview = text(client.get(url(cast, "run", run.run_uuid)))
    assert "param_499" in overview and "metric_199" in overview
    assert 'data-filter="params-table"' in overview and 'data-filter="metrics-table"' in overview
    children = text(client.get(url(cast, "run", run.run_uuid, tab="children")))
    assert children.count('class="status') == CHILDREN_SHOWN
    assert f"The newest {CHILDREN_SHOWN} are shown." in children
    assert ">child_metric</th>" in children
    (compare,) = re.findall(r'href="([^"]*\?runs=[^"]*)">Compare in charts', children)
    assert compare.startswith(reverse("compare", kwargs=ws_kw(cast)))
    assert len(compare.split("=", 1)[1].split(",")) == MAX_RUNS


def add_children(parent: Run, count: int) -> list[Run]:
    """Child runs made directly in the database, each with one metric."""
    runs = Run.objects.bulk_create(
        [
            Run(
                run_uuid=uuid.uuid4().hex,
                workspace_id=parent.workspace_id,
                experiment_id=parent.experiment_id,
                name=f"child-{i:03}",
                status="FINISHED",
                start_time=now_ms() + i,
                end_time=now_ms() + i + 1000,
                artifact_uri=parent.artifact_uri,
            )
            for i in range(count)
        ]
    )
    RunTag.objects.bulk_create(
        [RunTag(run=r, key="mlflow.parentRunId", value=parent.run_uuid) for r in runs]
    )
    LatestMetric.objects.bulk_create(
        [
            LatestMetric(run=r, key="child_metric", value=i, timestamp=1, step=0)
            for i, r in enumerate(runs)
        ]
    )
    return runs
