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

ACTIONS = ["DescribeClusters", "ListClusters", "DescribeTaskDefinition", "ListTaskDefinitions",
           "DescribeServices", "ListServices", "DescribeTasks", "ListTasks"]

# Services and tasks live in one cluster: 10 services (desired count 0, so nothing reconciles) and
# 50 tasks on one registered container instance that no worker serves (they stay where RunTask
# left them; the benchmark reads them, it does not run them).
WORK_CLUSTER = CLUSTERS[0]
SERVICES = [f"svc-{i:02d}" for i in range(10)]
TASK_FAMILY = "bench-task"
TASKS = 50


def request_bodies(action: str, url: str) -> list:
    """The JSON bodies replayed round-robin for one action (task ARNs differ per server, hence the url)."""
    if action == "DescribeServices":
        return [{"cluster": WORK_CLUSTER, "services": [name]} for name in SERVICES] + \
               [{"cluster": WORK_CLUSTER, "services": SERVICES}]
    if action == "ListServices":
        return [{"cluster": WORK_CLUSTER}]
    if action == "DescribeTasks":
        arns = sorted(client(url).list_tasks(cluster=WORK_CLUSTER, maxResults=100)["taskArns"])
        # One task at a time, as a waiter asks, and ten at a time.
        return [{"cluster": WORK_CLUSTER, "tasks": [arn]} for arn in arns[:10]] + \
               [{"cluster": WORK_CLUSTER, "tasks": arns[i:i + 10]} for i in range(0, len(arns), 10)]
    if action == "ListTasks":
        return [{"cluster": WORK_CLUSTER}, {"cluster": WORK_CLUSTER, "family": TASK_FAMILY}]
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
    if action == "DescribeServices":
        return (sorted((s["serviceName"], s["desiredCount"]) for s in response.get("services", [])),
                len(response.get("failures", [])))
    if action == "ListServices":
        return len(response.get("serviceArns", [])), "nextToken" in response
    if action == "DescribeTasks":
        return (sorted(t["taskDefinitionArn"].split("/")[-1] for t in response.get("tasks", [])),
                len(response.get("failures", [])))
    if action == "ListTasks":
        return len(response.get("taskArns", [])), "nextToken" in response
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
    seed_services_and_tasks(url)


def seed_services_and_tasks(url: str) -> None:
    ecs = client(url)
    existing = set(arn.split("/")[-1] for arn in ecs.list_services(cluster=WORK_CLUSTER, maxResults=100)["serviceArns"])
    for name in SERVICES:
        if name not in existing:
            ecs.create_service(cluster=WORK_CLUSTER, serviceName=name, taskDefinition=f"{FAMILIES[1]}:{REVISIONS}",
                               desiredCount=0, tags=[{"key": "env", "value": "bench"}])
    if ecs.list_tasks(cluster=WORK_CLUSTER, maxResults=100)["taskArns"]:
        return
    ecs.register_task_definition(family=TASK_FAMILY, containerDefinitions=[
        {"name": "app", "image": "registry.example.com/app:1.0", "cpu": 10, "memory": 32, "essential": True,
         "command": ["sleep", "3600"], "environment": [{"name": "APP_ENV", "value": "bench"}]}])
    ecs.register_container_instance(cluster=WORK_CLUSTER, instanceIdentityDocument=identity_document(url),
                                    totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                                                    {"name": "MEMORY", "type": "INTEGER", "integerValue": 7482}])
    for _ in range(TASKS // 10):
        placed = ecs.run_task(cluster=WORK_CLUSTER, taskDefinition=TASK_FAMILY, count=10, startedBy="bench")
        if placed["failures"]:
            raise RuntimeError(f"seeding tasks on {url}: {placed['failures']}")


def identity_document(url: str) -> str:
    """moto registers a container instance only for an EC2 instance it knows (same endpoint, EC2
    API); ours takes the document as the agent sends it."""
    import json
    try:
        ec2 = boto3.client("ec2", endpoint_url=url, region_name=REGION,
                           aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                           config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        instance_id = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    except Exception:  # not an EC2 endpoint
        instance_id = "i-0bench0000000001"
    return json.dumps({"instanceId": instance_id, "region": REGION, "availabilityZone": f"{REGION}a",
                       "instanceType": "m5.xlarge"})
