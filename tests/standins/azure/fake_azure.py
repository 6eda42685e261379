#!/usr/bin/env python3
"""A stateful fake of the Azure endpoints the `azure` component uses, for the tests.

Only the Python 3.11 standard library is used. Two listeners in one process:

* the **router** (`--port`, what the component is pointed at): a request whose path
  is in the official spec Prism serves (Compute VMs, AKS managed clusters) goes
  through Prism (`--prism-url`, in proxy mode, which validates the request and the
  answer and forwards to the API listener); any other path (resource groups,
  networks, disks, operation status, retail prices, `/_fake/*`) goes to the API
  listener directly, since `../shared/specs/azure` has no official spec for them;
  the API listener checks those bodies itself (required fields, types, references);
* the **API** (`--api-port`): Azure Resource Manager as the component uses it, and
  the Retail Prices API.

What it models (clouds.md §4):
- resource groups; virtual networks with subnets, network security groups, Standard
  public IPs, NICs, managed disks, VMs, AKS managed clusters with their `MC_*` node
  resource group;
- long-running operations: a PUT answers 201 `Creating`/`Updating` with
  `Azure-AsyncOperation` (+ `Retry-After`), a DELETE 202 with `Location` and
  `Azure-AsyncOperation`; an operation ends after `op_polls` polls of its status URL or
  GETs of its resource (or `op_ms` milliseconds), and can fail (`AllocationFailed`);
- dependencies: a NIC needs its subnet, public IP and NSG to exist and have
  succeeded; a VM needs its NIC; a NIC, public IP, NSG or subnet still in use cannot
  be deleted (`NicInUse`, `PublicIPAddressCannotBeDeleted`,
  `InUseNetworkSecurityGroupCannotBeDeleted`, `InUseSubnetCannotBeDeleted`), a disk
  attached to a VM neither;
- delete cascades: deleting a VM deletes its OS disk, NICs and (through the NIC) public
  IPs marked `deleteOption: Delete` and detaches the others; deleting a resource
  group deletes everything in it; deleting a cluster deletes its node resource group;
- status URLs written with ARM's real host (`https://management.azure.com:443`), and
  price pages' `NextPageLink` with `https://prices.azure.com:443`, so a client must
  rebase them onto its endpoint;
- the Retail Prices API over the recorded pages in `prices/`: `$filter` with `eq`
  clauses joined by `and` (case-sensitive values), `$skip` paging.

Test controls (API listener, reached through the router too):
- `POST /_fake/reset` forgets everything (also the log, faults and config);
- `POST /_fake/config` merges `{"op_polls": N, "op_ms": T, "retry_after_s": S,
  "max_per_page": N, "price_page_size": N, "expect_token": "...",
  "k8s_endpoint": URL, "allocation_failed": ["Standard_X"],
  "sku_not_available": ["Standard_Y"], "quota_exceeded": ["Standard_Z"]}`;
- `POST /_fake/next-error` queues one fault for the next request matching `method`,
  `path` prefix and a `contains` substring of the path (all optional):
  `{"status": 429, "code": "...", "message": "...", "retry_after_s": 3}` answers that
  error; `{"lost_response": true}` lets the request
  happen and then closes the connection without an answer (router);
  `{"break_response": true}` answers with `location` turned into a number (a schema
  violation Prism must catch);
- `GET /_fake/log` lists `{method, path, status, auth}` of every API request;
- `GET /_fake/state` dumps resource groups and resources (clusters included) with their
  properties; `GET /_fake/bodies` the last PUT body per resource id.

Usage: fake_azure.py --port P --api-port A --prism-url URL --spec MERGED.json
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ARM_HOST = "https://management.azure.com:443"
PRICES_HOST = "https://prices.azure.com:443"
IMAGES = {
    ("Canonical", "ubuntu-24_04-lts", "server"),
    ("Canonical", "ubuntu-24_04-lts", "server-gen1"),
    ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"),
}
BAD_ADMINS = {"admin", "administrator", "root", "user", "test", "guest", "user1", "test1", "a", "aaa"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$")
POOL_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
DNS_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,52}[a-zA-Z0-9]$|^[a-zA-Z0-9]$")
FAKE_CA = "-----BEGIN CERTIFICATE-----\nMIIBfakeAzureAksCA\n-----END CERTIFICATE-----\n"


def now_iso(t=None):
    t = time.time() if t is None else t
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


class ApiError(Exception):
    """An ARM error answer."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def bad(message, code="InvalidParameter"):
    return ApiError(400, code, message)


def cidr(value):
    """(network int, prefix length) of an IPv4 CIDR, or None."""
    try:
        addr, length = value.split("/")
        parts = [int(p) for p in addr.split(".")]
        length = int(length)
        if len(parts) != 4 or not all(0 <= p <= 255 for p in parts) or not 0 <= length <= 32:
            return None
        n = (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]
        return n & (~((1 << (32 - length)) - 1) & 0xFFFFFFFF), length
    except (ValueError, AttributeError):
        return None


def within(inner, outer):
    a, b = cidr(inner), cidr(outer)
    return bool(a and b) and a[1] >= b[1] and (a[0] >> (32 - b[1])) == (b[0] >> (32 - b[1]))


class State:
    """Everything the fake remembers, behind one lock."""

    def __init__(self, prices):
        self.lock = threading.RLock()
        self.prices = prices
        self.sizes = {i["armSkuName"] for i in prices}
        self.reset()

    def reset(self):
        self.groups = {}      # lower(sub/name) -> group
        self.res = {}         # lower(id) -> resource
        self.ops = {}         # op id -> operation
        self.bodies = {}      # lower(id) -> last PUT body
        self.faults = []
        self.log = []
        self.counter = 0
        self.config = {"op_polls": 2, "op_ms": 20000, "retry_after_s": 0, "max_per_page": 100,
                       "price_page_size": 1000, "expect_token": None, "k8s_endpoint": None,
                       "allocation_failed": [], "sku_not_available": [], "quota_exceeded": []}

    def take_fault(self, method, path, lost):
        for i, f in enumerate(self.faults):
            if bool(f.get("lost_response")) != lost:
                continue
            if f.get("method", method).upper() == method and path.startswith(f.get("path", "/")) \
                    and f.get("contains", "") in path:
                return self.faults.pop(i)
        return None


# ---- ids -----------------------------------------------------------------

def parse_id(path):
    """(sub, group, kind, name, rest) of an ARM resource path, or None."""
    p = path.strip("/").split("/")
    if len(p) >= 8 and p[0].lower() == "subscriptions" and p[2].lower() == "resourcegroups" \
            and p[4].lower() == "providers":
        return p[1], p[3], f"{p[5]}/{p[6]}", p[7], p[8:]
    return None


