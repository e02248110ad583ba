"""Five EC2 clouds on one moto server, each API call delayed by 200 ms and counted.

Shared by the boot and cycle benchmarks: real boto3 over HTTP to a real moto server; the
delay and the count are botocore ``before-send`` hooks, the way the SDK lets you observe
and shape its calls.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.fixtures_moto import MotoServer, grant_max_count, write_aws_config  # noqa: E402

CLOUDS = ("c1", "c2", "c3", "c4", "c5")
DELAY = 0.2


def clouds_toml(endpoints: dict[str, str], image: str, max_vms: int | None = None) -> str:
    """Five EC2 clouds; ``endpoints`` maps each to its moto server."""
    limit = f"max_vms = {max_vms}\n" if max_vms is not None else ""
    sections = [
        f'[clouds.{c}]\ndriver = "ec2"\nregion = "us-east-1"\nprofile = "csctl-test"\n'
        f'endpoint_url = "{endpoints[c]}"\nmax_attempts = 1\n{limit}\n'
        for c in CLOUDS
    ]
    images = ", ".join(f'{c} = "{image}"' for c in CLOUDS)
    flavors = ", ".join(f'{c} = "m5.2xlarge"' for c in CLOUDS)
    vm_type = f"[vm_types.pandacernvm]\ncpus = 8\nmemory = 18000\ndisk = 160\nimages = {{ {images} }}\n"
    return "".join(sections) + vm_type + f"flavors = {{ {flavors} }}\n"


class Recorder:
    """Counts API calls per cloud and operation, delays each by DELAY seconds, and adds up
    how long each cloud's calls took (from signing to parsed answer)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.seconds: Counter[str] = Counter()
        self._started = threading.local()

    def attach(self, cloud: str, client: Any) -> None:
        def before(event_name: str, **_: Any) -> None:
            self.calls[(cloud, event_name.split(".")[-1])] += 1
            self._started.at = time.perf_counter()
            time.sleep(DELAY)

        def after(**_: Any) -> None:
            self.seconds[cloud] += time.perf_counter() - self._started.at

        client.meta.events.register("before-send.ec2.*", before)
        client.meta.events.register("after-call.ec2.*", after)
        grant_max_count(client)

    def per_cloud(self, operation: str) -> set[int]:
        return {self.calls[(c, operation)] for c in CLOUDS}

    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def start_moto(tmp: Path) -> dict[str, MotoServer]:
    """One moto server per cloud (as five clouds are five services), AWS config pointed
    at the test bed's fake profile."""
    aws = write_aws_config(tmp / "aws")
    os.environ.update(
        {
            "AWS_CONFIG_FILE": str(aws / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return {cloud: MotoServer() for cloud in CLOUDS}


def cpu_seconds(servers: Iterable[MotoServer]) -> float:
    """CPU seconds (user + system) the servers' processes have used so far, from /proc."""
    total = 0
    for server in servers:
        assert server._process is not None  # started: the benchmark's servers are running
        stat = Path(f"/proc/{server._process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after the command name: state is field 3
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15
    return total / os.sysconf("SC_CLK_TCK")


def first_image(endpoint: str) -> str:
    import boto3

    client = boto3.Session(profile_name="csctl-test").client(
        "ec2", region_name="us-east-1", endpoint_url=endpoint
    )
    return sorted(i["ImageId"] for i in client.describe_images(Owners=["amazon"])["Images"])[0]
