"""baton's security rules, as cfn-lint custom rules (cfn-lint --append-rules policy/rules).

Each rule has a template under tests/policy/bad/ named after its id that it must reject;
`cargo xtask test` checks every template passes and every bad example is rejected by its rule.
Fn::If branches are each checked: a rule holds only if it holds in every branch.
"""

from cfnlint.rules import CloudFormationLintRule, RuleMatch

READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet")
SCOPING_KEYS = (
    "aws:principalorgid",
    "aws:sourceorgid",
    "aws:resourceorgid",
    "aws:principalaccount",
    "aws:sourceaccount",
    "aws:resourceaccount",
    "aws:sourcearn",
    "events:source",
)


def statements(node, path):
    """Every policy statement (a mapping with Effect) under node, with its path; both If branches."""
    if isinstance(node, dict):
        if "Effect" in node:
            yield node, path
            return
        for key, value in node.items():
            yield from statements(value, path + [key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from statements(value, path + [i])


def as_list(value):
    return value if isinstance(value, list) else [value]


def condition_keys(statement):
    keys = set()
    for _, block in statements_conditions(statement.get("Condition")):
        keys.update(k.lower() for k in block)
    return keys


def statements_conditions(condition):
    if isinstance(condition, dict):
        if "Fn::If" in condition:
            for branch in condition["Fn::If"][1:]:
                yield from statements_conditions(branch)
            return
        for operator, block in condition.items():
            if isinstance(block, dict):
                yield operator, block


def is_write(action):
    if not isinstance(action, str):
        return True
    name = action.split(":", 1)[-1]
    return not name.startswith(READ_PREFIXES) or name == "*"


def literal_text(value):
    """A string, or the template text of an Fn::Sub; None for other intrinsics."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        value = sub if isinstance(sub, str) else sub[0]
    return value if isinstance(value, str) else None


def has_wildcard(resource):
    return "*" in (literal_text(resource) or "")


def allows(node, path):
    """The Allow statements under node, with their paths."""
    for st, st_path in statements(node, path):
        if st.get("Effect") == "Allow":
            yield st, st_path


def identity_allows(cfn):
    """The Allow statements of every identity policy in the template, with their paths."""
    for root, node in iam_policy_roots(cfn):
        yield from allows(node, root)


def unscoped(statement, keys=SCOPING_KEYS):
    """True when the statement carries none of the condition keys that scope it."""
    return not condition_keys(statement) & {k.lower() for k in keys}


def iam_policy_roots(cfn):
    """(path, node) of identity policies: IAM roles and policies, SAM function Policies."""
    for name, res in cfn.get_resources(["AWS::IAM::Role"]).items():
        policies = res.get("Properties", {}).get("Policies", [])
        yield ["Resources", name, "Properties", "Policies"], policies
    for name, res in cfn.get_resources(["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"]).items():
        yield ["Resources", name, "Properties", "PolicyDocument"], res.get("Properties", {}).get("PolicyDocument", {})
    for name, res in cfn.get_resources(["AWS::Serverless::Function"]).items():
        yield ["Resources", name, "Properties", "Policies"], res.get("Properties", {}).get("Policies", [])


class OrganisationConditionedPolicies(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "Bus and topic policies admitting any principal are conditioned on the organisation or account"
    description = "An Allow to Principal * on an event bus, topic or queue policy carries an organisation, account or source condition."
    source_url = "https://github.com/baton/docs/security.md"
    tags = ["baton", "security"]

    def match(self, cfn):
        matches = []
        types = ["AWS::Events::EventBusPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"]
        for name, res in cfn.get_resources(types).items():
            for st, path in allows(res.get("Properties", {}), ["Resources", name, "Properties"]):
                principal = st.get("Principal")
                anyone = principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS")))
                service = isinstance(principal, dict) and "Service" in principal
                if (anyone or service) and unscoped(st):
                    matches.append(RuleMatch(path, f"{name}: a statement admitting {'any principal' if anyone else 'a service'} has no organisation, account or source condition"))
        return matches


class FunctionsHaveDlqAndAlarm(CloudFormationLintRule):
    id = "E9002"
    shortdesc = "Every function has a dead-letter queue and an alarm"
    description = "Every Lambda function names a DLQ, and some CloudWatch alarm watches it by FunctionName."
    source_url = "https://github.com/baton/docs/security.md"
    tags = ["baton", "operations"]

    def match(self, cfn):
        matches = []
        alarmed = set()
        for res in cfn.get_resources(["AWS::CloudWatch::Alarm"]).values():
            for dim in res.get("Properties", {}).get("Dimensions", []) or []:
                if isinstance(dim, dict) and dim.get("Name") == "FunctionName":
                    value = dim.get("Value")
                    if isinstance(value, dict) and "Ref" in value:
                        alarmed.add(value["Ref"])
        for name, res in cfn.get_resources(["AWS::Serverless::Function", "AWS::Lambda::Function"]).items():
            props = res.get("Properties", {})
            if not (props.get("DeadLetterQueue") or props.get("DeadLetterConfig")):
                matches.append(RuleMatch(["Resources", name, "Properties"], f"{name} has no dead-letter queue"))
            if name not in alarmed:
                matches.append(RuleMatch(["Resources", name], f"{name} has no CloudWatch alarm on its FunctionName"))
        return matches


class EncryptedTablesQueuesTopics(CloudFormationLintRule):
    id = "E9003"
    shortdesc = "Tables, queues and topics are encrypted"
    description = "DynamoDB tables enable SSE; SQS queues use SQS-managed SSE or a KMS key; SNS topics name a KMS key."
    source_url = "https://github.com/baton/docs/security.md"
    tags = ["baton", "security"]

    def match(self, cfn):
        matches = []
        for name, res in cfn.get_resources(["AWS::DynamoDB::Table"]).items():
            if res.get("Properties", {}).get("SSESpecification", {}).get("SSEEnabled") is not True:
                matches.append(RuleMatch(["Resources", name, "Properties"], f"table {name} does not enable SSESpecification.SSEEnabled"))
        for name, res in cfn.get_resources(["AWS::SQS::Queue"]).items():
            props = res.get("Properties", {})
            if props.get("SqsManagedSseEnabled") is not True and not props.get("KmsMasterKeyId"):
                matches.append(RuleMatch(["Resources", name, "Properties"], f"queue {name} is not encrypted"))
        for name, res in cfn.get_resources(["AWS::SNS::Topic"]).items():
            if not res.get("Properties", {}).get("KmsMasterKeyId"):
                matches.append(RuleMatch(["Resources", name, "Properties"], f"topic {name} is not encrypted"))
        return matches


class NoWildcardWrites(CloudFormationLintRule):
    id = "E9004"
    shortdesc = "No write action on a wildcard resource without a scoping condition"
    description = "An identity policy never allows a write action on Resource *, and a wildcard ARN for a write action carries an organisation or account condition."
    source_url = "https://github.com/baton/docs/security.md"
    tags = ["baton", "security"]

    def match(self, cfn):
        matches = []
        for st, path in identity_allows(cfn):
            writes = [a for a in as_list(st.get("Action", [])) if is_write(a)]
            if not writes:
                continue
            resources = as_list(st.get("Resource", []))
            if "*" in resources or not resources:
                matches.append(RuleMatch(path, f"write action {writes[0]} on every resource"))
            elif any(has_wildcard(r) for r in resources) and unscoped(st):
                matches.append(RuleMatch(path, f"write action {writes[0]} on a wildcard ARN without an organisation or account condition"))
        return matches


class CrossAccountTopicsUseCustomerKeys(CloudFormationLintRule):
    id = "E9005"
    shortdesc = "Topics and queues other accounts or services write to use a customer-managed key"
    description = "An AWS-managed key (alias/aws/...) admits only its own account: a topic or queue whose policy admits another principal uses a customer-managed key."
    source_url = "https://github.com/baton/docs/security.md"
    tags = ["baton", "security"]

    def match(self, cfn):
        matches = []
        policy_types = {"AWS::SNS::TopicPolicy": ("Topics", "AWS::SNS::Topic"), "AWS::SQS::QueuePolicy": ("Queues", "AWS::SQS::Queue")}
        for ptype, (field, rtype) in policy_types.items():
            targets = cfn.get_resources([rtype])
            for pname, pol in cfn.get_resources([ptype]).items():
                props = pol.get("Properties", {})
                admits_others = any(allows(props.get("PolicyDocument", {}), []))
                if not admits_others:
                    continue
                for ref in as_list(props.get(field, [])):
                    target = ref.get("Ref") if isinstance(ref, dict) else None
                    key = targets.get(target, {}).get("Properties", {}).get("KmsMasterKeyId")
                    if isinstance(key, str) and key.startswith("alias/aws/"):
                        matches.append(RuleMatch(["Resources", target, "Properties", "KmsMasterKeyId"], f"{target} is written to under {pname} but encrypted with the AWS-managed {key}, which other principals cannot use"))
        return matches


class PutEventsOnOrganisationBuses(CloudFormationLintRule):
    id = "E9006"
    shortdesc = "PutEvents on buses of other accounts is limited to the organisation or listed accounts"
    description = "events:PutEvents on a bus ARN with a wildcard account carries aws:ResourceOrgID or aws:ResourceAccount."
    source_url = "https://github.com/baton/docs/security.md"
    tags = ["baton", "security"]

    def match(self, cfn):
        matches = []
        for st, path in identity_allows(cfn):
            actions = [a.lower() for a in as_list(st.get("Action", [])) if isinstance(a, str)]
            if not any(a in ("events:putevents", "events:*", "*") for a in actions):
                continue
            if any(has_wildcard(r) for r in as_list(st.get("Resource", []))) and unscoped(st, ("aws:ResourceOrgID", "aws:ResourceAccount")):
                matches.append(RuleMatch(path, "events:PutEvents on any bus: add an aws:ResourceOrgID or aws:ResourceAccount condition"))
        return matches


class CrossAccountTrustIsNarrowed(CloudFormationLintRule):
    id = "E9007"
    shortdesc = "A role another account may assume trusts named principals of that account only"
    description = "A trust policy naming an account (its root, or *) as principal narrows it with aws:PrincipalArn, sts:ExternalId or an organisation condition, so not every principal of that account can assume the role."
    source_url = "https://github.com/baton/docs/security.md"
    tags = ["baton", "security"]

    NARROWING = {"aws:principalarn", "sts:externalid", "aws:principalorgid", "aws:principalorgpaths"}

    def match(self, cfn):
        matches = []
        for name, res in cfn.get_resources(["AWS::IAM::Role"]).items():
            document = res.get("Properties", {}).get("AssumeRolePolicyDocument", {})
            root = ["Resources", name, "Properties", "AssumeRolePolicyDocument"]
            for st, path in allows(document, root):
                principal = st.get("Principal")
                if not isinstance(principal, dict):
                    continue
                accounts = [p for p in as_list(principal.get("AWS", [])) if whole_account(p)]
                if accounts and unscoped(st, self.NARROWING):
                    matches.append(RuleMatch(path, f"{name}: trusts every principal of an account; add an aws:PrincipalArn (or sts:ExternalId) condition"))
        return matches


def whole_account(principal):
    """An account id, an account root ARN or *, literal or in Fn::Sub."""
    principal = literal_text(principal)
    if principal is None:
        return False
    return principal == "*" or principal.endswith(":root") or (principal.isdigit() and len(principal) == 12)
