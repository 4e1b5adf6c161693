"""Follows a running task's log stream live with boto3, the two ways SDK users do, until both saw `count` lines.

    logs_follow.py GROUP STREAM COUNT TIMEOUT_SECONDS

- get_log_events from the head, then with nextForwardToken (the end of the stream answers with the token it
  was given), polled every 0.5 s;
- filter_log_events as `aws logs tail --follow` does: every poll asks from an inclusive start time (the
  newest timestamp seen) and drops repeats by eventId.

Prints JSON: the messages each follower saw, in order, and what it saw twice. Exits 1 on timeout.
"""
import json
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError

group, stream, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
logs = boto3.client("logs", endpoint_url=os.environ["ECS_ENDPOINT"])
deadline = time.monotonic() + timeout

get_seen, get_token, get_repeats = [], None, []
tail_seen, tail_ids, tail_start, tail_repeats = [], set(), 0, []

while time.monotonic() < deadline and (len(get_seen) < count or len(tail_seen) < count):
    try:
        params = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if get_token:
            params["nextToken"] = get_token
        page = logs.get_log_events(**params)
        for e in page["events"]:
            (get_repeats if e["message"] in get_seen else get_seen).append(e["message"])
        get_token = page["nextForwardToken"]

        kwargs = {"logGroupName": group, "logStreamNames": [stream], "startTime": tail_start}
        while True:
            answer = logs.filter_log_events(**kwargs)
            for e in answer["events"]:
                if e["eventId"] in tail_ids:
                    continue
                tail_ids.add(e["eventId"])
                (tail_repeats if e["message"] in tail_seen else tail_seen).append(e["message"])
                tail_start = max(tail_start, e["timestamp"])
            if "nextToken" not in answer:
                break
            kwargs["nextToken"] = answer["nextToken"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    time.sleep(0.5)

print(json.dumps({"get": get_seen, "getRepeats": get_repeats,
                  "tail": tail_seen, "tailRepeats": tail_repeats}))
sys.exit(0 if len(get_seen) >= count and len(tail_seen) >= count else 1)
