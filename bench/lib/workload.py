"""The data both servers are seeded with, and the read requests replayed against them.

Seeding goes through boto3 like any user's tooling would; the request sets are the same JSON
bodies for every server.
"""

import boto3
from botocore.config import Config

from signing import ACCESS_KEY, REGION, SECRET_KEY

CLUSTERS = [f"bench-{i:02d}" for i in range(1, 21)]
FAMILIES = ["bench-api", "bench-web", "bench-worker", "bench-billing", "bench-search"]
REVISIONS = 10

ACTIONS = ["DescribeClusters", "ListClusters", "DescribeTaskDefinition", "ListTaskDefinitions"]


def request_bodies(action: str) -> list:
    """The JSON bodies replayed round-robin for one action."""
    if action == "DescribeClusters":
        return [{"clusters": [name]} for name in CLUSTERS]
    if action == "ListClusters":
        return [{}]
    if action == "DescribeTaskDefinition":
        return [{"taskDefinition": f"{family}:{revision}"}
                for revision in range(1, REVISIONS + 1) for family in FAMILIES]
    if action == "ListTaskDefinitions":
        # One family's revisions (the hot, single-partition read) and the whole account.
        return [{"familyPrefix": family} for family in FAMILIES] + [{}]
    raise ValueError(action)


def summarize(action: str, response: dict):
    """What must be equal between servers for a request to have done the same work."""
    if action == "DescribeClusters":
        return (sorted(c["clusterName"] for c in response.get("clusters", [])),
                len(response.get("failures", [])))
    if action == "ListClusters":
        return len(response.get("clusterArns", [])), "nextToken" in response
    if action == "DescribeTaskDefinition":
        td = response["taskDefinition"]
        return td["family"], td["revision"], len(td["containerDefinitions"])
    if action == "ListTaskDefinitions":
        return len(response.get("taskDefinitionArns", [])), "nextToken" in response
    raise ValueError(action)


def container_definitions(family: str, revision: int) -> list:
    """A realistic pair: an app container with a port, health check and env, and a
    non-essential log router it waits for."""
    return [
        {
            "name": "app",
            "image": f"registry.example.com/{family}:1.{revision}.0",
            "cpu": 256,
            "memory": 512,
            "memoryReservation": 256,
            "essential": True,
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
            "environment": [
                {"name": "APP_ENV", "value": "production"},
                {"name": "APP_REVISION", "value": str(revision)},
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "DB_POOL_SIZE", "value": "20"},
            ],
            "healthCheck": {
                "command": ["CMD-SHELL", "wget -q -O- http://localhost:8080/health || exit 1"],
                "interval": 30,
                "timeout": 5,
                "retries": 3,
                "startPeriod": 10,
            },
            "mountPoints": [{"sourceVolume": "logs", "containerPath": "/var/log/app"}],
            "dependsOn": [{"containerName": "log-router", "condition": "START"}],
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
        },
        {
            "name": "log-router",
            "image": "registry.example.com/log-router:2.32.0",
            "cpu": 64,
            "memory": 128,
            "essential": False,
            "environment": [{"name": "FLB_LOG_LEVEL", "value": "warn"}],
            "mountPoints": [{"sourceVolume": "logs", "containerPath": "/var/log/app",
                             "readOnly": True}],
        },
    ]


def client(url: str):
    return boto3.client(
        "ecs", endpoint_url=url, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def seed(url: str) -> None:
    """Creates the clusters and task definition revisions; idempotent, so a server that was
    already seeded (--ours-url) is left as it is."""
    ecs = client(url)
    for name in CLUSTERS:
        ecs.create_cluster(clusterName=name, tags=[{"key": "env", "value": "bench"}])
    for family in FAMILIES:
        existing = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
        for revision in range(len(existing) + 1, REVISIONS + 1):
            ecs.register_task_definition(
                family=family,
                networkMode="bridge",
                requiresCompatibilities=["EC2"],
                cpu="512",
                memory="1024",
                containerDefinitions=container_definitions(family, revision),
                volumes=[{"name": "logs", "host": {"sourcePath": f"/var/log/{family}"}}],
            )
