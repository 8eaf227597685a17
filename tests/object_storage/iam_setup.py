"""Make the identities of an S3 server that checks credentials; prints them as JSON.

Runs with the S3 server's own interpreter (``.tools/moto/bin/python``), which has boto3;
it must not import dbkeeper or pytest. Usage: ``python iam_setup.py ENDPOINT``. Creates
an ``admin`` user allowed everything and a ``reader`` allowed only to list and read,
then turns authentication on for every later request (moto's ``reset-auth``).
"""

from __future__ import annotations

import json
import sys
import urllib.request

import boto3  # type: ignore[import-not-found]  # the server's own interpreter has it

READ_ONLY = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]


def main(endpoint: str) -> None:
    anyone = {
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
        "region_name": "us-east-1",
        "endpoint_url": endpoint,
    }
    iam = boto3.client("iam", **anyone)
    keys = {}
    for user, actions in (("admin", ["s3:*", "sts:*"]), ("reader", READ_ONLY)):
        iam.create_user(UserName=user)
        document = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="access", PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
    print(json.dumps(keys))


if __name__ == "__main__":
    main(sys.argv[1])
