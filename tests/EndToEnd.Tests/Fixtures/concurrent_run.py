"""Calls RunTask N times at once (one boto3 client per thread) and prints the task ARNs placed and
the failure reasons. With CLIENT_TOKEN every call carries that clientToken and asks for COUNT tasks
(default 1). usage: concurrent_run.py CLUSTER TASK_DEFINITION N [CLIENT_TOKEN [COUNT]]"""
import json, os, sys, threading
import boto3
from botocore.config import Config

cluster, definition, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra = {"clientToken": sys.argv[4]} if len(sys.argv) > 4 else {}
extra["count"] = int(sys.argv[5]) if len(sys.argv) > 5 else 1
barrier = threading.Barrier(count)
lock = threading.Lock()
tasks, failures, errors = [], [], []

def run():
    client = boto3.client("ecs", endpoint_url=os.environ["ECS_ENDPOINT"], config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    barrier.wait()
    try:
        response = client.run_task(cluster=cluster, taskDefinition=definition, **extra)
        with lock:
            tasks.extend(t["taskArn"] for t in response["tasks"])
            failures.extend(f["reason"] for f in response["failures"])
    except Exception as e:
        with lock:
            errors.append(repr(e))

threads = [threading.Thread(target=run) for _ in range(count)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"tasks": tasks, "failures": failures, "errors": errors}))
