#!/usr/bin/env python3
"""A stateful fake of the Vultr API v2 for the provider tests.

Only the Python 3.11 standard library is used. It serves the subset the `vultr`
component calls, with Vultr's JSON shapes and paths (at the root, as in Vultr's
OpenAPI spec: `/instances`, not `/v2/instances`), so that Prism (in proxy mode, in
front of this server) finds every answer valid against `vultr-v2.json` next to
this file:

- public (no key): `GET /plans?type=&per_page=&cursor=`, `GET /plans-metal`,
  `GET /os`, `GET /kubernetes/versions`;
- `/instances` (list with `tag`, `label`, `region` filters; create; get; delete),
  `/bare-metals` (same, without filters), `/ssh-keys`, `/firewalls` and
  `/firewalls/{id}/rules`, `/kubernetes/clusters` (create, list, get, delete,
  `delete-with-linked-resources`, `config`).

Behaviour modelled on the real API:
- every list is cursor-paged: `per_page` (default 100, max 500) and
  `meta.links.next`, an opaque cursor (base64 of `next__<id>`, as Vultr's) that is
  `""` on the last page;
- `GET /plans` without `type` (or `type=all`) lists the non-GPU plans and
  `type=vcg` the Cloud GPU ones (`vcg-*` ids), as Vultr does;
- errors are `{"error": "...", "status": N}`; a plan that does not exist or is
  not offered in the region is `400 Invalid plan chosen.` (the answer Vultr gives
  in both cases); a missing or unknown key is `401`;
- instances go `pending` -> `active`/`installingbooting` (address assigned) ->
  `active`/`ok` after `active_after_gets` GETs (or `active_after_ms`), and are
  gone (404) once deleted; a firewall group still attached to an instance cannot
  be deleted (400);
- VKE clusters go `pending` -> `active` after `cluster_running_after_gets` GETs;
  their `/config` is a base64 kubeconfig with a client certificate (the
  test-only `vke-test-*` PEMs next to this file) for `k8s_endpoint`.

Test controls (not part of the Vultr API; tests call this server directly):
- `POST /_fake/reset` forgets everything (also the request log and config);
- `POST /_fake/config` sets `{"active_after_gets": N, "active_after_ms": T,
  "cluster_running_after_gets": N, "max_per_page": N, "k8s_endpoint": URL}`
  (`max_per_page` caps every page whatever `per_page` asks, so tests see several
  pages; `k8s_endpoint` is the API server URL written into cluster kubeconfigs,
  e.g. a local kmock);
- `POST /_fake/next-error` queues one fault for the next request matching
  `method` and `path` prefix (both optional):
  `{"status": 429}` answers 429 (add `"retry_after": S` for a `Retry-After`
  header); `{"status": 400, "message": "..."}` answers that status with a Vultr
  error body; `{"lost_response": true}` performs the request, then closes the
  connection without answering (the client sees a reset; the work is done);
  `"skip": N` lets the first N matching requests through untouched;
  `{"break_response": true}` performs the request and answers with every
  top-level value replaced by a string (a schema violation, to prove that
  Prism's response validation is on);
- `GET /_fake/log` lists `{method, path, status}` of every API request served;
- `GET /_fake/state` dumps instances (with decoded user data), bare metals, SSH
  keys, firewall groups with their rules, and clusters.

Usage: fake_vultr.py --port 27031 [--plans FILE]
"""

import argparse
import base64
import json
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = __file__.rsplit("/", 1)[0]

# Region ids of the recorded plans' locations (plus `blr`, where the recorded
# A40 plan is).
REGIONS = {"ewr", "ord", "dfw", "sea", "lax", "atl", "ams", "lhr", "fra", "sjc", "syd",
           "yto", "cdg", "nrt", "icn", "mia", "sgp", "blr"}
