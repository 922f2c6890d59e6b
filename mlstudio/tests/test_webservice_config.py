"""Deployment configurations of the SDK: the reference's signatures and defaults, checks
made before anything is sent, and the body they send."""

from __future__ import annotations

import pytest

from mlstudio.exceptions import UserErrorException, WebserviceException, WebserviceNotFound
from mlstudio.webservice import (
    AciServiceDeploymentConfiguration,
    AciWebservice,
    AksServiceDeploymentConfiguration,
    AksWebservice,
    LocalWebservice,
    LocalWebserviceDeploymentConfiguration,
    Webservice,
)


def test_aci_defaults_and_body():
    config = AciWebservice.deploy_configuration(
        tags={"method": "sklearn"}, description="Diabetes model"
    )
    assert isinstance(config, AciServiceDeploymentConfiguration)
    assert config.to_body() == {
        "compute_type": "aci",
        "config": {"cpu_cores": 0.1, "memory_gb": 0.5},
        "tags": {"method": "sklearn"},
        "description": "Diabetes model",
        "auth_enabled": True,
    }
    # The reference's other arguments are accepted and change nothing here.
    same = AciWebservice.deploy_configuration(
        tags={"method": "sklearn"},
        description="Diabetes model",
        location="westeurope",
        dns_name_label="x",
        ssl_enabled=False,
    )
    assert same.to_body() == config.to_body()


def test_aci_auth_can_be_turned_off():
    body = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, auth_enabled=False)
    assert body.to_body()["auth_enabled"] is False
    assert body.to_body()["config"] == {"cpu_cores": 1, "memory_gb": 1}


@pytest.mark.parametrize(
    "kwargs",
    [{"cpu_cores": 0}, {"cpu_cores": -1}, {"memory_gb": 0}, {"cpu_cores": True}, {"tags": "x"}],
)
def test_aci_bad_values_are_refused_before_sending(kwargs):
    with pytest.raises(WebserviceException, match="Invalid configuration"):
        AciWebservice.deploy_configuration(**kwargs)


def test_aks_configuration():
    config = AksWebservice.deploy_configuration(
        autoscale_enabled=True,
        autoscale_min_replicas=1,
        autoscale_max_replicas=4,
        cpu_cores=0.5,
        memory_gb=1,
        tags={"tier": "prod"},
    )
    assert isinstance(config, AksServiceDeploymentConfiguration)
    assert config.to_body()["compute_type"] == "kubernetes"
    assert config.config == {
        "autoscale_enabled": True,
        "autoscale_min_replicas": 1,
        "autoscale_max_replicas": 4,
        "cpu_cores": 0.5,
        "memory_gb": 1,
    }


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"autoscale_min_replicas": 5, "autoscale_max_replicas": 2}, "cannot be greater"),
        ({"autoscale_enabled": True, "num_replicas": 3}, "num_replicas"),
        ({"autoscale_target_utilization": 101}, "at most 100"),
        ({"num_replicas": 0}, "num_replicas"),
        ({"autoscale_max_replicas": 1.5}, "integer"),
    ],
)
def test_aks_contradictions_are_refused(kwargs, words):
    with pytest.raises(WebserviceException, match=words):
        AksWebservice.deploy_configuration(**kwargs)


def test_local_configuration():
    config = LocalWebservice.deploy_configuration(port=8890)
    assert isinstance(config, LocalWebserviceDeploymentConfiguration)
    assert config.to_body() == {
        "compute_type": "local",
        "config": {"port": 8890},
        "auth_enabled": True,
    }
    assert LocalWebservice.deploy_configuration().to_body()["config"] == {}
    with pytest.raises(WebserviceException, match="port"):
        LocalWebservice.deploy_configuration(port=70000)


def test_print_deploy_configuration(capsys):
    AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=2).print_deploy_configuration()
    assert '"cpu_cores": 1' in capsys.readouterr().out


def test_deploy_from_image_checks_its_arguments_before_sending():
    class Nowhere:  # any call to the server would fail loudly
        name = "ws"
        _path = "subscriptions/x/resourceGroups/y/workspaces/ws"

        @property
        def _client(self):
            raise AssertionError("nothing may be sent")

    ws = Nowhere()
    aks = AksWebservice.deploy_configuration()
    with pytest.raises(UserErrorException, match="deployment_target"):
        Webservice.deploy_from_image(ws, "svc-one", "img:1", aks)
    with pytest.raises(UserErrorException, match="AksWebservice only"):
        Webservice.deploy_from_image(
            ws, "svc-one", "img:1", AciWebservice.deploy_configuration(), deployment_target="k8s"
        )
    with pytest.raises(UserErrorException, match="deploy_configuration"):
        Webservice.deploy_from_image(ws, "svc-one", "img:1", {"cpu_cores": 1})


def test_not_found_is_a_webservice_exception():
    # The reference's `except WebserviceException` around Webservice(ws, name) still works.
    assert issubclass(WebserviceNotFound, WebserviceException)
    assert issubclass(WebserviceNotFound, LookupError)
