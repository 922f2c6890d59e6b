"""The pieces of the `kubernetes` runtime (deployments.runtimes.kubernetes):

- `target`: a Kubernetes compute target's settings and kubeconfig (checked when attached,
  turned into a client when used);
- `manifests`: the objects a web service is made of, rendered and validated offline
  against the Kubernetes schemas (`kubernetes-validate`);
- `cluster`: applying them, watching a rollout, reading state, pod logs, deleting.
"""
