"""Boots Django as a pod does, from the environment alone: `check --deploy`, then a GET of
each (path, Host) pair given as JSON in argv[1], through the whole middleware stack.

Run by test_k8s_manifests.py with a manifest's environment; prints {"path Host": status}.
"""

import json
import sys

import django
from django.core.management import call_command
from django.test import Client


def main(requests: list[list[str]]) -> None:
    django.setup()
    call_command("check", deploy=True, fail_level="WARNING")
    statuses = {
        f"{path} {host}": Client().get(path, HTTP_HOST=host).status_code for path, host in requests
    }
    print(json.dumps(statuses))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
