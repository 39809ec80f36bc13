"""The Python baseline of baton's benchmarks: the usual alternative for a function like
run-log-writer, a handler that imports boto3, creates a DynamoDB client at start-up and writes
each Step Functions status change to the runs table, run through a minimal Lambda Runtime API
loop (what the managed Python runtime does, without its extras).

Reads AWS_LAMBDA_RUNTIME_API, AWS_ENDPOINT_URL (boto3 honours it) and BATON_RUNS_TABLE.
"""
import json
import os
import urllib.request

import boto3

RUNTIME = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
TABLE = os.environ["BATON_RUNS_TABLE"]
dynamodb = boto3.client("dynamodb")


def handler(event):
    detail = event["detail"]
    stamp = detail.get("stopDate") or detail["startDate"]
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "run#" + detail["stateMachineArn"]},
            "sk": {"S": "%013d#%s#%s" % (stamp, detail["executionArn"], detail["status"])},
            "status": {"S": detail["status"]},
        },
        ConditionExpression="attribute_not_exists(pk)",
    )
    return {"recorded": detail["executionArn"], "status": detail["status"]}


def main():
    while True:
        with urllib.request.urlopen(RUNTIME + "next") as answer:
            request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(answer.read())
        try:
            body, outcome = json.dumps(handler(event)).encode(), "/response"
        except Exception as e:  # the managed runtime reports any error the same way
            body = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode()
            outcome = "/error"
        urllib.request.urlopen(urllib.request.Request(RUNTIME + request_id + outcome, data=body, method="POST")).read()


if __name__ == "__main__":
    main()
