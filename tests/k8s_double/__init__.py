"""A test double of the Kubernetes API, for testing KubeSpawner code without a cluster.

This is NOT Kubernetes. It is a small tornado server speaking the part of the
core/v1 REST API that KubeSpawner 7 uses (pods, events, services,
persistentvolumeclaims: create, read, delete, list and watch with label and
field selectors), plus a fake kubelet that runs each pod's containers as local
processes in the same event loop (see :mod:`tests.k8s_double.kubelet` for what
it does and does not emulate). Clients find it through a generated kubeconfig.

- :mod:`tests.k8s_double.api`: the object store and the HTTP API;
- :mod:`tests.k8s_double.kubelet`: pods as processes on loopback addresses;
- ``python -m tests.k8s_double --port N --root DIR``: run it standalone; it
  prints the kubeconfig's path once it listens (``KUBECONFIG=<path>``).

Besides the Kubernetes paths it serves ``GET /_double/manifests`` (every body
ever POSTed, as received) and ``POST /_double/compact`` (forget the watch
history, so an older ``resourceVersion`` gets 410 Gone, like an etcd compaction).
"""

from .api import Store, make_app, serve, write_kubeconfig
from .kubelet import Kubelet

__all__ = ["Kubelet", "Store", "make_app", "serve", "write_kubeconfig"]
