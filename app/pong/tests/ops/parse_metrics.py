"""Parses a Prometheus text exposition (stdin) with the reference parser of the Prometheus
Python client and prints it as JSON: {family: {"type": ..., "samples": [[name, labels, value]]}}.
The end-to-end test of `pong server`'s /metrics reads what this prints: the server's output
is checked by a parser it does not share any code with."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
json.dump(families, sys.stdout)
