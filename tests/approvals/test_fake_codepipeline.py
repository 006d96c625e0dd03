"""The CodePipeline stand-in checks requests against botocore's model, as AWS does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fakes.codepipeline_api import FakeCodePipeline


def raw(url: str, operation: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - the local stand-in
        url, data=json.dumps(body).encode(), method="POST",
        headers={"X-Amz-Target": f"CodePipeline_20150709.{operation}",
                 "Content-Type": "application/x-amz-json-1.1", "Authorization": "AWS4 x"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - local stand-in
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_shapes_are_validation_errors(pipelines: FakeCodePipeline) -> None:
    approval = pipelines.add_approval("p", "s", "a")
    result = {"summary": "x" * 513, "status": "Maybe"}
    code, body = raw(pipelines.url, "PutApprovalResult", {
        "pipelineName": "p", "stageName": "s", "actionName": "a", "token": "not-a-uuid",
        "result": result,
    })  # fmt: skip
    assert code == 400 and body["__type"] == "ValidationException"
    for problem in ("summary: length 513", "'Maybe' is not one of", "token: 'not-a-uuid'"):
        assert problem in body["message"]
    assert approval.status == "InProgress"
    code, body = raw(pipelines.url, "GetPipelineState", {})
    assert (code, body["__type"]) == (400, "ValidationException")


def test_documented_errors_reach_boto3(pipelines: FakeCodePipeline) -> None:
    approval = pipelines.add_approval("p", "s", "a")
    client = boto3.client("codepipeline", region_name="us-east-1")
    result = {"summary": "ok", "status": "Approved"}
    args = {"pipelineName": "p", "stageName": "s", "actionName": "a", "result": result}
    other = "0a1b2c3d-0000-4000-8000-123456789abc"
    with pytest.raises(ClientError, match="InvalidApprovalTokenException"):
        client.put_approval_result(**args, token=other)
    with pytest.raises(ClientError, match="ActionNotFoundException"):
        client.put_approval_result(**{**args, "actionName": "b"}, token=approval.token)
    with pytest.raises(ClientError, match="PipelineNotFoundException"):
        client.get_pipeline_state(name="nope")
    assert "approvedAt" in client.put_approval_result(**args, token=approval.token)
    with pytest.raises(ClientError, match="ApprovalAlreadyCompletedException"):
        client.put_approval_result(**args, token=approval.token)
