"""Registers N revisions of one family at once from N threads (one boto3 client each) and
prints the revisions ECS returned, sorted. usage: concurrent_register.py FAMILY N"""
import json, os, sys, threading
import boto3
from botocore.config import Config

family, count = sys.argv[1], int(sys.argv[2])
barrier = threading.Barrier(count)
revisions, errors = [], []

def register(i):
    client = boto3.client("ecs", endpoint_url=os.environ["ECS_ENDPOINT"],
                          config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    barrier.wait()
    try:
        response = client.register_task_definition(
            family=family,
            containerDefinitions=[{"name": "c", "image": f"local/busybox:{i}", "memory": 64}])
        revisions.append(response["taskDefinition"]["revision"])
    except Exception as e:  # reported, the test fails on any
        errors.append(repr(e))

threads = [threading.Thread(target=register, args=(i,)) for i in range(count)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"revisions": sorted(revisions), "errors": errors}))
