"""GenAI evaluation datasets (`api/3.0/mlflow/datasets/...`) through the real mlflow
client (`mlflow.genai.datasets`, MlflowClient and the EvaluationDataset entity) against
a live server, per workspace; and their purge with the workspace."""

from __future__ import annotations

import json

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.genai import datasets as genai_datasets

from portal.models import AuditEntry
from tracking.models import (
    EvaluationDataset,
    EvaluationDatasetExperiment,
    EvaluationDatasetRecord,
    EvaluationDatasetTag,
)
from tracking.services import purge
from tracking.services.evaluation_datasets import (
    evaluation_dataset_create,
    evaluation_dataset_records_upsert,
)
from tracking.services.experiments import experiment_create, experiment_delete

pytestmark = pytest.mark.django_db(transaction=True)

QA = [
    {"inputs": {"question": "What is MLflow?"}, "expectations": {"answer": "A platform"}},
    {"inputs": {"question": "What is Django?"}, "expectations": {"answer": "A framework"}},
]


def _api(tracking, who: str, method: str, path: str, uri: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {tracking.tokens[who]}"}
    return requests.request(
        method,
        f"{uri or tracking.uri}/api/3.0/mlflow/datasets/{path}",
        headers=headers,
        timeout=30,
        **kwargs,
    )


def _error_code(excinfo: pytest.ExceptionInfo[MlflowException]) -> str:
    return excinfo.value.error_code


def test_create_get_by_id_and_name_then_delete(tracking, cast):
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("eval-exp")
    dataset = genai_datasets.create_dataset(
        name="qa-set", experiment_id=exp_id, tags={"team": "search", "version": 1}
    )
    assert dataset.dataset_id.startswith("d-")
    assert dataset.name == "qa-set"
    assert dataset.tags["team"] == "search"
    assert dataset.tags["version"] == "1"  # tag values are text, as mlflow stores them
    # The author is the authenticated user, whatever mlflow.user the client sent as a tag.
    assert dataset.created_by == dataset.last_updated_by == cast.owner.username
    assert dataset.experiment_ids == [exp_id]
    assert len(dataset.digest) == 8
    assert dataset.schema is None and dataset.profile is None

    by_id = genai_datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert (by_id.name, by_id.digest, by_id.tags) == ("qa-set", dataset.digest, dataset.tags)
    assert by_id.experiment_ids == [exp_id]
    assert genai_datasets.get_dataset(name="qa-set").dataset_id == dataset.dataset_id

    genai_datasets.delete_dataset(dataset_id=dataset.dataset_id)
    with pytest.raises(MlflowException, match="not found") as excinfo:
        genai_datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    assert not EvaluationDataset.objects.exists()
    assert list(
        AuditEntry.objects.filter(target_type="evaluation dataset")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["create", "delete"]
    # Deleting again is no error, as with mlflow server.
    client.delete_dataset(dataset.dataset_id)


def test_merge_records_upserts_by_inputs(tracking, cast):
    dataset = genai_datasets.create_dataset(name="upserts", experiment_id=[])
    dataset.merge_records([dict(r, tags={"difficulty": "easy"}) for r in QA])
    first = genai_datasets.get_dataset(dataset_id=dataset.dataset_id)
    df = first.to_df()
    assert len(df) == 2
    assert json.loads(first.profile) == {"num_records": 2}
    assert json.loads(first.schema)["inputs"] == {"question": "string"}

    # Same inputs again: merged into the record (expectations and tags), not added.
    dataset.merge_records(
        [
            {
                "inputs": {"question": "What is MLflow?"},
                "expectations": {"answer": "An ML platform", "score": 0.9},
                "tags": {"category": "ml"},
                "outputs": "a string output",
            },
            {"inputs": {"question": "What is Celery?"}},
        ]
    )
    second = genai_datasets.get_dataset(dataset_id=dataset.dataset_id)
    assert second.digest != first.digest
    assert json.loads(second.profile) == {"num_records": 3}
    schema = json.loads(second.schema)
    assert schema["expectations"] == {"answer": "string", "score": "float"}
    assert schema["outputs"] == "string"
    # The genai wrapper hides the records; the entity has them.
    entity = mlflow.MlflowClient().get_dataset(dataset.dataset_id)
    records = {r.inputs["question"]: r for r in entity.records}
    assert set(records) == {"What is MLflow?", "What is Django?", "What is Celery?"}
    merged = records["What is MLflow?"]
    assert merged.expectations == {"answer": "An ML platform", "score": 0.9}
    assert merged.tags["difficulty"] == "easy" and merged.tags["category"] == "ml"
    assert merged.outputs == "a string output"
    assert merged.created_by == merged.last_updated_by == cast.owner.username
    # The client infers a source: HUMAN with expectations, CODE without.
    assert records["What is Celery?"].source_type == "CODE"
    assert records["What is Django?"].source_type == "HUMAN"
    assert records["What is Celery?"].dataset_record_id.startswith("dr-")

    counts = mlflow.MlflowClient()._tracking_client.store.upsert_dataset_records(
        dataset.dataset_id, [{"inputs": {"question": "What is Celery?"}}, {"inputs": {"q": 1}}]
    )
    assert counts == {"inserted": 1, "updated": 1}


def test_records_are_paged_and_deleted(tracking):
    client = mlflow.MlflowClient()
    dataset = client.create_dataset(name="paged")
    dataset.merge_records([{"inputs": {"n": n}} for n in range(5)])
    store = client._tracking_client.store
    seen, token, pages = [], None, 0
    while True:
        page, token = store._load_dataset_records(
            dataset.dataset_id, max_results=2, page_token=token
        )
        seen += page
        pages += 1
        if not token:
            break
    assert pages == 3
    assert sorted(r.inputs["n"] for r in seen) == [0, 1, 2, 3, 4]
    assert len({r.dataset_record_id for r in seen}) == 5

    fetched = client.get_dataset(dataset.dataset_id)
    ids = [r.dataset_record_id for r in fetched.records[:2]]
    assert fetched.delete_records([*ids, "dr-nosuchrecord"]) == 2
    left = client.get_dataset(dataset.dataset_id)
    assert len(left.records) == 3
    assert json.loads(left.profile) == {"num_records": 3}

    bad = _api(tracking, "owner", "GET", f"{dataset.dataset_id}/records?page_token=%21%21")
    assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_tags_set_merge_and_delete(tracking):
    dataset = genai_datasets.create_dataset(name="tagged", tags={"a": "1", "b": "2"})
    genai_datasets.set_dataset_tags(dataset_id=dataset.dataset_id, tags={"b": "3", "c": "4"})
    assert genai_datasets.get_dataset(dataset_id=dataset.dataset_id).tags == {
        "a": "1",
        "b": "3",
        "c": "4",
        "mlflow.user": dataset.tags["mlflow.user"],
    }
    genai_datasets.delete_dataset_tag(dataset_id=dataset.dataset_id, key="a")
    genai_datasets.delete_dataset_tag(dataset_id=dataset.dataset_id, key="never-set")
    tags = genai_datasets.get_dataset(dataset_id=dataset.dataset_id).tags
    assert "a" not in tags and tags["b"] == "3"

    with pytest.raises(MlflowException, match="Could not find evaluation dataset") as excinfo:
        genai_datasets.set_dataset_tags(dataset_id="d-nosuchdataset", tags={"x": "y"})
    assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"


def test_experiment_links(tracking, cast):
    client = mlflow.MlflowClient()
    first = client.create_experiment("links-1")
    second = client.create_experiment("links-2")
    dataset = genai_datasets.create_dataset(name="linked", experiment_id=first)
    added = genai_datasets.add_dataset_to_experiments(dataset.dataset_id, [second, first])
    assert sorted(added.experiment_ids, key=int) == sorted([first, second], key=int)
    assert sorted(client.get_dataset(dataset.dataset_id).experiment_ids, key=int) == sorted(
        [first, second], key=int
    )
    store = client._tracking_client.store
    assert sorted(store.get_dataset_experiment_ids(dataset.dataset_id)) == sorted([first, second])

    removed = genai_datasets.remove_dataset_from_experiments(dataset.dataset_id, [first, "999"])
    assert removed.experiment_ids == [second]
    assert [d.dataset_id for d in client.search_datasets(experiment_ids=[second])] == [
        dataset.dataset_id
    ]
    assert client.search_datasets(experiment_ids=[first]) == []

    # The Default experiment is "0" going in and coming out, as mlflow numbers it.
    with_default = genai_datasets.add_dataset_to_experiments(dataset.dataset_id, ["0"])
    assert with_default.experiment_ids == ["0", second]
    assert store.get_dataset_experiment_ids(dataset.dataset_id) == ["0", second]
    assert [d.dataset_id for d in client.search_datasets(experiment_ids=["0"])] == [
        dataset.dataset_id
    ]

    # An experiment that is not in this workspace cannot be linked.
    foreign = experiment_create(workspace=cast.other_workspace, name="foreign", actor=None)
    for ids in (["987654"], [str(foreign.pk)]):
        with pytest.raises(MlflowException, match="No Experiment with id") as excinfo:
            genai_datasets.add_dataset_to_experiments(dataset.dataset_id, ids)
        assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
        with pytest.raises(MlflowException, match="No Experiment with id"):
            genai_datasets.create_dataset(name="bad-link", experiment_id=ids)
    assert not EvaluationDataset.objects.filter(name="bad-link").exists()
    assert EvaluationDatasetExperiment.objects.filter(experiment=foreign).count() == 0


def test_search_filters_orders_and_pages(tracking):
    client = mlflow.MlflowClient()
    for name, team in (("alpha", "nlp"), ("beta", "vision"), ("gamma", "nlp")):
        client.create_dataset(name=name, tags={"team": team})

    def names(**kwargs) -> list[str]:
        return [d.name for d in client.search_datasets(**kwargs)]

    assert names() == ["gamma", "beta", "alpha"]  # newest first
    assert names(order_by=["name ASC"]) == ["alpha", "beta", "gamma"]
    assert names(filter_string="tags.team = 'nlp'", order_by=["name"]) == ["alpha", "gamma"]
    assert names(filter_string="name LIKE 'a%'") == ["alpha"]
    assert names(filter_string="name IN ('alpha', 'gamma')", order_by=["name DESC"]) == [
        "gamma",
        "alpha",
    ]
    assert names(filter_string="created_time > 0 AND tags.team != 'nlp'") == ["beta"]
    assert names(filter_string="created_by = 'olivia'", order_by=["name"]) == [
        "alpha",
        "beta",
        "gamma",
    ]

    page = client.search_datasets(max_results=2, order_by=["name ASC"])
    assert [d.name for d in page] == ["alpha", "beta"] and page.token
    rest = client.search_datasets(max_results=2, order_by=["name ASC"], page_token=page.token)
    assert [d.name for d in rest] == ["gamma"] and not rest.token
    # The fluent search adds a "created in the last 7 days" filter and pages for itself.
    assert sorted(d.name for d in genai_datasets.search_datasets()) == ["alpha", "beta", "gamma"]

    for bad in ("name > 'a'", "nosuch = 1", "created_time LIKE '1%'"):
        with pytest.raises(MlflowException) as excinfo:
            client.search_datasets(filter_string=bad)
        assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE", bad
    with pytest.raises(MlflowException) as excinfo:
        client.search_datasets(order_by=["digest ASC"])
    assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    got = _api(tracking, "reader", "GET", "search?max_results=1&order_by=name")
    assert got.status_code == 200
    assert [d["name"] for d in got.json()["datasets"]] == ["alpha"]


def test_another_workspace_sees_none_of_it(tracking, cast, monkeypatch):
    mine = genai_datasets.create_dataset(name="mine", tags={"k": "v"})
    mine.merge_records(QA)
    other_uri = tracking.uri_for(cast.other_workspace)
    theirs = tracking.client("outsider", monkeypatch, uri=other_uri)
    assert theirs.search_datasets() == []
    for call in (
        lambda: theirs.get_dataset(mine.dataset_id),
        lambda: theirs.set_dataset_tags(mine.dataset_id, {"k": "changed"}),
        lambda: theirs._tracking_client.store.upsert_dataset_records(mine.dataset_id, QA),
        lambda: theirs._tracking_client.store._load_dataset_records(mine.dataset_id, 10),
        lambda: theirs.add_dataset_to_experiments(mine.dataset_id, ["0"]),
    ):
        with pytest.raises(MlflowException) as excinfo:
            call()
        assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    assert theirs._tracking_client.store.get_dataset_experiment_ids(mine.dataset_id) == []
    # Deletes there are no error, and touch nothing here.
    theirs.delete_dataset_tag(mine.dataset_id, "k")
    theirs.delete_dataset(mine.dataset_id)
    kept = EvaluationDataset.objects.get(dataset_id=mine.dataset_id)
    assert kept.tags.get(key="k").value == "v"
    assert kept.records.count() == 2


def test_a_reader_reads_and_cannot_write(tracking, monkeypatch):
    dataset = genai_datasets.create_dataset(name="read-only")
    dataset.merge_records(QA)
    reader = tracking.client("reader", monkeypatch)
    assert reader.get_dataset(dataset.dataset_id).name == "read-only"
    assert len(reader.get_dataset(dataset.dataset_id).records) == 2
    assert [d.name for d in reader.search_datasets()] == ["read-only"]
    for call in (
        lambda: reader.create_dataset(name="nope"),
        lambda: reader.delete_dataset(dataset.dataset_id),
        lambda: reader.set_dataset_tags(dataset.dataset_id, {"k": "v"}),
        lambda: reader.delete_dataset_tag(dataset.dataset_id, "mlflow.user"),
        lambda: reader._tracking_client.store.upsert_dataset_records(dataset.dataset_id, QA),
        lambda: reader.add_dataset_to_experiments(dataset.dataset_id, []),
    ):
        with pytest.raises(MlflowException) as excinfo:
            call()
        assert _error_code(excinfo) == "PERMISSION_DENIED"
    assert EvaluationDataset.objects.count() == 1
    assert EvaluationDatasetTag.objects.filter(key="k").count() == 0


def test_protocol_edges_the_client_does_not_reach(tracking):
    missing = _api(tracking, "owner", "POST", "create", json={})
    assert (missing.status_code, missing.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "name" in missing.json()["message"]
    for body in ({"name": "x", "tags": "not json"}, {"name": "x", "tags": "[1]"}):
        got = _api(tracking, "owner", "POST", "create", json=body)
        assert got.status_code == 400, body
    made = _api(tracking, "owner", "POST", "create", json={"name": "edges"}).json()["dataset"]
    assert made["tags"] == "{}" and "schema" not in made
    dataset_id = made["dataset_id"]
    for records in ("{}", "[1]", '[{"inputs": "text"}]', '[{"inputs": {}, "source": "x"}]'):
        got = _api(tracking, "owner", "POST", f"{dataset_id}/records", json={"records": records})
        assert got.status_code == 400, records
        assert got.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    got = _api(tracking, "owner", "POST", f"{dataset_id}/records", json={})
    assert got.status_code == 400
    assert not EvaluationDatasetRecord.objects.exists()
    long_name = _api(tracking, "owner", "POST", "create", json={"name": "n" * 256})
    assert long_name.status_code == 400


def test_workspace_purge_takes_its_datasets_only(cast, settings, tmp_path):
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    experiment = experiment_create(workspace=cast.workspace, name="exp", actor=None)
    mine = evaluation_dataset_create(
        workspace=cast.workspace, name="mine", experiments=[experiment], tags={"k": "v"}, actor=None
    )
    evaluation_dataset_records_upsert(
        workspace=cast.workspace, dataset_id=mine.dataset_id, records=QA, actor=None
    )
    theirs = evaluation_dataset_create(
        workspace=cast.other_workspace, name="theirs", experiments=[], actor=None
    )
    evaluation_dataset_records_upsert(
        workspace=cast.other_workspace, dataset_id=theirs.dataset_id, records=QA, actor=None
    )
    purge.workspace_tracking_purge(workspace=cast.workspace)
    assert list(EvaluationDataset.objects.values_list("name", flat=True)) == ["theirs"]
    assert EvaluationDatasetRecord.objects.filter(dataset=theirs).count() == 2
    assert EvaluationDatasetRecord.objects.count() == 2
    assert not EvaluationDatasetTag.objects.exists()
    assert not EvaluationDatasetExperiment.objects.exists()


def test_purging_an_experiment_unlinks_its_datasets(cast, settings, tmp_path):
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    experiment = experiment_create(workspace=cast.workspace, name="exp", actor=None)
    dataset = evaluation_dataset_create(
        workspace=cast.workspace, name="kept", experiments=[experiment], actor=None
    )
    experiment_delete(experiment=experiment, actor=None)
    purge.experiment_purge(actor=None, experiment=experiment)
    assert EvaluationDataset.objects.filter(pk=dataset.pk).exists()
    assert not EvaluationDatasetExperiment.objects.exists()
