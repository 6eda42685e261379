#!/usr/bin/env python3
"""A stateful fake of Google Cloud for the `gcp` provider tests.

Only the Python 3.11 standard library is used. One server answers:

- Compute Engine v1 (`/projects/{p}/...`): regions, zones, machine types (zonal and
  aggregated), instances (insert, get, delete, zonal and aggregated lists with
  filters and pages), global firewalls, zonal and global operations with `wait`;
- GKE container v1 (`/v1/projects/{p}/locations/{l}/...`): clusters (create,
  get, list, delete) and their operations;
- the OAuth 2 token endpoint (`POST /token`): the JWT bearer grant of a service
  account, with the RS256 signature checked against the public key the test
  registers; every Compute and GKE request must carry a token minted here;
- the keyless SkyPilot v8 catalogue (`GET /skypilot-catalog/master/catalogs/v8/gcp/vms.csv`)
  and the Cloud Billing Catalog SKUs (`GET /v1/services/6F81-5844-456A/skus`, paged).

In the tests it sits behind two Prism processes in proxy mode (one per official
spec), so every Compute and GKE answer it gives must also be valid against Google's
schema. The data files it serves are described in `README.md`.

Behaviour worth knowing:
- operations go PENDING -> RUNNING -> DONE: one step per GET or `wait` of that
  operation, or all at once `op_done_after_ms` after they started; `wait` returns
  after one step (Google's `wait` is best effort and may return before DONE);
- an instance exists as PROVISIONING as soon as its insert is accepted, becomes
  STAGING when the insert operation is DONE and RUNNING (with an external IP) after
  `running_after_gets` GETs; a failed insert (see `op_errors`) removes it and ends
  its operation DONE with `error`, HTTP 200 everywhere, as Google does;
- a `requestId` seen before returns the first request's operation and does nothing;
- firewalls appear and disappear when their operation is DONE; deleting an instance
  deletes its boot disk only when the disk was inserted with `autoDelete: true`;
- the insert bodies are checked as Compute Engine checks them (names, labels,
  machine type in the zone, the boot disk image, metadata sizes, Spot and GPU
  scheduling rules) and refused with Google's error shape.

Test controls (not part of any Google API; tests call this server directly):
- `POST /_fake/reset` forgets everything (state, log, config, registered key);
- `POST /_fake/config` updates `{"op_done_after_ms", "op_steps", "running_after_gets",
  "cluster_running_after_gets", "cluster_deleted_after_gets", "max_results_cap",
  "k8s_endpoint", "require_token", "op_errors": [{"machine_type", "zone"?, "code",
  "message", "http_status"}], "client_email"}`; `{"forget_request_ids": true}` forgets
  every requestId seen (as Google does after a while);
- `POST /_fake/key` registers the service account's public key `{"n": hex, "e": int}`;
- `POST /_fake/next-error` queues one fault for the next request matching `method`
  and `path` prefix: `{"status": 403, "reason": "rateLimitExceeded", "message": ...,
  "retry_after": 3}`, `{"lost_response": true}` (the request is performed, then the
  connection closed without an answer) or `{"break_response": true}` (the answer's
  values become the wrong type: a schema violation Prism must catch);
- `GET /_fake/log` lists `{method, path, status, body}` of every request served;
- `GET /_fake/state` dumps instances, disks, firewalls, operations, clusters, tokens.

Usage: fake_gcp.py --port 25032 [--compute-url URL] [--container-url URL]
(the URLs are written into selfLinks, so links point at the validating proxies).
"""

import argparse
import base64
import csv
import hashlib
import json
import re
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = __file__.rsplit("/", 1)[0]
DATA = f"{HERE}/data"

