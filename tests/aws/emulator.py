#!/usr/bin/env python3
"""An emulator of the AWS pieces --discovery-aws-asg talks to, written for the tests:

  - one IMDSv2 endpoint per instance, on the instance's own address 127.0.0.<k> (PUT
    /latest/api/token, then GET /latest/meta-data/{instance-id, local-ipv4, local-hostname,
    placement/region, iam/security-credentials/[<role>]} with the token; IMDSv1 GETs without a
    token are refused with 401 unless `imds_v1` is set, as on an instance that requires v2);
  - the AutoScaling (2011-01-01) and EC2 (2016-11-15) Query APIs on one endpoint on 127.0.0.1:
    DescribeAutoScalingInstances, DescribeAutoScalingGroups, DescribeInstances, answering in
    AWS's XML shapes (their API references' examples) and errors (AutoScaling's ErrorResponse,
    EC2's Response/Errors). Every request's SigV4 signature is recomputed with botocore
    (python3-botocore) from the headers it signed; a wrong one gets AWS's 403
    SignatureDoesNotMatch, an unknown key 403 InvalidClientTokenId.

Controls for the tests, all thread-safe: instance lifecycle states (InService, Pending,
Terminated: gone from the group and 'terminated' in EC2), the group's desired capacity, and
injected faults (throttling or 5xx answers for the next N calls). `calls` records each action.

In-process use:
    emu = Emulator(group="etcd-asg"); i = emu.add_instance("127.0.0.2"); emu.start()
    ... emu.set_state(i.instance_id, "Pending"); emu.inject("throttle", 2) ...
    emu.stop()
Standalone (a manual check with awscli or dolmen): python3 emulator.py --instances 3
"""

import argparse
import datetime
import hmac
import json
import os
import re
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402  (pick_free_port)

ASG_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
ASG_ACTIONS = {"DescribeAutoScalingInstances", "DescribeAutoScalingGroups"}
EC2_ACTIONS = {"DescribeInstances"}
EC2_STATE = {"InService": ("running", 16), "Pending": ("pending", 0),
             "Terminating": ("shutting-down", 32), "Terminated": ("terminated", 48)}
AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                  r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$")
ROLE = "dolmen-instance-role"


def _xml_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


class Instance:
    def __init__(self, instance_id, ip, state):
        self.instance_id, self.ip, self.state = instance_id, ip, state
        self.imds_port = None
        self.server = None

    @property
    def imds_url(self):
        return "http://%s:%d" % (self.ip, self.imds_port)