# Operating systems (`GET /os`): the real ids and names Vultr uses for these.
OS_LIST = [
    {"id": 2284, "name": "Ubuntu 24.04 LTS x64", "arch": "x64", "family": "ubuntu"},
    {"id": 1743, "name": "Ubuntu 22.04 LTS x64", "arch": "x64", "family": "ubuntu"},
    {"id": 2136, "name": "Debian 12 x64 (bookworm)", "arch": "x64", "family": "debian"},
    {"id": 159, "name": "Custom", "arch": "x64", "family": "iso"},
]
K8S_VERSIONS = ["v1.31.2+1", "v1.30.6+1", "v1.29.10+1"]
PUBLIC = {("GET", "plans"), ("GET", "plans-metal"), ("GET", "os"), ("GET", "kubernetes/versions")}


def now_iso(t=None):
    t = time.time() if t is None else t
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class ApiError(Exception):
    """An error answer: HTTP status and Vultr's `error` text."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def not_found():
    return ApiError(404, "Not found")


def bad(message):
    return ApiError(400, message)


def found(table, ident):
    """`table[ident]`, or a 404 answer."""
    if ident not in table:
        raise not_found()
    return table[ident]


def cursor_for(kind, ident):
    return base64.b64encode(f"{kind}__{ident}".encode()).decode()


class State:
    """Everything the fake remembers, behind one lock."""

    def __init__(self, plans, metal):
        self.lock = threading.Lock()
        self.plans, self.metal = plans, metal
        self.reset()

    def reset(self):
        self.instances = {}
        self.bare_metals = {}
        self.keys = {}
        self.firewalls = {}
        self.clusters = {}
        self.faults = []
        self.log = []
        self.next_n = 1
        self.config = {"active_after_gets": 2, "active_after_ms": 3000,
                       "cluster_running_after_gets": 1, "max_per_page": 500,
                       "k8s_endpoint": None}

    def n(self):
        self.next_n += 1
        return self.next_n


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-vultr/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; the request log is in /_fake/log
        pass

    @property
    def st(self):
        return self.server.state

    def body_json(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise bad("Invalid JSON body.")
        if not isinstance(body, dict):
            raise bad("Invalid JSON body.")
        return body

    def send(self, status, obj=None, extra_headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("content-type", "application/json")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def page(self, key, items, query, ident=lambda x: x["id"]):
        """One page of `items` in Vultr's envelope, with opaque cursors."""
        try:
            per_page = int(query.get("per_page", ["100"])[0])
        except ValueError:
            raise bad("per_page must be an integer.")
        if not 1 <= per_page <= 500:
            raise bad("per_page must be between 1 and 500.")
        per_page = min(per_page, int(self.st.config["max_per_page"]))
        start = 0
        cursor = query.get("cursor", [""])[0]
        if cursor:
            try:
                kind, at = base64.b64decode(cursor, validate=True).decode().split("__", 1)
            except (ValueError, UnicodeDecodeError):
                raise bad("Invalid cursor.")
            ids = [str(ident(x)) for x in items]
            if kind != "next" or at not in ids:
                raise bad("Invalid cursor.")
            start = ids.index(at)
        chunk = items[start:start + per_page]
        rest = items[start + per_page:]
        return {key: chunk, "meta": {
            "total": len(items),
            "links": {
                "next": cursor_for("next", ident(rest[0])) if rest else "",
                "prev": cursor_for("prev", ident(chunk[0])) if start > 0 and chunk else "",
            },
        }}

    # ---- dispatch --------------------------------------------------------
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_PUT(self):
        self.dispatch("PUT")

    def dispatch(self, method):
        url = urlsplit(self.path)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        if path.startswith("/_fake/"):
            return self.control(method, path)
        st = self.st
        fault = None
        with st.lock:
            for i, f in enumerate(st.faults):
                if f.get("method", method).upper() == method and path.startswith(f.get("path", "/")):
                    if f.get("skip", 0) > 0:
                        f["skip"] -= 1
                        break
                    fault = st.faults.pop(i)
                    break
        status = 500
        try:
            if fault and not fault.get("lost_response") and not fault.get("break_response"):
                self.body_json()  # drain the body
                status = int(fault.get("status", 500))
                headers = {}
                if "retry_after" in fault:
                    headers["retry-after"] = str(fault["retry_after"])
                default = {429: "Rate limit reached - please try your request again later.",
                           401: "Invalid API token.", 404: "Not found"}.get(status, "injected error")
                self.send(status, {"error": fault.get("message", default), "status": status}, headers)
                return
            parts = path.strip("/").split("/")
            public = (method, "/".join(parts)) in PUBLIC
            if not public and not (self.headers.get("authorization") or "").lower().startswith("bearer "):
                raise ApiError(401, "Invalid API token.")
            with st.lock:
                status, obj = self.route(method, parts, query)
            if fault and fault.get("lost_response"):
                # The work is done; the answer is lost on the way back.
                status = 0
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault and fault.get("break_response") and obj is not None:
                # Every top-level value becomes a string (`{"instance": "broken"}`):
                # a type violation Prism must catch.
                obj = {k: "broken-by-fake" for k in obj}
            self.send(status, obj)
        except ApiError as e:
            status = e.status
            self.send(e.status, {"error": e.message, "status": e.status})
        finally:
            with st.lock:
                st.log.append({"method": method, "path": self.path, "status": status})

    def control(self, method, path):
        st = self.st
        body = self.body_json() if method == "POST" else {}
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
                return self.send(200, {
                    "instances": [dict(self.instance_json(i), user_data=i["user_data"],
                                       sshkey_id=i["sshkey_id"]) for i in st.instances.values()],
                    "bare_metals": [self.metal_json(b) for b in st.bare_metals.values()],
                    "ssh_keys": list(st.keys.values()),
                    "firewalls": [dict(self.firewall_json(f), rules=f["rules"]) for f in st.firewalls.values()],
                    "clusters": [self.cluster_json(c) for c in st.clusters.values()],
                })
        self.send(404, {"error": f"no control {method} {path}", "status": 404})

    def route(self, method, p, query):
        st = self.st
        if p == ["plans"] and method == "GET":
            kind = query.get("type", ["all"])[0]
            if kind == "vcg":
                items = [x for x in st.plans if x["id"].startswith("vcg-")]
            elif kind == "all":
                items = [x for x in st.plans if not x["id"].startswith("vcg-")]
            else:
                items = [x for x in st.plans if x.get("type") == kind]
            return 200, self.page("plans", items, query)
        if p == ["plans-metal"] and method == "GET":
            return 200, self.page("plans_metal", st.metal, query)
        if p == ["os"] and method == "GET":
            return 200, self.page("os", OS_LIST, query)
        if p == ["kubernetes", "versions"] and method == "GET":
            return 200, {"versions": K8S_VERSIONS}
        if p == ["instances"]:
            if method == "GET":
                return 200, self.list_instances(query)
            if method == "POST":
                return 202, {"instance": self.instance_json(self.create_instance(self.body_json(), metal=False))}
        if len(p) == 2 and p[0] == "instances":
            i = found(st.instances, p[1])
            if method == "GET":
                self.advance(i)
                return 200, {"instance": self.instance_json(i)}
            if method == "DELETE":
                del st.instances[i["id"]]
                return 204, None
        if p == ["bare-metals"]:
            if method == "GET":
                items = sorted(st.bare_metals.values(), key=lambda b: b["n"])
                out = self.page("bare_metals", items, query)
                out["bare_metals"] = [self.metal_json(b) for b in out["bare_metals"]]
                return 200, out
            if method == "POST":
                return 202, {"bare_metal": self.metal_json(self.create_instance(self.body_json(), metal=True))}
        if len(p) == 2 and p[0] == "bare-metals":
            b = found(st.bare_metals, p[1])
            if method == "GET":
                self.advance(b)
                return 200, {"bare_metal": self.metal_json(b)}
            if method == "DELETE":
                del st.bare_metals[b["id"]]
                return 204, None
        if p == ["ssh-keys"]:
            if method == "GET":
                return 200, self.page("ssh_keys", sorted(st.keys.values(), key=lambda k: k["date_created"] + k["id"]), query)
            if method == "POST":
                return 201, {"ssh_key": self.create_key(self.body_json())}
        if len(p) == 2 and p[0] == "ssh-keys":
            k = found(st.keys, p[1])
            if method == "GET":
                return 200, {"ssh_key": k}
            if method == "DELETE":
                del st.keys[k["id"]]
                return 204, None
        if p == ["firewalls"]:
            if method == "GET":
                items = sorted(st.firewalls.values(), key=lambda f: f["n"])
                out = self.page("firewall_groups", items, query)
                out["firewall_groups"] = [self.firewall_json(f) for f in out["firewall_groups"]]
                return 200, out
            if method == "POST":
                return 201, {"firewall_group": self.firewall_json(self.create_firewall(self.body_json()))}
        if len(p) >= 2 and p[0] == "firewalls":
            fw = found(st.firewalls, p[1])
            if len(p) == 2 and method == "GET":
                return 200, {"firewall_group": self.firewall_json(fw)}
            if len(p) == 2 and method == "DELETE":
                attached = [i for i in st.instances.values() if i["firewall_group_id"] == fw["id"]]
                if attached:
                    raise bad(f"Unable to delete firewall group: it is in use by {len(attached)} instance(s).")
                del st.firewalls[fw["id"]]
                return 204, None
            if p[2:] == ["rules"] and method == "GET":
                return 200, self.page("firewall_rules", fw["rules"], query)
            if p[2:] == ["rules"] and method == "POST":
                return 201, {"firewall_rule": self.create_rule(fw, self.body_json())}
        if p[:2] == ["kubernetes", "clusters"]:
            return self.route_k8s(method, p[2:], query)
        raise not_found()

    # ---- instances and bare metals ----------------------------------------
    def advance(self, i):
        i["gets"] += 1
        cfg = self.st.config
        elapsed_ms = (time.time() - i["created"]) * 1000
        ready = i["gets"] >= cfg["active_after_gets"] or elapsed_ms >= cfg["active_after_ms"]
        if i["status"] == "pending" and ready:
            i["status"], i["server_status"] = "active", "installingbooting"
        elif i["status"] == "active" and i["server_status"] != "ok":
            i["server_status"] = "ok"

    def list_instances(self, query):
        tag = query.get("tag", [None])[0]
        label = query.get("label", [None])[0]
        region = query.get("region", [None])[0]
        items = [i for i in self.st.instances.values()
                 if (tag is None or tag in i["tags"]) and (label is None or i["label"] == label)
                 and (region is None or i["region"] == region)]
        items.sort(key=lambda i: i["n"])
        out = self.page("instances", items, query)
        out["instances"] = [self.instance_json(i) for i in out["instances"]]
        return out

    def create_instance(self, b, metal):
        st = self.st
        region, plan_id = b.get("region"), b.get("plan")
        if region not in REGIONS:
            raise bad("Invalid region chosen.")
        plans = st.metal if metal else st.plans
        plan = next((x for x in plans if x["id"] == plan_id), None)
        if plan is None or region not in plan.get("locations", []) or plan.get("deploy_ondemand") is False:
            raise bad("Invalid plan chosen.")
        sources = [k for k in ("os_id", "iso_id", "snapshot_id", "app_id", "image_id") if b.get(k) not in (None, "", 0)]
        if len(sources) != 1:
            raise bad("You must choose exactly one of os_id, iso_id, snapshot_id, app_id or image_id.")
        if "os_id" in sources and not any(o["id"] == b["os_id"] for o in OS_LIST):
            raise bad("Invalid operating system.")
        if "backups" in b and b["backups"] not in ("enabled", "disabled"):
            raise bad("Invalid backups option.")
        keys = b.get("sshkey_id") or []
        for k in keys:
            if k not in st.keys:
                raise bad(f"Invalid SSH key: {k}")
        fw = b.get("firewall_group_id") or ""
        if fw and fw not in st.firewalls:
            raise bad("Invalid firewall group.")
        user_data = None
        if b.get("user_data"):
            try:
                user_data = base64.b64decode(b["user_data"], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise bad("user_data must be base64 encoded.")
        tags = b.get("tags") or []
        if not all(isinstance(t, str) for t in tags):
            raise bad("Tags must be strings.")
        n = st.n()
        i = {
            "id": str(uuid.uuid4()), "n": n, "region": region, "plan": plan, "label": b.get("label", ""),
            "hostname": b.get("hostname") or f"vultr-guest-{n}", "tags": list(tags), "status": "pending",
            "server_status": "none", "power_status": "running", "created": time.time(), "gets": 0,
            "os_id": b.get("os_id", 0), "user_data": user_data, "sshkey_id": list(keys),
            "firewall_group_id": fw, "main_ip": f"192.0.2.{n % 250 + 2}", "internal_ip": f"10.1.96.{n % 250 + 2}",
            "metal": metal,
        }
        (st.bare_metals if metal else st.instances)[i["id"]] = i
        return i

    def os_name(self, os_id):
        return next((o["name"] for o in OS_LIST if o["id"] == os_id), "Application")

    def instance_json(self, i):
        plan, up = i["plan"], i["status"] != "pending"
        return {
            "id": i["id"], "os": self.os_name(i["os_id"]), "ram": plan["ram"], "disk": plan.get("disk", 0),
            "main_ip": i["main_ip"] if up else "0.0.0.0", "vcpu_count": plan["vcpu_count"],
            "region": i["region"], "plan": plan["id"], "date_created": now_iso(i["created"]),
            "status": i["status"], "allowed_bandwidth": plan.get("bandwidth", 1000),
            "netmask_v4": "255.255.254.0" if up else "", "gateway_v4": "192.0.2.1" if up else "0.0.0.0",
            "power_status": i["power_status"], "server_status": i["server_status"],
            "v6_networks": [], "v6_main_ip": "", "label": i["label"], "internal_ip": i["internal_ip"] if up else "",
            "kvm": f"https://my.vultr.com/subs/vps/novnc/api.php?data=fake{i['n']}" if up else "",
            "hostname": i["hostname"], "os_id": i["os_id"], "app_id": 0, "image_id": "",
            "firewall_group_id": i["firewall_group_id"], "features": [], "tags": i["tags"],
            "user_scheme": "root",
        }

    def metal_json(self, b):
        plan, up = b["plan"], b["status"] != "pending"
        return {
            "id": b["id"], "os": self.os_name(b["os_id"]), "ram": f"{plan['ram']} MB",
            "disk": f"{plan.get('disk_count', 1)}x {plan.get('disk')}GB {plan.get('type', 'SSD')}",
            "main_ip": b["main_ip"] if up else "", "cpu_count": plan.get("cpu_count", 1),
            "region": b["region"], "date_created": now_iso(b["created"]), "status": b["status"],
            "netmask_v4": "255.255.254.0" if up else "", "gateway_v4": "192.0.2.1" if up else "",
            "plan": plan["id"], "v6_network": "", "v6_main_ip": "", "v6_network_size": 0,
            "label": b["label"], "mac_address": 2199756823533 + b["n"], "os_id": b["os_id"], "app_id": 0,
            "image_id": "", "tags": b["tags"],
        }

    # ---- ssh keys --------------------------------------------------------
    def create_key(self, b):
        name, key = b.get("name"), b.get("ssh_key")
        if not isinstance(name, str) or not name or not isinstance(key, str):
            raise bad("name and ssh_key are required.")
        fields = key.split()
        try:
            if len(fields) < 2 or not base64.b64decode(fields[1], validate=True):
                raise ValueError
        except ValueError:
            raise bad("Invalid SSH key.")
        k = {"id": str(uuid.uuid4()), "date_created": now_iso(), "name": name, "ssh_key": key}
        self.st.keys[k["id"]] = k
        return k

    # ---- firewalls -------------------------------------------------------
    def create_firewall(self, b):
        desc = b.get("description", "")
        if not isinstance(desc, str):
            raise bad("description must be a string.")
        fw = {"id": str(uuid.uuid4()), "n": self.st.n(), "description": desc,
              "date_created": now_iso(), "rules": []}
        self.st.firewalls[fw["id"]] = fw
        return fw

    def firewall_json(self, fw):
        count = sum(1 for i in self.st.instances.values() if i["firewall_group_id"] == fw["id"])
        return {"id": fw["id"], "description": fw["description"], "date_created": fw["date_created"],
                "date_modified": fw["date_created"], "instance_count": count,
                "rule_count": len(fw["rules"]), "max_rule_count": 50}

    def create_rule(self, fw, b):
        ip_type, proto = b.get("ip_type"), str(b.get("protocol", "")).lower()
        subnet, size, port = b.get("subnet"), b.get("subnet_size"), b.get("port", "")
        if ip_type not in ("v4", "v6"):
            raise bad("ip_type must be v4 or v6.")
        if proto not in ("icmp", "tcp", "udp", "gre", "esp", "ah"):
            raise bad("Invalid protocol.")
        if not isinstance(subnet, str) or not isinstance(size, int):
            raise bad("subnet and subnet_size are required.")
        if (ip_type == "v4") != ("." in subnet) or not 0 <= size <= (32 if ip_type == "v4" else 128):
            raise bad("The subnet does not match ip_type.")
        if proto in ("tcp", "udp"):
            lo, _, hi = str(port).partition(":")
            if not lo.isdigit() or (hi and (not hi.isdigit() or int(hi) < int(lo))):
                raise bad("Invalid port: use a port or a colon separated range.")
        if len(fw["rules"]) >= 50:
            raise bad("This firewall group has reached its maximum number of rules.")
        rule = {"id": len(fw["rules"]) + 1, "type": ip_type, "ip_type": ip_type, "action": "accept",
                "protocol": proto, "port": str(port), "subnet": subnet, "subnet_size": size,
                "source": b.get("source", ""), "notes": b.get("notes", "")}
        fw["rules"].append(rule)
        return rule

    # ---- kubernetes ------------------------------------------------------
    def route_k8s(self, method, p, query):
        st = self.st
        if not p:
            if method == "GET":
                items = sorted(st.clusters.values(), key=lambda c: c["n"])
                out = self.page("vke_clusters", items, query)
                out["vke_clusters"] = [self.cluster_json(c) for c in out["vke_clusters"]]
                return 200, out
            if method == "POST":
                return 201, {"vke_cluster": self.cluster_json(self.create_cluster(self.body_json()))}
            raise not_found()
        c = st.clusters.get(p[0])
        if c is None:
            raise not_found()
        if len(p) == 1 and method == "GET":
            c["gets"] += 1
            if c["status"] == "pending" and c["gets"] >= st.config["cluster_running_after_gets"]:
                c["status"] = "active"
            return 200, {"vke_cluster": self.cluster_json(c)}
        if (len(p) == 1 or p[1:] == ["delete-with-linked-resources"]) and method == "DELETE":
            del st.clusters[c["id"]]
            return 204, None
        if p[1:] == ["config"] and method == "GET":
            return 200, {"kube_config": base64.b64encode(self.kubeconfig(c).encode()).decode()}
        raise not_found()

    def create_cluster(self, b):
        label, region, version, pools = b.get("label", ""), b.get("region"), b.get("version"), b.get("node_pools")
        if region not in REGIONS:
            raise bad("Invalid region chosen.")
        if version not in K8S_VERSIONS:
            raise bad("Invalid Kubernetes version.")
        if not isinstance(pools, list) or not pools:
            raise bad("At least one node pool is required.")
        out_pools, seen = [], set()
        for np in pools:
            plan = next((x for x in self.st.plans if x["id"] == np.get("plan")), None)
            if plan is None or region not in plan.get("locations", []):
                raise bad("Invalid plan chosen.")
            if plan.get("monthly_cost", 0) < 10:
                raise bad("The node pool plan must cost at least $10 a month.")
            if not isinstance(np.get("node_quantity"), int) or np["node_quantity"] < 1:
                raise bad("node_quantity must be at least 1.")
            if np.get("label") in seen or not np.get("label"):
                raise bad("Node pool labels must be unique and not empty.")
            seen.add(np["label"])
            out_pools.append({
                "id": str(uuid.uuid4()), "date_created": now_iso(), "date_updated": now_iso(),
                "label": np["label"], "tag": np.get("tag", ""), "plan": plan["id"], "status": "pending",
                "node_quantity": np["node_quantity"], "min_nodes": np.get("min_nodes", np["node_quantity"]),
                "max_nodes": np.get("max_nodes", np["node_quantity"]), "auto_scaler": bool(np.get("auto_scaler")),
                "nodes": [{"id": str(uuid.uuid4()), "label": f"{np['label']}-{k}", "date_created": now_iso(),
                           "status": "pending"} for k in range(np["node_quantity"])],
            })
        c = {"id": str(uuid.uuid4()), "n": self.st.n(), "label": label, "region": region, "version": version,
             "node_pools": out_pools, "status": "pending", "created": time.time(), "gets": 0,
             "ha": bool(b.get("ha_controlplanes"))}
        self.st.clusters[c["id"]] = c
        return c

    def cluster_json(self, c):
        up = c["status"] == "active"
        for pool in c["node_pools"]:
            pool["status"] = c["status"]
            for node in pool["nodes"]:
                node["status"] = c["status"]
        return {
            "id": c["id"], "firewall_group_id": "", "label": c["label"], "date_created": now_iso(c["created"]),
            "cluster_subnet": "10.244.0.0/16", "service_subnet": "10.96.0.0/12",
            "ip": "203.0.113.10" if up else "0.0.0.0", "endpoint": f"{c['id']}.vultr-k8s.com",
            "version": c["version"], "region": c["region"], "status": c["status"],
            "ha_controlplanes": c["ha"], "node_pools": c["node_pools"],
        }

    def kubeconfig(self, c):
        def pem(name):
            with open(f"{HERE}/{name}", "rb") as f:
                return base64.b64encode(f.read()).decode()
        server = self.st.config.get("k8s_endpoint") or f"https://{c['id']}.vultr-k8s.com:6443"
        return (
            "apiVersion: v1\n"
            "clusters:\n"
            "- cluster:\n"
            f"    certificate-authority-data: {pem('vke-test-ca.crt')}\n"
            f"    server: {server}\n"
            f"  name: vke-{c['id']}\n"
            "contexts:\n"
            "- context:\n"
            f"    cluster: vke-{c['id']}\n"
            "    user: admin\n"
            f"  name: vke-{c['id']}\n"
            f"current-context: vke-{c['id']}\n"
            "kind: Config\n"
            "preferences: {}\n"
            "users:\n"
            "- name: admin\n"
            "  user:\n"
            f"    client-certificate-data: {pem('vke-test-client.crt')}\n"
            f"    client-key-data: {pem('vke-test-client.key')}\n"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--plans", default=f"{HERE}/plans.json")
    args = ap.parse_args()
    with open(args.plans) as f:
        data = json.load(f)
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(data["plans"], data["plans_metal"])
    print(f"fake Vultr API on http://{args.host}:{args.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