def rid(sub, group, kind, name):
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{kind}/{name}"


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-azure/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.state

    def body(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise bad("The request content was invalid and could not be deserialized.", "InvalidRequestContent")

    def send(self, status, obj=None, headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        if obj is not None:
            self.send_header("content-type", "application/json; charset=utf-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    # ---- dispatch --------------------------------------------------------
    def dispatch(self, method):
        url = urlsplit(self.path)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        if path.startswith("/_fake/"):
            return self.control(method, path)
        st = self.st
        auth = (self.headers.get("authorization") or "")
        status = 500
        try:
            with st.lock:
                fault = st.take_fault(method, path, lost=False)
            if fault and not fault.get("break_response"):
                self.body()
                status = int(fault.get("status", 500))
                headers = {}
                if fault.get("retry_after_s") is not None:
                    headers["retry-after"] = str(fault["retry_after_s"])
                raise ApiError(status, fault.get("code", "InjectedError"),
                               fault.get("message", "injected error"), headers)
            if path == "/api/retail/prices":
                status, obj = 200, self.prices(query)
                return self.send(status, obj)
            if not auth.lower().startswith("bearer "):
                raise ApiError(401, "AuthenticationFailed",
                               "Authentication failed. The 'Authorization' header is missing.")
            expect = st.config.get("expect_token")
            if expect and auth[7:].strip() != expect:
                raise ApiError(401, "InvalidAuthenticationToken",
                               "The access token is invalid.")
            if "api-version" not in query:
                raise bad("The api-version query parameter (?api-version=) is required for all requests.",
                          "MissingApiVersionParameter")
            with st.lock:
                self.tick()
                status, obj, headers = self.route(method, path, query)
            if fault and fault.get("break_response") and isinstance(obj, dict):
                obj = dict(obj, location=12345)
            self.send(status, obj, headers)
        except ApiError as e:
            status = e.status
            self.send(e.status, {"error": {"code": e.code, "message": e.message}}, e.headers)
        finally:
            with st.lock:
                st.log.append({"method": method, "path": self.path, "status": status,
                               "auth": auth.lower().startswith("bearer ")})

    def control(self, method, path):
        st = self.st
        body = self.body() if method == "POST" else {}
        with st.lock:
            if path == "/_fake/reset" and method == "POST":
                st.reset()
                return self.send(200, {"ok": True})
            if path == "/_fake/config" and method == "POST":
                st.config.update(body)
                return self.send(200, st.config)
            if path == "/_fake/next-error" and method == "POST":
                st.faults.append(body)
                return self.send(200, {"queued": len(st.faults)})
            if path == "/_fake/log" and method == "GET":
                return self.send(200, {"requests": st.log})
            if path == "/_fake/state" and method == "GET":
                self.tick()
                return self.send(200, {
                    "groups": [self.group_json(g) for g in st.groups.values()],
                    "resources": [self.res_json(r, full=True) for r in st.res.values()],
                })
            if path == "/_fake/bodies" and method == "GET":
                return self.send(200, st.bodies)
        self.send(404, {"error": {"code": "NotFound", "message": f"no control {method} {path}"}})

    def route(self, method, path, query):
        p = path.strip("/").split("/")
        low = [x.lower() for x in p]
        # /subscriptions/{s}/operationresults/{id}
        if len(p) == 4 and low[0] == "subscriptions" and low[2] == "operationresults" and method == "GET":
            return self.op_result(p[3])
        # /subscriptions/{s}/providers/{ns}/locations/{loc}/operations/{id}
        if len(p) == 8 and low[0] == "subscriptions" and low[2] == "providers" and low[4] == "locations" \
                and low[6] == "operations" and method == "GET":
            return self.op_status(p[7])
        # /subscriptions/{s}/resourcegroups
        if len(p) == 3 and low[0] == "subscriptions" and low[2] == "resourcegroups" and method == "GET":
            return 200, self.list_groups(p[1], query), {}
        # /subscriptions/{s}/resourcegroups/{g}
        if len(p) == 4 and low[0] == "subscriptions" and low[2] == "resourcegroups":
            return self.route_group(method, p[1], p[3])
        # /subscriptions/{s}/resourceGroups/{g}/resources
        if len(p) == 5 and low[0] == "subscriptions" and low[2] == "resourcegroups" and low[4] == "resources" \
                and method == "GET":
            self.group_or_404(p[1], p[3])
            return 200, self.list_resources(p[1], p[3], query), {}
        parsed = parse_id(path)
        if parsed:
            sub, group, kind, name, rest = parsed
            kind_l = kind.lower()
            if kind_l == "microsoft.compute/virtualmachines" and not rest:
                return self.route_vm(method, sub, group, name, query)
            if kind_l == "microsoft.containerservice/managedclusters":
                if not rest:
                    return self.route_cluster(method, sub, group, name)
                if [r.lower() for r in rest] == ["listclusterusercredential"] and method == "POST":
                    return self.credentials(sub, group, name)
            if not rest and kind_l in NETWORK_KINDS + ("microsoft.compute/disks",):
                return self.route_simple(method, sub, group, kind, name)
        raise ApiError(404, "InvalidResourceType", f"The resource type could not be found for {method} {path}.")

    # ---- operations ------------------------------------------------------
    def new_op(self, sub, ns, location, target, on_done, fail=None):
        st = self.st
        oid = str(uuid.uuid4())
        st.ops[oid] = {"id": oid, "status": "InProgress", "polls": int(st.config["op_polls"]),
                       "started": time.time(), "target": target, "on_done": on_done, "fail": fail,
                       "sub": sub, "ns": ns, "location": location or "global", "error": None}
        return oid

    def op_headers(self, oid, location_header=False):
        op = self.st.ops[oid]
        api = "2025-04-01"
        h = {"azure-asyncoperation":
             f"{ARM_HOST}/subscriptions/{op['sub']}/providers/{op['ns']}/locations/{op['location']}/operations/{oid}?api-version={api}",
             "retry-after": str(self.st.config["retry_after_s"])}
        if location_header:
            h["location"] = f"{ARM_HOST}/subscriptions/{op['sub']}/operationresults/{oid}?api-version={api}"
        return h

    def advance(self, op):
        if op["status"] != "InProgress":
            return
        op["polls"] -= 1
        if op["polls"] <= 0:
            self.complete(op)

    def complete(self, op):
        if op["status"] != "InProgress":
            return
        if op["fail"]:
            op["status"] = "Failed"
            op["error"] = op["fail"]
        else:
            op["status"] = "Succeeded"
        op["ended"] = time.time()
        op["on_done"](op)

    def tick(self):
        """Operations older than `op_ms` finish, whoever asks."""
        limit = float(self.st.config["op_ms"]) / 1000
        for op in list(self.st.ops.values()):
            if op["status"] == "InProgress" and time.time() - op["started"] >= limit:
                self.complete(op)

    def advance_target(self, key):
        for op in list(self.st.ops.values()):
            if op["target"] == key and op["status"] == "InProgress":
                self.advance(op)

    def op_status(self, oid):
        op = self.st.ops.get(oid)
        if op is None:
            raise ApiError(404, "OperationNotFound", f"Operation {oid} not found.")
        self.advance(op)
        out = {"id": f"/subscriptions/{op['sub']}/providers/{op['ns']}/locations/{op['location']}/operations/{oid}",
               "name": oid, "status": op["status"], "startTime": now_iso(op["started"])}
        if op["status"] != "InProgress":
            out["endTime"] = now_iso(op.get("ended"))
        if op["error"]:
            out["error"] = op["error"]
        return 200, out, {"retry-after": str(self.st.config["retry_after_s"])}

    def op_result(self, oid):
        op = self.st.ops.get(oid)
        if op is None:
            raise ApiError(404, "OperationNotFound", f"Operation {oid} not found.")
        self.advance(op)
        if op["status"] == "InProgress":
            h = self.op_headers(oid, location_header=True)
            return 202, None, {"location": h["location"], "retry-after": h["retry-after"]}
        if op["status"] == "Failed":
            raise ApiError(409, op["error"]["code"], op["error"]["message"])
        return 204, None, {}

    # ---- resource groups -------------------------------------------------
    def group_key(self, sub, name):
        return f"{sub}/{name}".lower()

    def group_or_404(self, sub, name):
        g = self.st.groups.get(self.group_key(sub, name))
        if g is None:
            raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        return g

    def group_json(self, g):
        return {"id": f"/subscriptions/{g['sub']}/resourceGroups/{g['name']}", "name": g["name"],
                "type": "Microsoft.Resources/resourceGroups", "location": g["location"],
                "tags": g["tags"], "properties": {"provisioningState": g["state"]}}

    def route_group(self, method, sub, name):
        st = self.st
        key = self.group_key(sub, name)
        g = st.groups.get(key)
        if method == "GET":
            if g is None:
                self.group_or_404(sub, name)
            self.advance_target(("group", key))
            g = st.groups.get(key)
            if g is None:
                self.group_or_404(sub, name)
            return 200, self.group_json(g), {}
        if method == "PUT":
            b = self.body()
            if not NAME_RE.match(name) or name.endswith("."):
                raise bad(f"Resource group name '{name}' is invalid.", "InvalidResourceGroup")
            loc = b.get("location")
            if not isinstance(loc, str) or not loc:
                raise bad("The 'location' property is required.", "LocationRequired")
            tags = self.check_tags(b.get("tags"))
            if g is not None:
                if g["state"] == "Deleting":
                    raise ApiError(409, "ResourceGroupBeingDeleted",
                                   f"The resource group '{name}' is in deprovisioning state and cannot perform this operation.")
                g["tags"] = tags
                return 200, self.group_json(g), {}
            g = {"sub": sub, "name": name, "location": loc, "tags": tags, "state": "Succeeded"}
            st.groups[key] = g
            return 201, self.group_json(g), {}
        if method == "DELETE":
            if g is None:
                return 404, None, {}
            if g["state"] != "Deleting":
                g["state"] = "Deleting"

                def done(op, key=key):
                    self.drop_group(key)
                g["op"] = self.new_op(sub, "Microsoft.Resources", g["location"], ("group", key), done)
            oid = g["op"]
            h = self.op_headers(oid, location_header=True)
            return 202, None, {"location": h["location"], "retry-after": h["retry-after"]}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here.")

    def drop_group(self, key):
        """Delete a group and everything in it (no dependency order: ARM handles it)."""
        st = self.st
        g = st.groups.pop(key, None)
        if g is None:
            return
        prefix = f"/subscriptions/{g['sub']}/resourcegroups/{g['name']}/".lower()
        for k in [k for k in st.res if k.startswith(prefix)]:
            r = st.res.pop(k)
            if r["kind"].lower() == "microsoft.containerservice/managedclusters":
                self.drop_group(self.group_key(r["sub"], r["props"].get("nodeResourceGroup", "")))

    def check_tags(self, tags):
        if tags is None:
            return {}
        if not isinstance(tags, dict) or len(tags) > 50:
            raise bad("Tags must be an object of at most 50 string pairs.", "InvalidTag")
        for k, v in tags.items():
            if not isinstance(v, str) or len(k) > 512 or len(v) > 256 or any(c in k for c in "<>%&\\?/"):
                raise bad(f"The tag '{k}' is invalid.", "InvalidTagNameCharacters")
        return dict(tags)

    def list_groups(self, sub, query):
        items = [self.group_json(g) for g in self.st.groups.values() if g["sub"] == sub]
        flt = (query.get("$filter") or [""])[0]
        m = re.match(r"^tagName eq '([^']*)' and tagValue eq '([^']*)'$", flt)
        if flt and not m:
            raise bad(f"Invalid $filter '{flt}'.", "InvalidFilter")
        if m:
            items = [g for g in items if g["tags"].get(m.group(1)) == m.group(2)]
        items.sort(key=lambda g: g["name"].lower())
        return self.page(items, query)

    def page(self, items, query):
        """`{value, nextLink}` with `$skiptoken` paging at `max_per_page`."""
        n = int(self.st.config["max_per_page"])
        start = int((query.get("$skiptoken") or ["0"])[0])
        out = {"value": items[start:start + n]}
        if start + n < len(items):
            path = urlsplit(self.path).path
            rest = {k: v[0] for k, v in query.items() if k != "$skiptoken"}
            rest["$skiptoken"] = str(start + n)
            out["nextLink"] = f"{ARM_HOST}{path}?{urlencode(rest, quote_via=quote)}"
        return out

    def list_resources(self, sub, group, query):
        prefix = f"/subscriptions/{sub}/resourcegroups/{group}/".lower()
        items = [{"id": r["id"], "name": r["name"], "type": r["kind"], "location": r["location"],
                  "tags": r["tags"]}
                 for k, r in sorted(self.st.res.items()) if k.startswith(prefix)]
        return self.page(items, query)

    # ---- generic resources ----------------------------------------------
    def res_json(self, r, full=False):
        out = {"id": r["id"], "name": r["name"], "type": r["kind"], "location": r["location"],
               "tags": r["tags"], "properties": dict(r["props"], provisioningState=r["state"])}
        for k in ("sku", "zones", "identity"):
            if r.get(k) is not None:
                out[k] = r[k]
        return out

    def find(self, rid_):
        return self.st.res.get((rid_ or "").lower())

    def put_common(self, sub, group, kind, name, b):
        g = self.group_or_404(sub, group)
        if g["state"] == "Deleting":
            raise ApiError(409, "ResourceGroupBeingDeleted",
                           f"The resource group '{group}' is in deprovisioning state and cannot perform this operation.")
        if not NAME_RE.match(name):
            raise bad(f"Resource name {name} is invalid.", "InvalidResourceName")
        loc = b.get("location")
        if not isinstance(loc, str) or not loc:
            raise bad("The 'location' property is required.", "LocationRequired")
        props = b.get("properties")
        if props is not None and not isinstance(props, dict):
            raise bad("properties must be an object.", "InvalidRequestContent")
        key = rid(sub, group, kind, name).lower()
        self.st.bodies[key] = b
        return key, loc, self.check_tags(b.get("tags")), props or {}

    def store(self, sub, group, kind, name, loc, tags, props, state, extra=None):
        key = rid(sub, group, kind, name).lower()
        existing = self.st.res.get(key)
        r = existing or {"id": rid(sub, group, kind, name), "name": name, "kind": kind, "sub": sub,
                         "group": group, "created": time.time()}
        r.update({"location": loc, "tags": tags, "props": props, "state": state})
        r.update(extra or {})
        self.st.res[key] = r
        return key, r

    def in_flight(self, key):
        return any(op["target"] == ("res", key) and op["status"] == "InProgress" for op in self.st.ops.values())

    def route_simple(self, method, sub, group, kind, name):
        key = rid(sub, group, kind, name).lower()
        r = self.st.res.get(key)
        if method == "GET":
            self.advance_target(("res", key))
            r = self.st.res.get(key)
            if r is None:
                raise ApiError(404, "ResourceNotFound",
                               f"The Resource '{kind}/{name}' under resource group '{group}' was not found.")
            return 200, self.res_json(r), {}
        if method == "PUT":
            if kind.lower() == "microsoft.compute/disks":
                raise ApiError(405, "MethodNotAllowed", "This fake creates disks only with their VM.")
            b = self.body()
            key, loc, tags, props = self.put_common(sub, group, kind, name, b)
            if r is not None and self.in_flight(key):
                raise ApiError(409, "AnotherOperationInProgress",
                               f"Another operation on this or dependent resource is in progress.")
            existed = r is not None
            props, extra = CHECKS[kind.lower()](self, sub, group, name, loc, props, b)
            key, r = self.store(sub, group, kind, name, loc, tags, props, "Updating", extra)

            def done(op, key=key):
                res = self.st.res.get(key)
                if res is not None:
                    res["state"] = "Succeeded" if op["status"] == "Succeeded" else "Failed"
                    FINISH.get(res["kind"].lower(), lambda s, x: None)(self, res)
            oid = self.new_op(sub, kind.split("/")[0], loc, ("res", key), done)
            return (200 if existed else 201), self.res_json(r), self.op_headers(oid)
        if method == "DELETE":
            if r is None:
                return 204, None, {}
            IN_USE.get(kind.lower(), lambda s, x: None)(self, r)
            return self.start_delete(key, r)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here.")

    def start_delete(self, key, r, on_gone=None):
        if r["state"] != "Deleting":
            r["state"] = "Deleting"

            def done(op, key=key):
                gone = self.st.res.pop(key, None)
                if gone is not None and on_gone:
                    on_gone(gone)
            r["delete_op"] = self.new_op(r["sub"], r["kind"].split("/")[0], r["location"], ("res", key), done)
        return 202, None, self.op_headers(r["delete_op"], location_header=True)

    # ---- network ---------------------------------------------------------
    def check_vnet(self, sub, group, name, loc, props, b):
        prefixes = (props.get("addressSpace") or {}).get("addressPrefixes")
        if not isinstance(prefixes, list) or not prefixes or not all(cidr(p) for p in prefixes):
            raise bad("addressSpace.addressPrefixes must list IPv4 prefixes.", "InvalidAddressPrefixFormat")
        subnets = props.get("subnets") or []
        if not isinstance(subnets, list):
            raise bad("subnets must be a list.")
        vid = rid(sub, group, "Microsoft.Network/virtualNetworks", name)
        existing = self.find(vid)
        used = {s["name"]: s.get("ipConfigurations", []) for s in (existing or {}).get("props", {}).get("subnets", [])}
        out = []
        for s in subnets:
            sname, sp = s.get("name"), (s.get("properties") or {})
            ap = sp.get("addressPrefix")
            if not isinstance(sname, str) or not sname or not cidr(ap or ""):
                raise bad("Each subnet needs a name and an addressPrefix.", "InvalidAddressPrefixFormat")
            if not any(within(ap, p) for p in prefixes):
                raise bad(f"Subnet '{sname}' is not valid in virtual network '{name}'.", "NetcfgInvalidSubnet")
            out.append({"id": f"{vid}/subnets/{sname}", "name": sname,
                        "properties": {"addressPrefix": ap, "provisioningState": "Succeeded"},
                        "ipConfigurations": used.get(sname, [])})
        for sname, configs in used.items():
            if configs and sname not in [s["name"] for s in out]:
                raise bad(f"Subnet {sname} is in use and cannot be deleted.", "InUseSubnetCannotBeDeleted")
        return {"addressSpace": {"addressPrefixes": prefixes}, "subnets": out}, None

    def check_nsg(self, sub, group, name, loc, props, b):
        rules = props.get("securityRules") or []
        if not isinstance(rules, list):
            raise bad("securityRules must be a list.")
        seen = set()
        out = []
        for r in rules:
            rp = r.get("properties") or {}
            if not isinstance(r.get("name"), str):
                raise bad("Each security rule needs a name.", "SecurityRuleInvalid")
            pr = rp.get("priority")
            if not isinstance(pr, int) or not 100 <= pr <= 4096 or (pr, rp.get("direction")) in seen:
                raise bad(f"Security rule {r.get('name')} has an invalid or duplicate priority.",
                          "SecurityRuleInvalidPriority")
            seen.add((pr, rp.get("direction")))
            if rp.get("direction") not in ("Inbound", "Outbound") or rp.get("access") not in ("Allow", "Deny"):
                raise bad(f"Security rule {r['name']}: direction and access are required.", "SecurityRuleInvalid")
            if rp.get("protocol") not in ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*"):
                raise bad(f"Security rule {r['name']}: invalid protocol.", "SecurityRuleInvalidProtocol")
            if ("destinationPortRange" in rp) == ("destinationPortRanges" in rp):
                raise bad(f"Security rule {r['name']}: exactly one of destinationPortRange(s).", "SecurityRuleInvalid")
            if ("sourceAddressPrefix" in rp) == ("sourceAddressPrefixes" in rp):
                raise bad(f"Security rule {r['name']}: exactly one of sourceAddressPrefix(es).", "SecurityRuleInvalid")
            for pr_ in [rp.get("destinationPortRange")] + list(rp.get("destinationPortRanges") or []):
                if pr_ is None:
                    continue
                ok = pr_ == "*" or re.match(r"^\d{1,5}(-\d{1,5})?$", str(pr_))
                if not ok:
                    raise bad(f"Security rule {r['name']}: invalid port range {pr_}.", "SecurityRuleInvalidPortRange")
            out.append({"name": r["name"], "id": f"{rid(sub, group, 'Microsoft.Network/networkSecurityGroups', name)}/securityRules/{r['name']}",
                        "properties": dict(rp, provisioningState="Succeeded")})
        return {"securityRules": out}, None

    def check_pip(self, sub, group, name, loc, props, b):
        sku = (b.get("sku") or {}).get("name", "Basic")
        method_ = props.get("publicIPAllocationMethod", "Dynamic")
        if sku == "Standard" and method_ != "Static":
            raise bad("Standard sku publicIp must have AllocationMethod set to Static.",
                      "StandardSkuPublicIPAddressesMustBeStatic")
        out = dict(props)
        return out, {"sku": {"name": sku, "tier": "Regional"}, "zones": b.get("zones")}

    def finish_pip(self, r):
        if r["state"] == "Succeeded" and not r["props"].get("ipAddress"):
            self.st.counter += 1
            r["props"]["ipAddress"] = f"20.{(self.st.counter >> 8) % 256}.{self.st.counter % 256}.10"

    def check_nic(self, sub, group, name, loc, props, b):
        configs = props.get("ipConfigurations")
        if not isinstance(configs, list) or not configs:
            raise bad("A network interface needs at least one ipConfiguration.", "IpConfigurationRequired")
        nic_id = rid(sub, group, "Microsoft.Network/networkInterfaces", name)
        out = []
        for c in configs:
            cp = c.get("properties") or {}
            subnet_id = (cp.get("subnet") or {}).get("id", "")
            vnet_id = subnet_id.rsplit("/subnets/", 1)[0]
            vnet = self.find(vnet_id)
            subnet = None
            if vnet:
                subnet = next((s for s in vnet["props"]["subnets"] if s["id"].lower() == subnet_id.lower()), None)
            if vnet is None or subnet is None:
                raise bad(f"Resource {subnet_id} referenced by resource {nic_id} was not found.",
                          "InvalidResourceReference")
            self.require_succeeded(vnet, nic_id)
            pip_id = (cp.get("publicIPAddress") or {}).get("id")
            if pip_id:
                pip = self.find(pip_id)
                if pip is None:
                    raise bad(f"Resource {pip_id} referenced by resource {nic_id} was not found.",
                              "InvalidResourceReference")
                self.require_succeeded(pip, nic_id)
                holder = pip["props"].get("ipConfiguration")
                if holder and not holder["id"].lower().startswith(nic_id.lower()):
                    raise bad(f"Public IP address {pip_id} is already in use.", "PublicIPAddressInUse")
            self.st.counter += 1
            pip_ref = None
            if pip_id:
                pip_ref = {"id": pip_id}
                if (cp.get("publicIPAddress") or {}).get("properties"):
                    pip_ref["properties"] = cp["publicIPAddress"]["properties"]
            cname = c.get("name", "ipconfig1")
            out.append({"name": cname, "id": f"{nic_id}/ipConfigurations/{cname}",
                        "properties": {"subnet": {"id": subnet["id"]},
                                       "publicIPAddress": pip_ref,
                                       "privateIPAllocationMethod": cp.get("privateIPAllocationMethod", "Dynamic"),
                                       "privateIPAddress": f"10.0.0.{4 + self.st.counter % 250}",
                                       "primary": cp.get("primary", True), "provisioningState": "Succeeded"}})
        nsg_id = (props.get("networkSecurityGroup") or {}).get("id")
        if nsg_id:
            nsg = self.find(nsg_id)
            if nsg is None:
                raise bad(f"Resource {nsg_id} referenced by resource {nic_id} was not found.",
                          "InvalidResourceReference")
            self.require_succeeded(nsg, nic_id)
        existing = self.find(nic_id)
        result = {"ipConfigurations": out, "networkSecurityGroup": {"id": nsg_id} if nsg_id else None,
                  "virtualMachine": (existing or {}).get("props", {}).get("virtualMachine")}
        # Back references (what makes the parts "in use").
        for c in out:
            subnet_id = c["properties"]["subnet"]["id"]
            vnet = self.find(subnet_id.rsplit("/subnets/", 1)[0])
            for s in vnet["props"]["subnets"]:
                if s["id"].lower() == subnet_id.lower() and c["id"] not in s["ipConfigurations"]:
                    s["ipConfigurations"].append(c["id"])
            if c["properties"]["publicIPAddress"]:
                pip = self.find(c["properties"]["publicIPAddress"]["id"])
                pip["props"]["ipConfiguration"] = {"id": c["id"]}
        if nsg_id:
            nsg = self.find(nsg_id)
            nics = nsg["props"].setdefault("networkInterfaces", [])
            if {"id": nic_id} not in nics:
                nics.append({"id": nic_id})
        return result, None

    def require_succeeded(self, r, user):
        if r["state"] != "Succeeded":
            raise bad(f"Cannot proceed with operation because resource {r['id']} used by resource {user} is not in Succeeded state. Resource is in {r['state']} state.",
                      "ReferencedResourceNotProvisioned")

    def nic_in_use(self, r):
        vm = r["props"].get("virtualMachine")
        if vm:
            raise bad(f"Network Interface {r['id']} is used by existing resource {vm['id']}.", "NicInUse")

    def pip_in_use(self, r):
        holder = r["props"].get("ipConfiguration")
        if holder:
            raise bad(f"Public IP address {r['id']} can not be deleted since it is still allocated to resource {holder['id']}.",
                      "PublicIPAddressCannotBeDeleted")

    def nsg_in_use(self, r):
        if r["props"].get("networkInterfaces"):
            raise bad(f"Network security group {r['id']} cannot be deleted because it is in use by network interfaces.",
                      "InUseNetworkSecurityGroupCannotBeDeleted")

    def vnet_in_use(self, r):
        for s in r["props"].get("subnets", []):
            if s.get("ipConfigurations"):
                raise bad(f"Subnet {s['name']} is in use by {s['ipConfigurations'][0]} and cannot be deleted.",
                          "InUseSubnetCannotBeDeleted")

    def disk_in_use(self, r):
        if r["props"].get("managedBy"):
            raise ApiError(409, "OperationNotAllowed",
                           f"Disk {r['name']} is attached to VM {r['props']['managedBy']}.")

    def nic_gone(self, nic):
        """A deleted NIC frees its subnet, NSG and public IP (deleted too if marked)."""
        for c in nic["props"].get("ipConfigurations", []):
            vnet = self.find(c["properties"]["subnet"]["id"].rsplit("/subnets/", 1)[0])
            if vnet:
                for s in vnet["props"]["subnets"]:
                    s["ipConfigurations"] = [x for x in s["ipConfigurations"] if x != c["id"]]
            ref = c["properties"].get("publicIPAddress")
            if ref:
                pip = self.find(ref["id"])
                if pip:
                    pip["props"].pop("ipConfiguration", None)
                    option = (ref.get("properties") or {}).get("deleteOption") or pip["props"].get("deleteOption")
                    if nic.get("cascade") and option == "Delete":
                        self.st.res.pop(pip["id"].lower(), None)
        nsg_ref = nic["props"].get("networkSecurityGroup")
        if nsg_ref:
            nsg = self.find(nsg_ref["id"])
            if nsg:
                nsg["props"]["networkInterfaces"] = [n for n in nsg["props"].get("networkInterfaces", [])
                                                     if n["id"].lower() != nic["id"].lower()]

    # ---- virtual machines -------------------------------------------------
    def vm_json(self, r, expand=False):
        out = self.res_json(r)
        props = out["properties"]
        props.pop("powerState", None)
        props.pop("customData", None)
        if "osProfile" in props:
            props["osProfile"] = {k: v for k, v in props["osProfile"].items() if k != "customData"}
        if expand:
            statuses = []
            if r["state"] == "Failed":
                err = r.get("failure") or {"code": "Unknown", "message": "failed"}
                statuses.append({"code": f"ProvisioningState/failed/{err['code']}", "level": "Error",
                                 "displayStatus": "Provisioning failed", "message": err["message"],
                                 "time": now_iso()})
            else:
                statuses.append({"code": f"ProvisioningState/{r['state'].lower()}", "level": "Info",
                                 "displayStatus": f"Provisioning {r['state'].lower()}", "time": now_iso()})
                power = r["props"].get("powerState")
                if power:
                    statuses.append({"code": f"PowerState/{power}", "level": "Info",
                                     "displayStatus": f"VM {power}"})
            props["instanceView"] = {"computerName": r["props"]["osProfile"]["computerName"],
                                     "osName": "ubuntu", "statuses": statuses}
        return out

    def route_vm(self, method, sub, group, name, query):
        key = rid(sub, group, "Microsoft.Compute/virtualMachines", name).lower()
        r = self.st.res.get(key)
        if method == "GET":
            self.advance_target(("res", key))
            r = self.st.res.get(key)
            if r is None:
                if self.group_key(sub, group) not in self.st.groups:
                    self.group_or_404(sub, group)
                raise ApiError(404, "ResourceNotFound",
                               f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{group}' was not found.")
            return 200, self.vm_json(r, expand="instanceView" in (query.get("$expand") or [""])[0]), {}
        if method == "PUT":
            b = self.body()
            key, loc, tags, props = self.put_common(sub, group, "Microsoft.Compute/virtualMachines", name, b)
            if r is not None:
                if self.in_flight(key):
                    raise ApiError(409, "OperationNotAllowed",
                                   "Operation 'Create' is not allowed since the VM is being provisioned.")
                return 200, self.vm_json(r), {}
            return self.create_vm(sub, group, name, loc, tags, props, b)
        if method == "DELETE":
            if r is None:
                return 204, None, {}
            if r["state"] != "Deleting":
                r["props"]["powerState"] = "stopping"
            return self.start_delete(key, r, on_gone=self.vm_gone)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here.")

    def create_vm(self, sub, group, name, loc, tags, props, b):
        cfg = self.st.config
        hw = props.get("hardwareProfile") or {}
        size = hw.get("vmSize")
        if size not in self.st.sizes:
            raise bad(f"The value {size} provided for the VM size is not valid.", "InvalidParameter")
        if size in cfg["sku_not_available"]:
            raise ApiError(409, "SkuNotAvailable",
                           f"The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: {size}' is currently not available in location '{loc}'. Please try another size or deploy to a different location or different zone.")
        if size in cfg["quota_exceeded"]:
            raise ApiError(409, "OperationNotAllowed",
                           f"Operation could not be completed as it results in exceeding approved Total Regional Cores quota. Location: {loc}, Current Limit: 10, Current Usage: 8, Additional Required: 4.")
        storage = props.get("storageProfile") or {}
        image = storage.get("imageReference") or {}
        if "id" not in image and (image.get("publisher"), image.get("offer"), image.get("sku")) not in IMAGES:
            raise bad(f"The platform image '{image.get('publisher')}:{image.get('offer')}:{image.get('sku')}:{image.get('version')}' is not available.",
                      "InvalidParameter")
        os_disk = storage.get("osDisk") or {}
        if os_disk.get("createOption") != "FromImage":
            raise bad("osDisk.createOption must be FromImage for an image.", "InvalidParameter")
        osp = props.get("osProfile") or {}
        comp, admin = osp.get("computerName"), osp.get("adminUsername")
        if not isinstance(comp, str) or not 1 <= len(comp) <= 64 or not re.match(r"^[A-Za-z0-9-]+$", comp):
            raise bad("Linux host name cannot exceed 64 characters in length or contain the following characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?.",
                      "InvalidParameter")
        if not isinstance(admin, str) or admin.lower() in BAD_ADMINS:
            raise bad("The Admin Username specified is not allowed.", "InvalidParameter")
        lin = osp.get("linuxConfiguration") or {}
        keys = (lin.get("ssh") or {}).get("publicKeys") or []
        if lin.get("disablePasswordAuthentication") and not keys:
            raise bad("Authentication using either SSH or by user name and password must be enabled in Linux profile.",
                      "InvalidParameter")
        for k in keys:
            kd = str(k.get("keyData", "")).split()
            if len(kd) < 2 or not (kd[0] in ("ssh-rsa", "ssh-ed25519") or kd[0].startswith("ecdsa-")) \
                    or not k.get("path", "").startswith(f"/home/{admin}/"):
                raise bad("The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.",
                          "InvalidParameter")
        cd = osp.get("customData")
        if cd is not None:
            try:
                raw = base64.b64decode(cd, validate=True)
            except ValueError:
                raise bad("Custom data in OSProfile must be in Base64 encoding.", "InvalidParameter")
            if len(raw) > 65535:
                raise bad("Custom data in OSProfile must be at most 65535 bytes.", "InvalidParameter")
        prio = props.get("priority", "Regular")
        if prio not in ("Regular", "Low", "Spot"):
            raise bad(f"priority {prio} is not valid.", "InvalidParameter")
        if prio == "Spot":
            if props.get("evictionPolicy") not in ("Delete", "Deallocate"):
                raise bad("evictionPolicy is required for Spot VMs.", "InvalidParameter")
            mp = (props.get("billingProfile") or {}).get("maxPrice", -1)
            if not isinstance(mp, (int, float)) or (mp != -1 and mp <= 0):
                raise bad("billingProfile.maxPrice must be -1 or positive.", "InvalidParameter")
        vm_id = rid(sub, group, "Microsoft.Compute/virtualMachines", name)
        nics = (props.get("networkProfile") or {}).get("networkInterfaces") or []
        if not nics:
            raise bad("At least one network interface is required.", "InvalidParameter")
        for n in nics:
            nic = self.find(n.get("id"))
            if nic is None:
                raise bad(f"Resource {n.get('id')} referenced by resource {vm_id} was not found.",
                          "InvalidResourceReference")
            self.require_succeeded(nic, vm_id)
            if nic["props"].get("virtualMachine"):
                raise bad(f"Network interface {nic['id']} is in use by another VM.", "NicInUse")
        # The OS disk exists from the start, attached to the VM.
        disk_name = os_disk.get("name") or f"{name}_OsDisk_1_{uuid.uuid4().hex[:32]}"
        disk_key, disk = self.store(sub, group, "Microsoft.Compute/disks", disk_name, loc, dict(tags),
                                    {"diskSizeGB": os_disk.get("diskSizeGB", 30), "managedBy": vm_id,
                                     "osType": "Linux", "diskState": "Attached"},
                                    "Succeeded", {"sku": {"name": (os_disk.get("managedDisk") or {}).get("storageAccountType", "Standard_LRS")}})
        for n in nics:
            self.find(n["id"])["props"]["virtualMachine"] = {"id": vm_id}
        stored = json.loads(json.dumps(props))
        stored["storageProfile"]["osDisk"]["name"] = disk_name
        stored["storageProfile"]["osDisk"]["managedDisk"] = dict(
            (os_disk.get("managedDisk") or {}), id=disk["id"])
        stored["vmId"] = str(uuid.uuid4())
        stored["timeCreated"] = now_iso()
        key, r = self.store(sub, group, "Microsoft.Compute/virtualMachines", name, loc, tags, stored,
                            "Creating", {"zones": b.get("zones")})
        fail = None
        if size in self.st.config["allocation_failed"]:
            fail = {"code": "AllocationFailed",
                    "message": "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance"}

        def done(op, key=key):
            vm = self.st.res.get(key)
            if vm is None:
                return
            if op["status"] == "Succeeded":
                vm["state"] = "Succeeded"
                vm["props"]["powerState"] = "running"
            else:
                vm["state"] = "Failed"
                vm["failure"] = op["error"]
        oid = self.new_op(sub, "Microsoft.Compute", loc, ("res", key), done, fail)
        return 201, self.vm_json(r), self.op_headers(oid)

    def vm_gone(self, vm):
        """Cascade per deleteOption: OS disk, NICs (and through them public IPs)."""
        props = vm["props"]
        disk = (props.get("storageProfile") or {}).get("osDisk") or {}
        d = self.find((disk.get("managedDisk") or {}).get("id"))
        if d is not None:
            if disk.get("deleteOption") == "Delete":
                self.st.res.pop(d["id"].lower(), None)
            else:
                d["props"]["managedBy"] = None
                d["props"]["diskState"] = "Unattached"
        for n in (props.get("networkProfile") or {}).get("networkInterfaces") or []:
            nic = self.find(n["id"])
            if nic is None:
                continue
            nic["props"]["virtualMachine"] = None
            if (n.get("properties") or {}).get("deleteOption") == "Delete":
                self.st.res.pop(nic["id"].lower(), None)
                nic["cascade"] = True
                self.nic_gone(nic)

    # ---- AKS -------------------------------------------------------------
    def route_cluster(self, method, sub, group, name):
        kind = "Microsoft.ContainerService/managedClusters"
        key = rid(sub, group, kind, name).lower()
        r = self.st.res.get(key)
        if method == "GET":
            self.advance_target(("res", key))
            r = self.st.res.get(key)
            if r is None:
                raise ApiError(404, "ResourceNotFound",
                               f"The Resource '{kind}/{name}' under resource group '{group}' was not found.")
            return 200, self.res_json(r), {}
        if method == "PUT":
            b = self.body()
            key, loc, tags, props = self.put_common(sub, group, kind, name, b)
            if r is not None:
                if self.in_flight(key):
                    raise ApiError(409, "OperationNotAllowed",
                                   "Operation is not allowed: Another operation (Create) is in progress.")
                return 200, self.res_json(r), {}
            return self.create_cluster(sub, group, name, loc, tags, props, b)
        if method == "DELETE":
            if r is None:
                return 204, None, {}

            def gone(c):
                self.drop_group(self.group_key(c["sub"], c["props"].get("nodeResourceGroup", "")))
            return self.start_delete(key, r, on_gone=gone)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here.")

    def create_cluster(self, sub, group, name, loc, tags, props, b):
        if (b.get("identity") or {}).get("type") != "SystemAssigned" and not props.get("servicePrincipalProfile"):
            raise bad("Either an identity or a servicePrincipalProfile is required.", "InvalidParameter")
        dns = props.get("dnsPrefix")
        if not isinstance(dns, str) or not DNS_RE.match(dns):
            raise bad("The value of parameter dnsPrefix is invalid.", "InvalidDNSPrefix")
        aad = props.get("aadProfile")
        if aad is not None and not (aad.get("managed") or (aad.get("clientAppID") and aad.get("serverAppID"))):
            raise bad("aadProfile needs managed: true (or the legacy clientAppID and serverAppID).", "InvalidParameter")
        pools = props.get("agentPoolProfiles")
        if not isinstance(pools, list) or not pools:
            raise bad("At least one agent pool is required.", "InvalidParameter")
        names = set()
        for p in pools:
            pn = p.get("name")
            if not isinstance(pn, str) or not POOL_RE.match(pn) or pn in names:
                raise bad(f"Agent pool name {pn!r} is invalid or repeated.", "InvalidAgentPoolName")
            names.add(pn)
            if p.get("vmSize") not in self.st.sizes:
                raise bad(f"The VM size {p.get('vmSize')} is not supported.", "InvalidParameter")
            c = p.get("count", 1)
            if not isinstance(c, int) or not 1 <= c <= 1000:
                raise bad(f"Agent pool {pn}: count must be 1-1000.", "InvalidParameter")
            if p.get("scaleSetPriority") == "Spot":
                if p.get("mode") == "System":
                    raise bad(f"Agent pool {pn}: a System pool cannot be Spot.", "InvalidParameter")
                if p.get("scaleSetEvictionPolicy") not in ("Delete", "Deallocate"):
                    raise bad(f"Agent pool {pn}: spot pools need scaleSetEvictionPolicy.", "InvalidParameter")
            if p.get("enableAutoScaling") and not (isinstance(p.get("minCount"), int) and isinstance(p.get("maxCount"), int)
                                                  and p["minCount"] <= c <= p["maxCount"]):
                raise bad(f"Agent pool {pn}: count must lie within minCount and maxCount.", "InvalidParameter")
        if not any(p.get("mode", "System") == "System" for p in pools):
            raise bad("At least one agent pool with mode System is required.", "InvalidParameter")
        h = hashlib.sha1(f"{sub}/{group}/{name}".encode()).hexdigest()[:8]
        node_group = f"MC_{group}_{name}_{loc}"
        stored = dict(props, nodeResourceGroup=node_group, maxAgentPools=100,
                      kubernetesVersion=props.get("kubernetesVersion", "1.31.2"),
                      currentKubernetesVersion=props.get("kubernetesVersion", "1.31.2"))
        stored["agentPoolProfiles"] = [dict(p, provisioningState="Creating") for p in pools]
        stored["fqdn"] = f"{dns}-{h}.hcp.{loc}.azmk8s.io"
        key, r = self.store(sub, group, "Microsoft.ContainerService/managedClusters", name, loc, tags, stored,
                            "Creating", {"identity": {"type": "SystemAssigned",
                                                      "principalId": str(uuid.uuid4()),
                                                      "tenantId": str(uuid.uuid4())}})

        def done(op, key=key):
            c = self.st.res.get(key)
            if c is None:
                return
            c["state"] = "Succeeded" if op["status"] == "Succeeded" else "Failed"
            c["props"]["powerState"] = {"code": "Running"}
            for p in c["props"]["agentPoolProfiles"]:
                p["provisioningState"] = "Succeeded"
            ng = self.group_key(sub, node_group)
            self.st.groups[ng] = {"sub": sub, "name": node_group, "location": loc,
                                  "tags": {"aks-managed-cluster-name": name}, "state": "Succeeded"}
            for p in c["props"]["agentPoolProfiles"]:
                self.store(sub, node_group, "Microsoft.Compute/virtualMachineScaleSets",
                           f"aks-{p['name']}-{h}-vmss", loc, {"aks-managed-poolName": p["name"]},
                           {"sku": p["vmSize"], "capacity": p.get("count", 1)}, "Succeeded")
        oid = self.new_op(sub, "Microsoft.ContainerService", loc, ("res", key), done)
        return 201, self.res_json(r), self.op_headers(oid)

    def credentials(self, sub, group, name):
        kind = "Microsoft.ContainerService/managedClusters"
        c = self.find(rid(sub, group, kind, name))
        if c is None:
            raise ApiError(404, "ResourceNotFound",
                           f"The Resource '{kind}/{name}' under resource group '{group}' was not found.")
        server = self.st.config.get("k8s_endpoint") or f"https://{c['props']['fqdn']}:443"
        ca = base64.b64encode(FAKE_CA.encode()).decode()
        kubeconfig = (
            "apiVersion: v1\nclusters:\n- cluster:\n"
            f"    certificate-authority-data: {ca}\n    server: {server}\n  name: {name}\n"
            f"contexts:\n- context:\n    cluster: {name}\n    user: clusterUser_{group}_{name}\n  name: {name}\n"
            f"current-context: {name}\nkind: Config\npreferences: {{}}\nusers:\n"
            f"- name: clusterUser_{group}_{name}\n  user:\n    exec:\n"
            "      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n"
            "      args:\n      - get-token\n      - --server-id\n      - 6dae42f8-4368-4678-94ff-3960e28e3630\n"
        )
        return 200, {"kubeconfigs": [{"name": "clusterUser",
                                      "value": base64.b64encode(kubeconfig.encode()).decode()}]}, {}

    # ---- retail prices ---------------------------------------------------
    def prices(self, query):
        flt = (query.get("$filter") or [""])[0]
        fields = {"serviceName": "serviceName", "priceType": "type", "armRegionName": "armRegionName",
                  "armSkuName": "armSkuName", "skuName": "skuName", "serviceFamily": "serviceFamily",
                  "meterName": "meterName", "productName": "productName"}
        clauses = []
        if flt:
            for part in flt.split(" and "):
                m = re.match(r"^\s*(\w+) eq '([^']*)'\s*$", part)
                if not m or m.group(1) not in fields:
                    raise ApiError(400, "InvalidFilter", f"Invalid filter clause {part!r}")
                clauses.append((fields[m.group(1)], m.group(2)))
        items = [i for i in self.st.prices if all(i.get(f) == v for f, v in clauses)]
        try:
            skip = int((query.get("$skip") or ["0"])[0])
        except ValueError:
            raise ApiError(400, "InvalidSkip", "$skip must be an integer")
        n = int(self.st.config["price_page_size"])
        chunk = items[skip:skip + n]
        nxt = None
        if skip + n < len(items):
            rest = {k: v[0] for k, v in query.items() if k != "$skip"}
            rest["$skip"] = str(skip + n)
            nxt = f"{PRICES_HOST}/api/retail/prices?{urlencode(rest, quote_via=quote)}"
        return {"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail",
                "Items": chunk, "NextPageLink": nxt, "Count": len(chunk)}


NETWORK_KINDS = ("microsoft.network/virtualnetworks", "microsoft.network/networksecuritygroups",
                 "microsoft.network/publicipaddresses", "microsoft.network/networkinterfaces")
CHECKS = {
    "microsoft.network/virtualnetworks": Handler.check_vnet,
    "microsoft.network/networksecuritygroups": Handler.check_nsg,
    "microsoft.network/publicipaddresses": Handler.check_pip,
    "microsoft.network/networkinterfaces": Handler.check_nic,
}
FINISH = {"microsoft.network/publicipaddresses": Handler.finish_pip}
IN_USE = {
    "microsoft.network/networkinterfaces": Handler.nic_in_use,
    "microsoft.network/publicipaddresses": Handler.pip_in_use,
    "microsoft.network/networksecuritygroups": Handler.nsg_in_use,
    "microsoft.network/virtualnetworks": Handler.vnet_in_use,
    "microsoft.compute/disks": Handler.disk_in_use,
}


# ---- the router ---------------------------------------------------------

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection", "server", "date"}


def spec_matcher(spec_path):
    """A function telling whether a path is one of the spec's path templates."""
    with open(spec_path) as f:
        spec = json.load(f)
    regexes = [re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$") for p in spec["paths"]]
    return lambda path: any(r.match(path) for r in regexes)


class Router(BaseHTTPRequestHandler):
    server_version = "fake-azure-router/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self, method):
        path = urlsplit(self.path).path
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        srv = self.server
        with srv.state.lock:
            lost = srv.state.take_fault(method, path, lost=True)
        target = srv.prism if srv.in_spec(path) else srv.api
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["content-length"] = str(len(body))
        try:
            conn = http.client.HTTPConnection(target[0], target[1], timeout=60)
            conn.request(method, self.path, body=body if (body or method in ("PUT", "POST", "PATCH")) else None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, rheaders = resp.status, resp.getheaders()
            conn.close()
        except OSError as e:
            data = json.dumps({"error": {"code": "BadGateway", "message": str(e)}}).encode()
            status, rheaders = 502, [("content-type", "application/json")]
        if lost:
            # The work is done; the answer is lost on the way back.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(status)
        for k, v in rheaders:
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self):
        self.forward("GET")

    def do_PUT(self):
        self.forward("PUT")

    def do_POST(self):
        self.forward("POST")

    def do_DELETE(self):
        self.forward("DELETE")

    def do_PATCH(self):
        self.forward("PATCH")


def load_prices(directory):
    items = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                items.extend(json.load(f)["Items"])
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True, help="router (what clients use)")
    ap.add_argument("--api-port", type=int, required=True)
    ap.add_argument("--prism-url", required=True)
    ap.add_argument("--spec", required=True, help="the merged spec Prism serves")
    ap.add_argument("--prices", default=os.path.join(HERE, "prices"))
    args = ap.parse_args()
    state = State(load_prices(args.prices))
    api = ThreadingHTTPServer(("127.0.0.1", args.api_port), Handler)
    api.daemon_threads = True
    api.state = state
    router = ThreadingHTTPServer(("127.0.0.1", args.port), Router)
    router.daemon_threads = True
    router.state = state
    router.in_spec = spec_matcher(args.spec)
    prism = urlsplit(args.prism_url)
    router.prism = (prism.hostname, prism.port)
    router.api = ("127.0.0.1", args.api_port)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    print(f"fake Azure: router http://127.0.0.1:{args.port}, API http://127.0.0.1:{args.api_port}", flush=True)
    router.serve_forever()


if __name__ == "__main__":
    main()