class Emulator:
    def __init__(self, group="etcd-asg", region="eu-west-1", access_key="AKIDDOLMENTEST",
                 secret_key="dolmen/test+secret", imds_v1=False, role_ttl_s=3600):
        self.group, self.region = group, region
        self.keys = {access_key: (secret_key, None)}  # access key -> (secret, session token)
        self.access_key, self.secret_key = access_key, secret_key
        self.imds_v1 = imds_v1
        self.role_ttl_s = role_ttl_s
        self.desired = None  # None: the number of instances added
        self.instances = []
        self.calls = []       # (action, outcome) per API request, outcome 200 or an error code
        self.imds_calls = []  # (instance id, method, path, status)
        self.role_fetches = 0
        self._faults = []     # kinds of the next answers to fail: "throttle" or "5xx"
        self._tokens = set()
        self._lock = threading.Lock()
        self._api = None
        self.api_port = None
        # Called with (action, outcome) after each API answer, outside the lock: a test's hook
        # that changes the group between two calls (no timing involved).
        self.after_call = None

    # ---- controls ----
    def add_instance(self, ip, state="InService"):
        with self._lock:
            n = len(self.instances) + 1
            inst = Instance("i-0d01%013x" % (0xa5a5 * n), ip, state)
            self.instances.append(inst)
        if self._api is not None:
            self._serve_imds(inst)
        return inst

    def set_state(self, instance_id, state):
        with self._lock:
            self._find(instance_id).state = state

    def terminate(self, instance_id):
        """The instance is gone: the group no longer lists it, EC2 reports it terminated."""
        self.set_state(instance_id, "Terminated")

    def replace(self, instance_id, ip, state="Terminated"):
        """What the group does with an unhealthy instance: `instance_id` goes to `state`
        ("Terminating" while a lifecycle hook holds it, its process still running) and a new
        instance on `ip` is launched InService in its place; the desired capacity stays."""
        with self._lock:
            if self.desired is None:
                self.desired = len(self._in_group())
        self.set_state(instance_id, state)
        return self.add_instance(ip)

    def set_desired(self, n):
        with self._lock:
            self.desired = n

    def inject(self, kind, count):
        assert kind in ("throttle", "5xx", "bad-signature")
        with self._lock:
            self._faults.extend([kind] * count)

    def actions(self):
        with self._lock:
            return [a for a, _ in self.calls]

    @property
    def api_url(self):
        return "http://127.0.0.1:%d" % self.api_port

    def start(self):
        self._api = self._serve("127.0.0.1", self._api_handler())
        self.api_port = self._api.server_address[1]
        for inst in self.instances:
            self._serve_imds(inst)
        return self

    def stop(self):
        servers = [self._api] + [i.server for i in self.instances]
        for s in servers:
            if s is not None:
                s.shutdown()
                s.server_close()

    # ---- internals ----
    def _find(self, instance_id):
        for inst in self.instances:
            if inst.instance_id == instance_id:
                return inst
        return None

    def _serve(self, ip, handler):
        # pick_free_port leaves a short race before the bind; retried on a fresh port (bounded).
        for _ in range(5):
            port = harness.pick_free_port(ip)
            try:
                server = ThreadingHTTPServer((ip, port), handler)
            except OSError:
                continue
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            return server
        raise RuntimeError("emulator: no free port on " + ip)

    def _serve_imds(self, inst):
        inst.server = self._serve(inst.ip, self._imds_handler(inst))
        inst.imds_port = inst.server.server_address[1]

    def _role_credentials(self):
        key = "ASIA" + secrets.token_hex(8).upper()
        secret, token = secrets.token_urlsafe(30), secrets.token_urlsafe(40)
        expiration = (datetime.datetime.now(datetime.timezone.utc) +
                      datetime.timedelta(seconds=self.role_ttl_s))
        with self._lock:
            self.keys[key] = (secret, token)
            self.role_fetches += 1
        return {"Code": "Success", "LastUpdated": datetime.datetime.now(
                    datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC", "AccessKeyId": key, "SecretAccessKey": secret,
                "Token": token, "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _imds_answer(self, inst, path):
        meta = {"instance-id": inst.instance_id, "local-ipv4": inst.ip,
                "local-hostname": "ip-%s.%s.compute.internal" % (inst.ip.replace(".", "-"),
                                                                 self.region),
                "placement/region": self.region, "iam/security-credentials/": ROLE}
        if path in meta:
            return 200, meta[path]
        if path == "iam/security-credentials/" + ROLE:
            return 200, json.dumps(self._role_credentials())
        return 404, ""

    def _imds_handler(self, inst):
        emu = self

        class Imds(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with emu._lock:
                    emu.imds_calls.append((inst.instance_id, self.command, self.path, status))

            def do_PUT(self):
                if self.path != "/latest/api/token":
                    return self._send(404, "")
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self._send(400, "")
                token = secrets.token_urlsafe(32)
                with emu._lock:
                    emu._tokens.add(token)
                self._send(200, token)

            def do_GET(self):
                token = self.headers.get("X-aws-ec2-metadata-token")
                with emu._lock:
                    valid = token in emu._tokens if token is not None else emu.imds_v1
                if not valid:
                    return self._send(401, "")
                prefix = "/latest/meta-data/"
                if not self.path.startswith(prefix):
                    return self._send(404, "")
                self._send(*emu._imds_answer(inst, self.path[len(prefix):]))

        return Imds

    def _api_handler(self):
        emu = self

        class Api(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
                action = params.get("Action", "")
                status, text, outcome = emu._answer_api(self, body, params, action)
                with emu._lock:
                    emu.calls.append((action, outcome))
                self._send(status, text)
                if emu.after_call is not None:
                    emu.after_call(action, outcome)

        return Api

    def _error(self, action, status, code, message):
        if action in EC2_ACTIONS:
            text = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
                    "<Code>%s</Code><Message>%s</Message></Error></Errors>"
                    "<RequestID>%s</RequestID></Response>" % (code, _xml_escape(message),
                                                              secrets.token_hex(8)))
        else:
            text = ("<ErrorResponse xmlns=\"%s\"><Error><Type>Sender</Type><Code>%s</Code>"
                    "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>" %
                    (ASG_NS, code, _xml_escape(message), secrets.token_hex(8)))
        return status, text, code

    def _verify_signature(self, handler, body, action):
        """None when the request's SigV4 signature is right, else an error answer."""
        m = AUTH.match(handler.headers.get("Authorization", ""))
        if m is None:
            return self._error(action, 403, "MissingAuthenticationToken",
                               "Request is missing Authentication Token")
        key, date, region, service, signed, signature = m.groups()
        with self._lock:
            secret, token = self.keys.get(key, (None, None))
        if secret is None:
            return self._error(action, 403, "InvalidClientTokenId",
                               "The security token included in the request is invalid.")
        if token is not None and handler.headers.get("X-Amz-Security-Token") != token:
            return self._error(action, 403, "InvalidClientTokenId",
                               "The security token included in the request is invalid.")
        want_service = "ec2" if action in EC2_ACTIONS else "autoscaling"
        amz_date = handler.headers.get("X-Amz-Date", "")
        if service != want_service or region != self.region or not amz_date.startswith(date):
            return self._error(action, 403, "SignatureDoesNotMatch",
                               "Credential should be scoped to a valid region and service")
        names = signed.split(";")
        headers = {n: ", ".join(handler.headers.get_all(n, [])) for n in names}
        request = AWSRequest(method=handler.command, url="http://%s%s" % (
            handler.headers.get("Host", ""), handler.path), headers=headers, data=body)
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(key, secret, token), service, region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)),
                                  request)
        if not hmac.compare_digest(expected, signature):
            return self._error(action, 403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature"
                               " you provided. Check your AWS Secret Access Key and signing "
                               "method. Consult the service documentation for details.")
        return None

    def _answer_api(self, handler, body, params, action):
        if action not in ASG_ACTIONS | EC2_ACTIONS:
            return self._error(action, 400, "InvalidAction",
                               "The action %s is not valid for this web service." % action)
        failed = self._verify_signature(handler, body, action)
        if failed is not None:
            return failed
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault == "throttle":
            if action in EC2_ACTIONS:
                return self._error(action, 503, "RequestLimitExceeded", "Request limit exceeded.")
            return self._error(action, 400, "Throttling", "Rate exceeded")
        if fault == "5xx":
            return self._error(action, 500, "InternalFailure",
                               "The request processing has failed because of an unknown error")
        if fault == "bad-signature":
            return self._error(action, 403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match")
        with self._lock:
            if action == "DescribeAutoScalingInstances":
                return (200,) + self._describe_asg_instances(params)
            if action == "DescribeAutoScalingGroups":
                return (200,) + self._describe_groups(params)
            return self._describe_instances(params)

    @staticmethod
    def _list(params, prefix):
        pattern = re.compile(re.escape(prefix) + r"(\d+)$")
        found = [(int(m.group(1)), v) for k, v in params.items() for m in [pattern.match(k)] if m]
        return [v for _, v in sorted(found)]

    def _in_group(self):
        return [i for i in self.instances if i.state != "Terminated"]

    def _member_xml(self, inst, with_group):
        group = ("<AutoScalingGroupName>%s</AutoScalingGroupName>" % _xml_escape(self.group)
                 if with_group else "")
        return ("<member><InstanceId>%s</InstanceId>%s<AvailabilityZone>%sa</AvailabilityZone>"
                "<LifecycleState>%s</LifecycleState><HealthStatus>HEALTHY</HealthStatus>"
                "<LaunchTemplate><LaunchTemplateName>etcd</LaunchTemplateName>"
                "<Version>1</Version></LaunchTemplate>"
                "<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>" %
                (inst.instance_id, group, self.region, inst.state))

    def _describe_asg_instances(self, params):
        ids = self._list(params, "InstanceIds.member.")
        chosen = [i for i in self._in_group() if not ids or i.instance_id in ids]
        members = "".join(self._member_xml(i, True) for i in chosen)
        return ("<DescribeAutoScalingInstancesResponse xmlns=\"%s\">"
                "<DescribeAutoScalingInstancesResult><AutoScalingInstances>%s"
                "</AutoScalingInstances></DescribeAutoScalingInstancesResult>"
                "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                "</DescribeAutoScalingInstancesResponse>" % (ASG_NS, members,
                                                             secrets.token_hex(8)), 200)

    def _describe_groups(self, params):
        names = self._list(params, "AutoScalingGroupNames.member.")
        groups = ""
        if not names or self.group in names:
            desired = self.desired if self.desired is not None else len(self.instances)
            instances = "".join(self._member_xml(i, False) for i in self._in_group())
            groups = ("<member><AutoScalingGroupName>%s</AutoScalingGroupName>"
                      "<AutoScalingGroupARN>arn:aws:autoscaling:%s:123456789012:"
                      "autoScalingGroup:0:autoScalingGroupName/%s</AutoScalingGroupARN>"
                      "<MinSize>0</MinSize><MaxSize>9</MaxSize>"
                      "<DesiredCapacity>%d</DesiredCapacity><DefaultCooldown>300"
                      "</DefaultCooldown><AvailabilityZones><member>%sa</member>"
                      "</AvailabilityZones><HealthCheckType>EC2</HealthCheckType>"
                      "<Instances>%s</Instances></member>" %
                      (_xml_escape(self.group), self.region, _xml_escape(self.group), desired,
                       self.region, instances))
        return ("<DescribeAutoScalingGroupsResponse xmlns=\"%s\">"
                "<DescribeAutoScalingGroupsResult><AutoScalingGroups>%s</AutoScalingGroups>"
                "</DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>%s"
                "</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>" %
                (ASG_NS, groups, secrets.token_hex(8)), 200)

    def _describe_instances(self, params):
        ids = self._list(params, "InstanceId.")
        for wanted in ids:
            if self._find(wanted) is None:
                return self._error("DescribeInstances", 400, "InvalidInstanceID.NotFound",
                                   "The instance ID '%s' does not exist" % wanted)
        items = ""
        for inst in self.instances:
            if ids and inst.instance_id not in ids:
                continue
            name, code = EC2_STATE.get(inst.state, ("pending", 0))
            ip = ("" if inst.state == "Terminated" else
                  "<privateIpAddress>%s</privateIpAddress>" % inst.ip)
            items += ("<item><instanceId>%s</instanceId><imageId>ami-0dolmen</imageId>"
                      "<instanceState><code>%d</code><name>%s</name></instanceState>"
                      "<instanceType>t3.small</instanceType>%s</item>" %
                      (inst.instance_id, code, name, ip))
        text = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse "
                "xmlns=\"%s\"><requestId>%s</requestId><reservationSet><item>"
                "<reservationId>r-0dolmen</reservationId><ownerId>123456789012</ownerId>"
                "<instancesSet>%s</instancesSet></item></reservationSet>"
                "</DescribeInstancesResponse>" % (EC2_NS, secrets.token_hex(8), items))
        return 200, text, 200


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--group", default="etcd-asg")
    parser.add_argument("--imds-v1", action="store_true")
    args = parser.parse_args()
    emu = Emulator(group=args.group, imds_v1=args.imds_v1)
    for k in range(args.instances):
        emu.add_instance("127.0.0.%d" % (k + 1))
    emu.start()
    print("AWS_ENDPOINT_URL=%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s" %
          (emu.api_url, emu.access_key, emu.secret_key, emu.region))
    for inst in emu.instances:
        print("%s AWS_EC2_METADATA_SERVICE_ENDPOINT=%s" % (inst.instance_id, inst.imds_url))
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
