"""Container status as operators collect it: `kubectl describe pod`, `kubectl get pod -o json` and
`docker inspect` → the `containers` frame (`schema.CONTAINERS`), one row per container state.

They tell what a worker's own log cannot: that the runtime killed it for memory (`OOMKilled`, exit
137), that it keeps dying (`CrashLoopBackOff`, restart counts), or that the kubelet evicted its pod.
The parsers are `kubectl_describe` (text) and `container_json` (both JSON shapes, read even when a
paste cut them short); this module registers them by the kinds `analyzer.sniff` gives.
"""

from __future__ import annotations

from analyzer import sources
from analyzer.sources import container_json, kubectl_describe

PARSERS: dict[str, sources.Parser] = {
    "kubectl_describe": sources.from_lines(kubectl_describe.parse_lines, "containers"),
    "kubectl_json": sources.from_lines(container_json.parse_pods, "containers"),
    "docker_inspect": sources.from_lines(container_json.parse_docker, "containers"),
}

for _kind, _parser in PARSERS.items():
    sources.register(_kind, _parser)
