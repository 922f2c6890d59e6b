"""What the tracking app registers with portal, and the run page's registered tabs."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal import registry
from tracking.tests.factories import make_experiment, make_run

TAB = '<section id="test-tab">{{ message }} for {{ run.name }}</section>'


@pytest.fixture
def run(cast):
    return make_run(make_experiment(cast.workspace, "exp"), name="tabbed", status="RUNNING")


def _page(cast, run, **query) -> str:
    client = Client()
    client.force_login(cast.reader)
    path = reverse(
        "run",
        kwargs={
            "subscription_id": cast.subscription.id,
            "resource_group": "rg-main",
            "workspace": "ws-main",
            "run_id": run.run_uuid,
        },
    )
    return client.get(path, query).content.decode()


def test_tracking_registers_its_parts_with_portal():
    assert registry.job_kind("experiment").label == "Experiment"
    assert "tracking" in [step.name for step in registry.purge_steps()]
    assert "tracking" in [count.name for count in registry.deletion_counts()]
    assert "recent-experiments" in [panel.name for panel in registry.workspace_panels()]


def test_a_registered_run_tab_is_linked_and_drawn(cast, run, memory_templates):
    (template,) = memory_templates({"test/tab.html": TAB})
    with registry.override():
        registry.register_run_tab(
            registry.RunTab(
                slug="notes",
                label="Notes",
                order=10,
                template=template,
                context=lambda request, run: {"message": "Lab notes"},
                shown=lambda run: run.name == "tabbed",
            )
        )
        overview = _page(cast, run)
        assert '<a href="?tab=notes"' in overview and 'id="test-tab"' not in overview
        page = _page(cast, run, tab="notes")
        assert "Lab notes for tabbed" in page
        assert 'href="?tab=notes" class="active"' in page
        other = make_run(run.experiment, name="plain")
        assert '?tab=notes"' not in _page(cast, other, tab="notes")  # not shown: overview
    assert '?tab=notes"' not in _page(cast, run, tab="notes")


def test_cancelling_a_run_calls_the_run_cancel_hook_in_its_transaction(cast, run):
    from tracking.services.runs import run_cancel

    heard: list[tuple[str, object]] = []
    with registry.override():
        registry.register_hook(
            "run_cancel", lambda *, run, actor: heard.append((run.status, actor))
        )
        run_cancel(run=run, actor=cast.contributor)
        assert heard == [("KILLED", cast.contributor)]
        run_cancel(run=run, actor=cast.contributor)  # already killed: nothing to announce
        assert len(heard) == 1

        def refuse(*, run, actor):
            raise RuntimeError("the executor could not be told")

        registry.register_hook("run_cancel", refuse)
        other = make_run(run.experiment, name="second", status="RUNNING")
        with pytest.raises(RuntimeError):
            run_cancel(run=other, actor=cast.contributor)
        other.refresh_from_db()
        assert other.status == "RUNNING"  # rolled back with the failed hook