# Real zones of the regions in the recorded machine-type data.
REGION_ZONES = {
    "us-central1": ["a", "b", "c", "f"],
    "us-east1": ["b", "c", "d"],
    "us-east4": ["a", "b", "c"],
    "us-west1": ["a", "b", "c"],
    "us-west2": ["a", "b", "c"],
    "us-west4": ["a", "b", "c"],
    "europe-west1": ["b", "c", "d"],
    "europe-west4": ["a", "b", "c"],
    "asia-northeast1": ["a", "b", "c"],
    "asia-southeast1": ["a", "b", "c"],
}
# GPUs built into accelerator-optimized machine types (Google's machine family docs).
BUILT_IN_GPUS = [
    (re.compile(r"^a2-highgpu-(\d+)g$"), "nvidia-tesla-a100", None),
    (re.compile(r"^a2-megagpu-16g$"), "nvidia-tesla-a100", 16),
    (re.compile(r"^a2-ultragpu-(\d+)g$"), "nvidia-a100-80gb", None),
    (re.compile(r"^a3-(?:high|edge)gpu-(\d+)g$"), "nvidia-h100-80gb", None),
]
# Attachable GPUs (N1 only) the fake offers in every zone.
ATTACHABLE = {"nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p100", "nvidia-tesla-p4"}
IMAGES = {
    "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64": "X86_64",
    "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-arm64": "ARM64",
    "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts": "X86_64",
}
K8S_VERSIONS = ["1.31.5-gke.1023000", "1.30.9-gke.1009000"]
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
CLUSTER_RE = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
META_KEY_RE = re.compile(r"^[a-zA-Z0-9-_]{1,128}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CIDR_RE = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$|^[0-9a-fA-F:]+/\d{1,3}$")
PORT_RE = re.compile(r"^\d{1,5}(-\d{1,5})?$")
SKU_PAGES = ["skus.compute_engine.page1.constructed.json", "skus.compute_engine.page2.constructed.json",
             "skus.compute_engine.page3.constructed.json"]
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def now_rfc3339(t=None):
    t = time.time() if t is None else t
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "-00:00"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(self, status, message, reason=None, gstatus=None, domain="global", headers=None):
        super().__init__(message)
        self.status, self.message, self.reason, self.domain = status, message, reason, domain
        self.gstatus = gstatus or {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                                   404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED"}.get(status, "INTERNAL")
        self.headers = headers or {}

    def body(self, gke=False):
        err = {"code": self.status, "message": self.message, "status": self.gstatus}
        if not gke:
            err["errors"] = [{"message": self.message, "domain": self.domain,
                              "reason": self.reason or {400: "invalid", 404: "notFound", 409: "alreadyExists"}.get(self.status, "backendError")}]
        return {"error": err}


def invalid(message):
    return ApiError(400, message, "invalid")


def not_found(what):
    return ApiError(404, f"The resource '{what}' was not found", "notFound")


# ---- filters (the two forms Compute Engine accepts) -------------------------------

TERM_RE = re.compile(r'\(?\s*([A-Za-z0-9_.\-]+)\s*(=|!=|:)\s*("(?:[^"\\]|\\.)*"|[^\s()]+)\s*\)?')
REGEX_RE = re.compile(r'^\s*([A-Za-z0-9_.\-]+)\s+(eq|ne)\s+("?)(.*?)\3\s*$')


def field(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def parse_filter(text):
    """A predicate for `text`: AIP-160 terms joined by AND/space, or one regex term."""
    text = (text or "").strip()
    if not text:
        return lambda o: True
    m = REGEX_RE.match(text)
    if m and "=" not in text:
        path, op, _, pattern = m.groups()
        rx = re.compile(pattern)
        def regex_pred(o):
            v = field(o, path)
            hit = v is not None and rx.fullmatch(str(v)) is not None
            return hit if op == "eq" else not hit
        return regex_pred
    if re.search(r"\s(eq|ne)\s", text):
        raise invalid("Invalid list filter expression: do not mix the regular expression (eq/ne) and the comparison forms.")
    terms, pos = [], 0
    rest = re.sub(r"\bAND\b", " ", text)
    for m in TERM_RE.finditer(rest):
        if rest[pos:m.start()].strip():
            raise invalid(f"Invalid list filter expression '{text}'.")
        path, op, value = m.groups()
        if value.startswith('"'):
            value = json.loads(value)
        terms.append((path, op, value))
        pos = m.end()
    if rest[pos:].strip() or not terms:
        raise invalid(f"Invalid list filter expression '{text}'.")

    def pred(o):
        for path, op, value in terms:
            v = field(o, path)
            if op == ":":
                if value == "*":
                    if v is None:
                        return False
                elif v is None or value not in str(v):
                    return False
            elif op == "=" and (v is None or str(v) != value):
                return False
            elif op == "!=" and v is not None and str(v) == value:
                return False
        return True
    return pred


class State:
    """Everything the fake remembers, behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.machine_types = {}  # region -> {name: (cpus, shared, memory_gib)}
        with open(f"{DATA}/machinetypes_by_region.trimmed.real.csv") as f:
            for row in csv.DictReader(f, delimiter=";"):
                region = row["ZONE"]
                if region in REGION_ZONES:
                    self.machine_types.setdefault(region, {})[row["NAME"]] = (
                        int(row["CPUS"]), row["SHARED_CPU"] == "True", float(row["MEMORY_GB"]))
        self.reset()

    def reset(self):
        self.instances = {}      # zone -> name -> instance dict
        self.disks = {}          # zone -> name -> disk dict
        self.firewalls = {}      # name -> firewall dict
        self.operations = {}     # name -> op record
        self.request_ids = {}    # requestId -> op name
        self.clusters = {}       # (location, name) -> cluster dict
        self.gke_ops = {}        # name -> op record
        self.tokens = {}         # token -> {scope, expires}
        self.mints = []
        self.faults = []
        self.log = []
        self.key = None
        self.counter = 1000
        self.config = {
            "op_done_after_ms": 2000, "op_steps": 2, "running_after_gets": 1,
            "cluster_running_after_gets": 1, "cluster_deleted_after_gets": 1,
            "max_results_cap": 500, "k8s_endpoint": None, "require_token": True,
            "op_errors": [], "client_email": None,
        }

    def next_id(self):
        self.counter += 1
        return self.counter


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-gcp/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the request log is at /_fake/log
        pass

    @property
    def st(self):
        return self.server.state

    # ---- plumbing ----------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, obj=None, headers=None, content_type="application/json; charset=UTF-8", raw=None):
        body = raw if raw is not None else (b"" if obj is None else json.dumps(obj).encode())
        self.send_response(status)
        if body or raw is not None:
            self.send_header("content-type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def compute_base(self):
        return self.server.compute_url

    def container_base(self):
        return self.server.container_url

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        url = urlsplit(self.path)
        path, query = url.path.rstrip("/") or "/", {k: v[0] for k, v in parse_qs(url.query).items()}
        raw = self.read_body()
        if path.startswith("/_fake/"):
            return self.control(method, path, raw)
        st = self.st
        fault = None
        with st.lock:
            for i, f in enumerate(st.faults):
                if f.get("method", method).upper() == method and path.startswith(f.get("path", "/")):
                    fault = st.faults.pop(i)
                    break
        gke = path.startswith("/v1/projects/")
        status = 500
        try:
            if fault and not fault.get("lost_response") and not fault.get("break_response"):
                status = int(fault.get("status", 500))
                headers = {}
                if fault.get("retry_after") is not None:
                    headers["retry-after"] = str(fault["retry_after"])
                raise ApiError(status, fault.get("message", "injected error"), fault.get("reason"),
                               domain=fault.get("domain", "global"), headers=headers)
            with st.lock:
                self.tick()
                status, obj, kind = self.route(method, path, query, raw)
            if fault and fault.get("lost_response"):
                # The work is done; the answer is lost on the way back.
                status = 0
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault and fault.get("break_response") and isinstance(obj, dict):
                # Wrong types everywhere: a violation Prism must report.
                obj = {k: ["broken-by-fake"] for k in obj}
            if kind == "csv":
                self.send(status, raw=obj, content_type="text/csv; charset=utf-8")
            else:
                self.send(status, obj)
        except ApiError as e:
            status = e.status
            self.send(e.status, e.body(gke), e.headers)
        finally:
            with st.lock:
                entry = {"method": method, "path": self.path, "status": status}
                if raw and not path.startswith("/token"):
                    try:
                        entry["body"] = json.loads(raw)
                    except ValueError:
                        entry["body"] = raw.decode("utf-8", "replace")
                st.log.append(entry)

    def control(self, method, path, raw):
        st = self.st
        body = json.loads(raw) if raw else {}
        with st.lock:
            if path == "/_fake/reset" and method == "POST":
                st.reset()
                return self.send(200, {"ok": True})
            if path == "/_fake/config" and method == "POST":
                if body.pop("forget_request_ids", False):
                    # Google remembers a requestId only for a while.
                    st.request_ids.clear()
                st.config.update(body)
                return self.send(200, st.config)
            if path == "/_fake/key" and method == "POST":
                st.key = (int(body["n"], 16), int(body.get("e", 65537)))
                return self.send(200, {"ok": True})
            if path == "/_fake/next-error" and method == "POST":
                st.faults.append(body)
                return self.send(200, {"queued": len(st.faults)})
            if path == "/_fake/log" and method == "GET":
                return self.send(200, {"requests": st.log, "mints": st.mints})
            if path == "/_fake/state" and method == "GET":
                return self.send(200, {
                    "instances": [i for z in st.instances.values() for i in z.values()],
                    "disks": [d for z in st.disks.values() for d in z.values()],
                    "firewalls": list(st.firewalls.values()),
                    "operations": [o["op"] for o in st.operations.values()],
                    "clusters": list(st.clusters.values()),
                    "gke_operations": [o["op"] for o in st.gke_ops.values()],
                })
        self.send(404, {"error": f"no control {method} {path}"})

    # ---- routing -----------------------------------------------------------
    def route(self, method, path, query, raw):
        if path == "/token" and method == "POST":
            return 200, self.mint(raw), "json"
        if path == "/skypilot-catalog/master/catalogs/v8/gcp/vms.csv" and method == "GET":
            return 200, self.skypilot_csv(), "csv"
        if path == "/v1/services/6F81-5844-456A/skus" and method == "GET":
            self.authorize(billing=query.get("key"))
            return 200, self.sku_page(query), "json"
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "projects"] and len(parts) >= 5 and parts[3] == "locations":
            self.authorize()
            self.check_project(parts[2])
            return self.route_gke(method, parts[2], parts[4], parts[5:], query, raw)
        if parts[:1] == ["projects"] and len(parts) >= 2:
            self.authorize()
            self.check_project(parts[1])
            return self.route_compute(method, parts[1], parts[2:], query, raw)
        raise not_found(path)

    def authorize(self, billing=None):
        if billing or not self.st.config["require_token"]:
            return
        auth = self.headers.get("authorization") or ""
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        t = self.st.tokens.get(token)
        if t is None or t["expires"] < time.time() or CLOUD_PLATFORM not in t["scope"].split():
            raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                "login cookie or other valid authentication credential.", "authError",
                           gstatus="UNAUTHENTICATED")

    def check_project(self, project):
        if project != self.server.project:
            raise not_found(f"projects/{project}")

    # ---- OAuth token endpoint -----------------------------------------------
    def mint(self, raw):
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}

        def refuse(desc):
            return ApiError(400, desc, gstatus="INVALID_ARGUMENT")
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise refuse("unsupported grant_type")
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            raise refuse("the assertion is not a JWT")
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        if header.get("alg") != "RS256" or self.st.key is None:
            raise refuse("invalid_grant: unknown key or algorithm")
        n, e = self.st.key
        k = (n.bit_length() + 7) // 8
        sig = int.from_bytes(b64url_decode(parts[2]), "big")
        em = pow(sig, e, n).to_bytes(k, "big")
        digest = hashlib.sha256(f"{parts[0]}.{parts[1]}".encode()).digest()
        # PKCS#1 v1.5 with the SHA-256 DigestInfo prefix.
        prefix = bytes.fromhex("3031300d060960864801650304020105000420")
        expected = b"\x00\x01" + b"\xff" * (k - 3 - len(prefix) - 32) + b"\x00" + prefix + digest
        if em != expected:
            raise refuse("invalid_grant: Invalid JWT Signature.")
        now = time.time()
        email = self.st.config.get("client_email")
        if email and claims.get("iss") != email:
            raise refuse("invalid_grant: Invalid email or User ID")
        if claims.get("aud") != f"{self.server.public_url}/token":
            raise refuse("invalid_grant: Invalid JWT: aud")
        if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)) or claims["exp"] - claims["iat"] > 3600:
            raise refuse("invalid_grant: Invalid JWT: Token must be a short-lived token (60 minutes)")
        token = f"ya29.fake-{self.st.next_id()}"
        self.st.tokens[token] = {"scope": claims.get("scope", ""), "expires": now + 3599}
        self.st.mints.append({"iss": claims.get("iss"), "scope": claims.get("scope")})
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    # ---- catalogues ----------------------------------------------------------
    def skypilot_csv(self):
        with open(f"{DATA}/gcp_vms_v8.sample.csv", "rb") as f:
            body = f.read()
        with open(f"{DATA}/gcp_vms_v8.a100_rows.constructed.csv", "rb") as f:
            body += b"".join(f.readlines()[1:])
        return body

    def sku_page(self, query):
        token = query.get("pageToken")
        n = 1
        if token:
            try:
                n = int(b64url_decode(token).decode().rsplit("-", 1)[1])
            except (ValueError, IndexError):
                raise invalid("Invalid page token.")
            if not 1 <= n <= len(SKU_PAGES):
                raise invalid("Invalid page token.")
        with open(f"{DATA}/{SKU_PAGES[n - 1]}") as f:
            return json.load(f)

    # ---- time ----------------------------------------------------------------
    def tick(self):
        """Operations older than `op_done_after_ms` finish, whoever polls them."""
        limit = self.st.config["op_done_after_ms"] / 1000.0
        for rec in list(self.st.operations.values()):
            if rec["op"]["status"] != "DONE" and time.time() - rec["started"] >= limit:
                self.finish(rec)
        for rec in list(self.st.gke_ops.values()):
            if rec["op"]["status"] != "DONE" and time.time() - rec["started"] >= limit:
                self.finish_gke(rec)

    # ---- Compute Engine ------------------------------------------------------
    def route_compute(self, method, project, p, query, raw):
        if p[:1] == ["regions"] and len(p) == 2 and method == "GET":
            return 200, self.region_json(project, p[1]), "json"
        if p[:1] == ["zones"] and len(p) == 2 and method == "GET":
            return 200, self.zone_json(project, p[1]), "json"
        if p == ["aggregated", "machineTypes"] and method == "GET":
            return 200, self.aggregated(project, "machineTypes", "compute#machineTypeAggregatedList",
                                        self.all_machine_types(project), query), "json"
        if p == ["aggregated", "instances"] and method == "GET":
            items = [(z, self.instance_json(i)) for z, zi in sorted(self.st.instances.items())
                     for _, i in sorted(zi.items())]
            return 200, self.aggregated(project, "instances", "compute#instanceAggregatedList", items, query), "json"
        if p[:1] == ["zones"] and len(p) >= 3:
            zone = p[1]
            self.check_zone(zone)
            rest = p[2:]
            if rest[:1] == ["machineTypes"] and len(rest) == 2 and method == "GET":
                mt = self.machine_type(project, zone, rest[1])
                if mt is None:
                    raise not_found(f"projects/{project}/zones/{zone}/machineTypes/{rest[1]}")
                return 200, mt, "json"
            if rest == ["instances"]:
                if method == "POST":
                    return 200, self.insert_instance(project, zone, query, raw), "json"
                if method == "GET":
                    items = [self.instance_json(i) for _, i in sorted(self.st.instances.get(zone, {}).items())]
                    return 200, self.listing(project, f"zones/{zone}/instances", "compute#instanceList", items, query), "json"
            if rest[:1] == ["instances"] and len(rest) == 2:
                inst = self.st.instances.get(zone, {}).get(rest[1])
                if method == "GET":
                    if inst is None:
                        raise not_found(f"projects/{project}/zones/{zone}/instances/{rest[1]}")
                    self.advance_instance(inst)
                    return 200, self.instance_json(inst), "json"
                if method == "DELETE":
                    return 200, self.delete_instance(project, zone, rest[1], inst, query), "json"
            if rest[:1] == ["operations"] and len(rest) in (2, 3):
                return 200, self.poll(f"zones/{zone}", rest[1], method, rest[2:]), "json"
        if p[:1] == ["global"]:
            rest = p[1:]
            if rest == ["firewalls"]:
                if method == "POST":
                    return 200, self.insert_firewall(project, query, raw), "json"
                if method == "GET":
                    items = [self.firewall_json(f) for _, f in sorted(self.st.firewalls.items())]
                    return 200, self.listing(project, "global/firewalls", "compute#firewallList", items, query), "json"
            if rest[:1] == ["firewalls"] and len(rest) == 2:
                fw = self.st.firewalls.get(rest[1])
                if fw is None:
                    raise not_found(f"projects/{project}/global/firewalls/{rest[1]}")
                if method == "GET":
                    return 200, self.firewall_json(fw), "json"
                if method == "DELETE":
                    return 200, self.start_op(project, "global", "delete", f"global/firewalls/{fw['name']}",
                                              fw["id"], query, ("delete-firewall", fw["name"])), "json"
            if rest[:1] == ["operations"] and len(rest) in (2, 3):
                return 200, self.poll("global", rest[1], method, rest[2:]), "json"
        raise not_found(f"projects/{project}/{'/'.join(p)}")

    def check_zone(self, zone):
        region = zone.rsplit("-", 1)[0]
        if zone.rsplit("-", 1)[-1] not in REGION_ZONES.get(region, []):
            raise invalid(f"Invalid value for field 'zone': '{zone}'. Unknown zone.")

    def region_json(self, project, region):
        if region not in REGION_ZONES:
            raise not_found(f"projects/{project}/regions/{region}")
        return {"kind": "compute#region", "id": str(1000 + sorted(REGION_ZONES).index(region)),
                "name": region, "description": region, "status": "UP",
                "zones": [f"{self.compute_base()}/projects/{project}/zones/{region}-{z}" for z in REGION_ZONES[region]],
                "selfLink": f"{self.compute_base()}/projects/{project}/regions/{region}"}

    def zone_json(self, project, zone):
        self.check_zone(zone)
        region = zone.rsplit("-", 1)[0]
        return {"kind": "compute#zone", "id": str(2000 + abs(hash(zone)) % 1000), "name": zone,
                "description": zone, "status": "UP",
                "region": f"{self.compute_base()}/projects/{project}/regions/{region}",
                "selfLink": f"{self.compute_base()}/projects/{project}/zones/{zone}"}

    def built_in(self, name):
        for rx, accel, count in BUILT_IN_GPUS:
            m = rx.match(name)
            if m:
                return accel, count or int(m.group(1))
        return None

    def machine_type(self, project, zone, name):
        region = zone.rsplit("-", 1)[0]
        spec = self.st.machine_types.get(region, {}).get(name)
        if spec is None:
            return None
        cpus, shared, mem = spec
        mt = {"kind": "compute#machineType", "id": str(int(hashlib.md5(name.encode()).hexdigest()[:8], 16)),
              "name": name, "description": f"{cpus} vCPUs, {mem:g} GB RAM", "guestCpus": cpus,
              "memoryMb": int(round(mem * 1024)), "imageSpaceGb": 0, "maximumPersistentDisks": 128,
              "maximumPersistentDisksSizeGb": "263168", "zone": zone, "isSharedCpu": shared,
              "architecture": "X86_64",
              "selfLink": f"{self.compute_base()}/projects/{project}/zones/{zone}/machineTypes/{name}"}
        gpu = self.built_in(name)
        if gpu:
            mt["accelerators"] = [{"guestAcceleratorType": gpu[0], "guestAcceleratorCount": gpu[1]}]
        return mt

    def all_machine_types(self, project):
        out = []
        for region in sorted(self.st.machine_types):
            for z in REGION_ZONES[region]:
                zone = f"{region}-{z}"
                for name in sorted(self.st.machine_types[region]):
                    out.append((zone, self.machine_type(project, zone, name)))
        return out

    def page_bounds(self, query, total):
        try:
            size = int(query.get("maxResults", 500))
        except ValueError:
            raise invalid("Invalid value for field 'maxResults'.")
        if not 0 <= size <= 500:
            raise invalid("Invalid value for field 'maxResults': must be between 0 and 500.")
        size = min(size or 500, int(self.st.config["max_results_cap"]))
        start = 0
        if query.get("pageToken"):
            try:
                start = int(b64url_decode(query["pageToken"]).decode().split(":")[1])
            except (ValueError, IndexError):
                raise invalid("Invalid value for field 'pageToken'.")
        end = min(start + size, total)
        token = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode().rstrip("=") if end < total else None
        return start, end, token

    def listing(self, project, what, kind, items, query):
        pred = parse_filter(query.get("filter"))
        items = [i for i in items if pred(i)]
        start, end, token = self.page_bounds(query, len(items))
        out = {"kind": kind, "id": f"projects/{project}/{what}", "items": items[start:end],
               "selfLink": f"{self.compute_base()}/projects/{project}/{what}"}
        if token:
            out["nextPageToken"] = token
        return out

    def aggregated(self, project, key, kind, pairs, query):
        pred = parse_filter(query.get("filter"))
        pairs = [(z, o) for z, o in pairs if pred(o)]
        start, end, token = self.page_bounds(query, len(pairs))
        items = {}
        for z, o in pairs[start:end]:
            items.setdefault(f"zones/{z}", {key: []})[key].append(o)
        for region, zs in REGION_ZONES.items():
            for z in zs:
                items.setdefault(f"zones/{region}-{z}", {"warning": {
                    "code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope 'zones/%s-%s' on this page." % (region, z),
                    "data": [{"key": "scope", "value": f"zones/{region}-{z}"}]}})
        out = {"kind": kind, "id": f"projects/{project}/aggregated/{key}", "items": items,
               "selfLink": f"{self.compute_base()}/projects/{project}/aggregated/{key}"}
        if token:
            out["nextPageToken"] = token
        return out

    # operations ---------------------------------------------------------------
    def start_op(self, project, scope, op_type, target, target_id, query, action, error=None):
        rid = query.get("requestId")
        if rid is not None:
            if not UUID_RE.match(rid) or rid == "00000000-0000-0000-0000-000000000000":
                raise invalid(f"Invalid value for field 'requestId': '{rid}'. The request ID must be a valid UUID "
                              "with the exception that zero UUID is not supported.")
            if rid in self.st.request_ids:
                return self.st.operations[self.st.request_ids[rid]]["op"]
        oid = self.st.next_id()
        name = f"operation-{int(time.time() * 1000)}-{oid:x}-{hashlib.md5(str(oid).encode()).hexdigest()[:8]}"
        base = f"{self.compute_base()}/projects/{project}"
        op = {"kind": "compute#operation", "id": str(7000000000 + oid), "name": name, "operationType": op_type,
              "targetLink": f"{base}/{target}", "targetId": str(target_id), "status": "PENDING",
              "user": "bpr@bpr-test.iam.gserviceaccount.com", "progress": 0, "insertTime": now_rfc3339(),
              "selfLink": f"{base}/{scope}/operations/{name}"}
        if scope != "global":
            op["zone"] = f"{base}/{scope}"
        if rid is not None:
            op["clientOperationId"] = rid
            self.st.request_ids[rid] = name
        self.st.operations[name] = {"op": op, "scope": scope, "action": action, "error": error,
                                    "started": time.time(), "steps": 0}
        return op

    def poll(self, scope, name, method, tail):
        rec = self.st.operations.get(name)
        if rec is None or rec["scope"] != scope:
            raise not_found(f"projects/{self.server.project}/{scope}/operations/{name}")
        if tail == ["wait"] and method == "POST" or not tail and method == "GET":
            self.step(rec)
            return rec["op"]
        raise not_found(name)

    def step(self, rec):
        op = rec["op"]
        if op["status"] == "DONE":
            return
        rec["steps"] += 1
        if rec["steps"] >= int(self.st.config["op_steps"]):
            self.finish(rec)
        else:
            op["status"], op["progress"] = "RUNNING", 50
            op.setdefault("startTime", now_rfc3339())

    def finish(self, rec):
        op = rec["op"]
        op.setdefault("startTime", now_rfc3339())
        op["status"], op["progress"], op["endTime"] = "DONE", 100, now_rfc3339()
        kind, *args = rec["action"]
        if rec["error"]:
            err = rec["error"]
            op["error"] = {"errors": [{"code": err["code"], "message": err["message"]}]}
            op["httpErrorStatusCode"] = int(err.get("http_status", 400))
            op["httpErrorMessage"] = {400: "BAD REQUEST", 403: "FORBIDDEN", 503: "SERVICE UNAVAILABLE"}.get(
                op["httpErrorStatusCode"], "ERROR")
            if kind == "insert-instance":
                zone, name = args
                self.st.instances.get(zone, {}).pop(name, None)
                self.st.disks.get(zone, {}).pop(name, None)
            return
        if kind == "insert-instance":
            zone, name = args
            inst = self.st.instances.get(zone, {}).get(name)
            if inst:
                inst["status"] = "STAGING"
        elif kind == "delete-instance":
            zone, name = args
            inst = self.st.instances.get(zone, {}).pop(name, None)
            if inst:
                for d in inst["disks"]:
                    if d.get("autoDelete"):
                        self.st.disks.get(zone, {}).pop(d["deviceName"], None)
        elif kind == "insert-firewall":
            fw = args[0]
            self.st.firewalls[fw["name"]] = fw
        elif kind == "delete-firewall":
            self.st.firewalls.pop(args[0], None)

    # instances ----------------------------------------------------------------
    def insert_instance(self, project, zone, query, raw):
        rid = query.get("requestId")
        if rid in self.st.request_ids:
            return self.st.operations[self.st.request_ids[rid]]["op"]
        try:
            b = json.loads(raw or b"{}")
        except ValueError:
            raise invalid("Invalid JSON payload received.")
        name = b.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex "
                          "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
        if name in self.st.instances.get(zone, {}):
            raise ApiError(409, f"The resource 'projects/{project}/zones/{zone}/instances/{name}' already exists",
                           "alreadyExists")
        mt_ref = b.get("machineType") or ""
        m = re.match(r"^(?:.*/)?zones/([^/]+)/machineTypes/([^/]+)$", mt_ref)
        if not m or m.group(1) != zone:
            raise invalid(f"Invalid value for field 'resource.machineType': '{mt_ref}'. "
                          "Must be a partial or full URL of a machine type in the instance's zone.")
        mtype = m.group(2)
        if self.machine_type(project, zone, mtype) is None:
            raise invalid(f"Invalid value for field 'resource.machineType': '{mt_ref}'. "
                          f"Machine type with name '{mtype}' does not exist in zone '{zone}'.")
        disks = b.get("disks") or []
        boot = [d for d in disks if d.get("boot")]
        if len(boot) != 1:
            raise invalid("Invalid value for field 'resource.disks': exactly one boot disk is required.")
        init = boot[0].get("initializeParams") or {}
        image = init.get("sourceImage", "")
        if image.split("compute/v1/")[-1] not in IMAGES:
            raise ApiError(404, f"The resource '{image}' was not found", "notFound")
        size = init.get("diskSizeGb", "10")
        if not isinstance(size, str) or not size.isdigit() or int(size) < 10:
            raise invalid(f"Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb': '{size}'. "
                          "Requested disk size cannot be smaller than the image size (10 GB).")
        dtype = init.get("diskType", f"zones/{zone}/diskTypes/pd-standard")
        if not re.match(rf"^(?:.*/)?zones/{zone}/diskTypes/(pd-standard|pd-balanced|pd-ssd|hyperdisk-balanced)$", dtype):
            raise invalid(f"Invalid value for field 'resource.disks[0].initializeParams.diskType': '{dtype}'.")
        nics = b.get("networkInterfaces") or []
        if len(nics) != 1 or not re.match(r"^(?:.*/)?global/networks/[a-z][-a-z0-9]*$", nics[0].get("network", "global/networks/default")):
            raise invalid("Invalid value for field 'resource.networkInterfaces': one interface on a global network.")
        items = (b.get("metadata") or {}).get("items") or []
        total = 0
        for it in items:
            if not META_KEY_RE.match(it.get("key", "")):
                raise invalid(f"Invalid value for field 'resource.metadata': invalid key '{it.get('key')}'.")
            size_v = len((it.get("value") or "").encode())
            if size_v > 256 * 1024:
                raise invalid(f"Invalid value for field 'resource.metadata': value of '{it['key']}' exceeds 256 KB.")
            total += size_v
        if total >= 512 * 1024:
            raise invalid("Invalid value for field 'resource.metadata': the total size exceeds 512 KB.")
        labels = b.get("labels") or {}
        self.check_labels(labels, "resource.labels")
        for t in (b.get("tags") or {}).get("items") or []:
            if not NAME_RE.match(t):
                raise invalid(f"Invalid value for field 'resource.tags.items[]': '{t}'.")
        sched = b.get("scheduling") or {}
        accels = b.get("guestAccelerators") or []
        built_in = self.built_in(mtype)
        if accels and not mtype.startswith("n1-"):
            raise invalid(f"Invalid value for field 'resource.guestAccelerators': machine type {mtype} does not "
                          "accept attached accelerators; accelerator-optimized types come with their GPUs.")
        for a in accels:
            atype = (a.get("acceleratorType") or "").rsplit("/", 1)[-1]
            if atype not in ATTACHABLE or not isinstance(a.get("acceleratorCount"), int) or a["acceleratorCount"] < 1:
                raise invalid(f"Invalid value for field 'resource.guestAccelerators': '{a}'.")
        if (accels or built_in) and sched.get("onHostMaintenance") != "TERMINATE":
            raise invalid("Instances with guest accelerators do not support live migration: "
                          "scheduling.onHostMaintenance must be TERMINATE.")
        if sched.get("provisioningModel") == "SPOT":
            if sched.get("automaticRestart") is True or sched.get("onHostMaintenance", "MIGRATE") != "TERMINATE":
                raise invalid("Invalid value for field 'resource.scheduling': Spot VMs cannot use automaticRestart "
                              "and must use onHostMaintenance TERMINATE.")
        error = None
        for e in self.st.config["op_errors"]:
            if e.get("machine_type") in (None, mtype) and e.get("zone") in (None, zone):
                error = e
                break
        iid = self.st.next_id()
        n = iid % 250 + 2
        disk = {"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                "source": f"{self.compute_base()}/projects/{project}/zones/{zone}/disks/{name}",
                "deviceName": name, "index": 0, "boot": True, "autoDelete": bool(boot[0].get("autoDelete", False)),
                "interface": "SCSI", "diskSizeGb": size, "architecture": IMAGES[image.split("compute/v1/")[-1]]}
        inst = {"id": str(4000000000000000 + iid), "name": name, "zone": zone, "machineType": mtype,
                "status": "PROVISIONING", "created": time.time(), "gets": 0, "body": b, "disks": [disk],
                "nat_ip": f"203.0.113.{n}", "internal_ip": f"10.128.0.{n}",
                "want_external": bool((nics[0].get("accessConfigs") or []))}
        self.st.instances.setdefault(zone, {})[name] = inst
        self.st.disks.setdefault(zone, {})[name] = {"name": name, "zone": zone, "sizeGb": size,
                                                     "autoDelete": disk["autoDelete"], "image": image}
        return self.start_op(project, f"zones/{zone}", "insert", f"zones/{zone}/instances/{name}", inst["id"],
                             query, ("insert-instance", zone, name), error)

    def check_labels(self, labels, where):
        if not isinstance(labels, dict) or len(labels) > 64:
            raise invalid(f"Invalid value for field '{where}': at most 64 labels.")
        for k, v in labels.items():
            if not LABEL_KEY_RE.match(k) or not isinstance(v, str) or not LABEL_VALUE_RE.match(v):
                raise invalid(f"Invalid value for field '{where}': label '{k}'='{v}' breaks the label rules "
                              "(keys start with a lowercase letter; keys and values use [a-z0-9_-], at most 63 characters).")

    def advance_instance(self, inst):
        inst["gets"] += 1
        if inst["status"] == "STAGING" and inst["gets"] >= int(self.st.config["running_after_gets"]):
            inst["status"] = "RUNNING"
            inst["started"] = time.time()

    def instance_json(self, inst):
        b, project, zone = inst["body"], self.server.project, inst["zone"]
        base = f"{self.compute_base()}/projects/{project}"
        ac = []
        if inst["want_external"]:
            ac = [{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT", "name": "External NAT",
                   "networkTier": "PREMIUM"}]
            if inst["status"] == "RUNNING":
                ac[0]["natIP"] = inst["nat_ip"]
        nic = {"kind": "compute#networkInterface", "name": "nic0", "network": f"{base}/global/networks/default",
               "subnetwork": f"{base}/regions/{zone.rsplit('-', 1)[0]}/subnetworks/default",
               "networkIP": inst["internal_ip"], "accessConfigs": ac, "stackType": "IPV4_ONLY", "fingerprint": "abc="}
        out = {
            "kind": "compute#instance", "id": inst["id"], "creationTimestamp": now_rfc3339(inst["created"]),
            "name": inst["name"], "description": b.get("description", ""),
            "tags": {"items": list((b.get("tags") or {}).get("items") or []), "fingerprint": "42WmSpB8rSM="},
            "machineType": f"{base}/zones/{zone}/machineTypes/{inst['machineType']}",
            "status": inst["status"], "zone": f"{base}/zones/{zone}", "canIpForward": False,
            "networkInterfaces": [nic], "disks": inst["disks"],
            "metadata": {"kind": "compute#metadata", "fingerprint": "xyz=", "items": list((b.get("metadata") or {}).get("items") or [])},
            "selfLink": f"{base}/zones/{zone}/instances/{inst['name']}",
            "scheduling": {"onHostMaintenance": "MIGRATE", "automaticRestart": True, "preemptible": False,
                           "provisioningModel": "STANDARD", **(b.get("scheduling") or {})},
            "cpuPlatform": "Intel Cascade Lake", "labels": dict(b.get("labels") or {}),
            "labelFingerprint": "abc=", "startRestricted": False, "deletionProtection": False,
            "fingerprint": "def=",
        }
        if b.get("guestAccelerators"):
            out["guestAccelerators"] = [{"acceleratorType": f"{base}/zones/{zone}/acceleratorTypes/{a['acceleratorType'].rsplit('/', 1)[-1]}",
                                         "acceleratorCount": a["acceleratorCount"]} for a in b["guestAccelerators"]]
        if inst.get("started"):
            out["lastStartTimestamp"] = now_rfc3339(inst["started"])
        return out

    def delete_instance(self, project, zone, name, inst, query):
        rid = query.get("requestId")
        if rid in self.st.request_ids:
            return self.st.operations[self.st.request_ids[rid]]["op"]
        if inst is None:
            raise not_found(f"projects/{project}/zones/{zone}/instances/{name}")
        inst["status"] = "STOPPING"
        return self.start_op(project, f"zones/{zone}", "delete", f"zones/{zone}/instances/{name}", inst["id"],
                             query, ("delete-instance", zone, name))

    # firewalls ----------------------------------------------------------------
    def insert_firewall(self, project, query, raw):
        rid = query.get("requestId")
        if rid in self.st.request_ids:
            return self.st.operations[self.st.request_ids[rid]]["op"]
        b = json.loads(raw or b"{}")
        name = b.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise invalid(f"Invalid value for field 'resource.name': '{name}'.")
        pending = any(r["action"][:1] == ("insert-firewall",) and r["action"][1]["name"] == name
                      and r["op"]["status"] != "DONE" for r in self.st.operations.values())
        if name in self.st.firewalls or pending:
            raise ApiError(409, f"The resource 'projects/{project}/global/firewalls/{name}' already exists", "alreadyExists")
        if b.get("direction", "INGRESS") != "INGRESS":
            raise invalid("Invalid value for field 'resource.direction'.")
        if not b.get("sourceRanges"):
            raise invalid("Invalid value for field 'resource.sourceRanges': an ingress rule needs a source.")
        ranges = b["sourceRanges"]
        if not all(isinstance(c, str) and CIDR_RE.match(c) for c in ranges):
            raise invalid(f"Invalid value for field 'resource.sourceRanges': {ranges}.")
        if len({":" in c for c in ranges}) > 1:
            raise invalid("Invalid value for field 'resource.sourceRanges': IPv4 and IPv6 ranges cannot be mixed.")
        allowed = b.get("allowed") or []
        if not allowed:
            raise invalid("Invalid value for field 'resource.allowed': at least one rule.")
        for a in allowed:
            if a.get("IPProtocol") not in ("tcp", "udp", "icmp", "all"):
                raise invalid(f"Invalid value for field 'resource.allowed[].IPProtocol': '{a.get('IPProtocol')}'.")
            for p in a.get("ports") or []:
                if not isinstance(p, str) or not PORT_RE.match(p):
                    raise invalid(f"Invalid value for field 'resource.allowed[].ports[]': '{p}'.")
        for t in b.get("targetTags") or []:
            if not NAME_RE.match(t):
                raise invalid(f"Invalid value for field 'resource.targetTags[]': '{t}'.")
        fid = self.st.next_id()
        fw = {"kind": "compute#firewall", "id": str(5000000000000000 + fid), "creationTimestamp": now_rfc3339(),
              "name": name, "description": b.get("description", ""),
              "network": f"{self.compute_base()}/projects/{project}/global/networks/default",
              "priority": int(b.get("priority", 1000)), "sourceRanges": list(ranges),
              "targetTags": list(b.get("targetTags") or []), "allowed": allowed, "direction": "INGRESS",
              "logConfig": {"enable": False}, "disabled": False,
              "selfLink": f"{self.compute_base()}/projects/{project}/global/firewalls/{name}"}
        return self.start_op(project, "global", "insert", f"global/firewalls/{name}", fw["id"], query,
                             ("insert-firewall", fw))

    def firewall_json(self, fw):
        return fw

    # ---- GKE -------------------------------------------------------------------
    def route_gke(self, method, project, location, p, query, raw):
        region = location if location in REGION_ZONES else location.rsplit("-", 1)[0]
        if region not in REGION_ZONES or (location != region and location.rsplit("-", 1)[1] not in REGION_ZONES[region]):
            raise ApiError(400, f"Location \"{location}\" is not a valid location.")
        if p == ["clusters"]:
            if method == "POST":
                return 200, self.create_cluster(project, location, raw), "json"
            if method == "GET":
                return 200, {"clusters": [self.cluster_json(c) for (loc, _), c in sorted(self.st.clusters.items())
                                          if loc == location]}, "json"
        if p[:1] == ["clusters"] and len(p) == 2:
            c = self.st.clusters.get((location, p[1]))
            if c is None:
                raise ApiError(404, f"Not found: projects/{project}/locations/{location}/clusters/{p[1]}.")
            if method == "GET":
                c["gets"] += 1
                cfg = self.st.config
                if c["status"] == "PROVISIONING" and c["gets"] >= int(cfg["cluster_running_after_gets"]):
                    c["status"] = "RUNNING"
                elif c["status"] == "STOPPING" and c["gets"] >= c["delete_at"]:
                    del self.st.clusters[(location, p[1])]
                    raise ApiError(404, f"Not found: projects/{project}/locations/{location}/clusters/{p[1]}.")
                return 200, self.cluster_json(c), "json"
            if method == "DELETE":
                if c["status"] == "STOPPING":
                    raise ApiError(400, f"Cluster {p[1]} is already being deleted.", gstatus="FAILED_PRECONDITION")
                c["status"] = "STOPPING"
                c["delete_at"] = c["gets"] + int(self.st.config["cluster_deleted_after_gets"])
                return 200, self.gke_op(project, location, "DELETE_CLUSTER", p[1], ("delete", location, p[1])), "json"
        if p[:1] == ["operations"] and len(p) == 2 and method == "GET":
            rec = self.st.gke_ops.get(p[1])
            if rec is None:
                raise ApiError(404, f"Not found: projects/{project}/locations/{location}/operations/{p[1]}.")
            rec["steps"] += 1
            if rec["steps"] >= int(self.st.config["op_steps"]):
                self.finish_gke(rec)
            elif rec["op"]["status"] == "PENDING":
                rec["op"]["status"] = "RUNNING"
            return 200, rec["op"], "json"
        raise ApiError(404, f"Not found: {'/'.join(p)}.")

    def create_cluster(self, project, location, raw):
        b = json.loads(raw or b"{}")
        c = b.get("cluster")
        if not isinstance(c, dict):
            raise ApiError(400, "Cluster is required.")
        name = c.get("name")
        if not isinstance(name, str) or not CLUSTER_RE.match(name):
            raise ApiError(400, f"Invalid cluster name \"{name}\": at most 40 characters of [a-z0-9-], starting "
                                "with a letter and ending with a letter or digit.")
        pools = c.get("nodePools")
        if "initialNodeCount" in c or "nodeConfig" in c:
            raise ApiError(400, "Cluster.initial_node_count and Cluster.node_config are deprecated; this stand-in "
                                "accepts node pools only (Cluster.node_pools).")
        if not isinstance(pools, list) or not pools:
            raise ApiError(400, "Cluster.node_pools must have at least one node pool.")
        self.check_labels(c.get("resourceLabels") or {}, "cluster.resource_labels")
        zones = [location] if location not in REGION_ZONES else [f"{location}-{z}" for z in REGION_ZONES[location]]
        out_pools = []
        for np in pools:
            pname = np.get("name")
            if not isinstance(pname, str) or not CLUSTER_RE.match(pname):
                raise ApiError(400, f"Invalid node pool name \"{pname}\".")
            count = np.get("initialNodeCount")
            if not isinstance(count, int) or count < 1:
                raise ApiError(400, f"Node pool \"{pname}\": initial_node_count must be at least 1.")
            mtype = (np.get("config") or {}).get("machineType", "e2-medium")
            if self.machine_type(project, zones[0], mtype) is None:
                raise ApiError(400, f"Node pool \"{pname}\": machine type \"{mtype}\" is not available in {location}.")
            auto = np.get("autoscaling") or {}
            if auto.get("enabled") and auto.get("totalMinNodeCount", 0) > auto.get("totalMaxNodeCount", 0):
                raise ApiError(400, f"Node pool \"{pname}\": total_min_node_count exceeds total_max_node_count.")
            locs = np.get("locations") or zones
            if not set(locs) <= set(zones):
                raise ApiError(400, f"Node pool \"{pname}\": locations {locs} are not in {location}.")
            out_pools.append({**np, "locations": locs, "status": "PROVISIONING", "version": K8S_VERSIONS[0],
                              "selfLink": f"{self.container_base()}/v1/projects/{project}/locations/{location}/clusters/{name}/nodePools/{pname}"})
        if (location, name) in self.st.clusters:
            raise ApiError(409, f"Already exists: projects/{project}/locations/{location}/clusters/{name}.")
        version = c.get("initialClusterVersion") or "latest"
        match = [v for v in K8S_VERSIONS if version in ("latest", "-") or v == version or v.startswith(f"{version}.")]
        if not match:
            raise ApiError(400, f"Master version \"{version}\" is unsupported.")
        cid = hashlib.md5(f"{location}/{name}/{time.time()}".encode()).hexdigest()
        self.st.clusters[(location, name)] = {
            "id": cid, "name": name, "location": location, "zones": zones, "status": "PROVISIONING",
            "version": match[0], "pools": out_pools, "labels": dict(c.get("resourceLabels") or {}),
            "created": time.time(), "gets": 0, "body": c, "n": self.st.next_id() % 250 + 2,
        }
        return self.gke_op(project, location, "CREATE_CLUSTER", name, ("create", location, name))

    def gke_op(self, project, location, op_type, cluster, action):
        oid = self.st.next_id()
        name = f"operation-{int(time.time() * 1000)}-{oid:x}"
        base = f"{self.container_base()}/v1/projects/{project}/locations/{location}"
        op = {"name": name, "zone": location, "location": location, "operationType": op_type, "status": "RUNNING",
              "selfLink": f"{base}/operations/{name}", "targetLink": f"{base}/clusters/{cluster}",
              "startTime": now_rfc3339()}
        self.st.gke_ops[name] = {"op": op, "action": action, "started": time.time(), "steps": 0}
        return op

    def finish_gke(self, rec):
        op = rec["op"]
        op["status"], op["endTime"] = "DONE", now_rfc3339()
        kind, location, name = rec["action"]
        c = self.st.clusters.get((location, name))
        if kind == "create" and c and c["status"] == "PROVISIONING":
            c["status"] = "RUNNING"
        elif kind == "delete" and c:
            del self.st.clusters[(location, name)]

    def cluster_json(self, c):
        running = c["status"] == "RUNNING"
        pem = ("-----BEGIN CERTIFICATE-----\nMIIBfakeGKEca" + c["id"] + "\n-----END CERTIFICATE-----\n")
        out = {
            "name": c["name"], "id": c["id"], "location": c["location"], "zone": c["location"],
            "locations": c["zones"], "status": c["status"], "resourceLabels": c["labels"],
            "nodePools": [{**p, "status": "RUNNING" if running else p["status"]} for p in c["pools"]],
            "currentMasterVersion": c["version"], "currentNodeVersion": c["version"],
            "initialClusterVersion": c["body"].get("initialClusterVersion", "latest"),
            "createTime": now_rfc3339(c["created"]), "network": "default", "subnetwork": "default",
            "selfLink": f"{self.container_base()}/v1/projects/{self.server.project}/locations/{c['location']}/clusters/{c['name']}",
            "masterAuth": {"clusterCaCertificate": base64.b64encode(pem.encode()).decode()} if running else {},
            "currentNodeCount": sum(p["initialNodeCount"] * len(p["locations"]) for p in c["pools"]) if running else 0,
        }
        if running:
            out["endpoint"] = self.st.config.get("k8s_endpoint") or f"34.118.{c['n']}.10"
        if c["status"] == "STOPPING":
            out["statusMessage"] = "Deleting cluster"
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--project", default="bpr-test")
    ap.add_argument("--compute-url", default=None)
    ap.add_argument("--container-url", default=None)
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.state = State()
    srv.project = args.project
    srv.public_url = f"http://{args.host}:{args.port}"
    srv.compute_url = (args.compute_url or srv.public_url).rstrip("/")
    srv.container_url = (args.container_url or srv.public_url).rstrip("/")
    print(f"fake Google Cloud on {srv.public_url}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
