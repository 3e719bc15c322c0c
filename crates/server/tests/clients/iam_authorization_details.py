"""IAM through boto3: GetAccountAuthorizationDetails followed page by page with the paginator
(pages of one entity), checked against what e2e_iam_terraform.rs created: a user in a group
with an attached policy, a role with an inline and an attached policy in an instance profile,
and the managed policy with both its versions. Policy documents arrive URL-encoded and botocore
decodes them into dicts. Endpoint and credentials come from the environment (CITADEL_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Prints OK when every check passed."""
import os

import boto3
from botocore.exceptions import ClientError

iam = boto3.client("iam", endpoint_url=os.environ["CITADEL_URL"], region_name="us-east-1")

pages = list(
    iam.get_paginator("get_account_authorization_details").paginate(PaginationConfig={"PageSize": 1})
)
# One entity per page: user, group, role, policy.
assert len(pages) == 4, [len(p.get("UserDetailList", [])) for p in pages]
assert all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]
full = iam.get_paginator("get_account_authorization_details").paginate(
    PaginationConfig={"PageSize": 1}
).build_full_result()

users = {u["UserName"]: u for u in full["UserDetailList"]}
assert set(users) == {"ci"}, users
ci = users["ci"]
assert ci["Path"] == "/deploy/", ci
assert ci["GroupList"] == ["releasers"], ci
assert [a["PolicyName"] for a in ci["AttachedManagedPolicies"]] == ["deploy"], ci
assert ci["UserPolicyList"] == [], ci
assert {"Key": "team", "Value": "platform"} in ci["Tags"], ci

groups = {g["GroupName"]: g for g in full["GroupDetailList"]}
assert set(groups) == {"releasers"}, groups
assert groups["releasers"]["GroupPolicyList"] == []

roles = {r["RoleName"]: r for r in full["RoleDetailList"]}
assert set(roles) == {"app"}, roles
app = roles["app"]
trust = app["AssumeRolePolicyDocument"]
assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}, trust
[inline] = app["RolePolicyList"]
assert inline["PolicyName"] == "read-params"
assert inline["PolicyDocument"]["Statement"][0]["Action"] == "ssm:GetParameter", inline
assert [a["PolicyName"] for a in app["AttachedManagedPolicies"]] == ["deploy"]
[profile] = app["InstanceProfileList"]
assert profile["InstanceProfileName"] == "app-profile"
assert profile["Arn"] == "arn:aws:iam::000000000000:instance-profile/app-profile"
assert profile["InstanceProfileId"].startswith("AIPA")
assert [r["RoleName"] for r in profile["Roles"]] == ["app"]

[policy] = full["Policies"]
assert policy["PolicyName"] == "deploy" and policy["AttachmentCount"] == 2, policy
assert policy["DefaultVersionId"] == "v2"
versions = {v["VersionId"]: v for v in policy["PolicyVersionList"]}
assert set(versions) == {"v1", "v2"}
assert versions["v2"]["IsDefaultVersion"] and not versions["v1"]["IsDefaultVersion"]
assert versions["v2"]["Document"]["Statement"][0]["Action"] == ["kms:Encrypt", "kms:Decrypt"]

# Filters select kinds; Citadel has no AWS managed policies.
only_roles = iam.get_account_authorization_details(Filter=["Role"])
assert [r["RoleName"] for r in only_roles["RoleDetailList"]] == ["app"]
assert only_roles["UserDetailList"] == [] and only_roles["Policies"] == []
aws_managed = iam.get_account_authorization_details(Filter=["AWSManagedPolicy"])
assert aws_managed["Policies"] == []
try:
    iam.get_account_authorization_details(Filter=["Nope"])
    raise AssertionError("an unknown filter should fail")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationError", e.response

# The same answers through the other new listings.
entities = iam.list_entities_for_policy(PolicyArn=policy["Arn"])
assert [u["UserName"] for u in entities["PolicyUsers"]] == ["ci"]
assert [r["RoleName"] for r in entities["PolicyRoles"]] == ["app"]
assert entities["PolicyGroups"] == []
summary = iam.get_account_summary()["SummaryMap"]
assert (summary["Users"], summary["Groups"], summary["Roles"]) == (1, 1, 1), summary
assert (summary["Policies"], summary["InstanceProfiles"]) == (1, 1), summary
assert summary["InstanceProfilesQuota"] == 1000 and summary["AccountAccessKeysPresent"] == 1

print("OK")
