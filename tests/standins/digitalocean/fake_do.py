#!/usr/bin/env python3
"""A stateful fake of the DigitalOcean API v2 for the provider tests.

Only the Python 3.11 standard library is used. It serves the subset the
`digitalocean` component calls (sizes, droplets and their power_off/power_on
actions, SSH keys, firewalls, tags, Kubernetes clusters and their credentials) with DigitalOcean's JSON shapes, so
that Prism (in proxy mode, in front of this server) finds every answer valid
against the official OpenAPI spec (`digitalocean-compute.yaml` next to this file).

State lives in memory:
- droplets go `new` -> `active` after `active_after_gets` GETs of that droplet
  or `active_after_ms` milliseconds, whichever comes first;
- deleted droplets, keys, firewalls and clusters answer 404 afterwards;
- sizes come from `sizes.json` (recorded DigitalOcean size objects, see the
  README) and every list is really paged (`page`, `per_page`,
  `links.pages.{first,prev,next,last}`, `meta.total`).

Test controls (not part of the DigitalOcean API, never proxied through Prism's
validation because tests call this server directly):
- `POST /_fake/reset` forgets everything (also the request log and config);
- `POST /_fake/config` sets `{"active_after_gets": N, "active_after_ms": T,
  "cluster_running_after_gets": N, "max_per_page": N, "k8s_endpoint": URL}`
  (`max_per_page` caps every page, so tests see several pages whatever
  `per_page` the client asks; `k8s_endpoint` is the API server URL running
  clusters and their credentials report, e.g. a local kmock, instead of
  `https://<id>.k8s.ondigitalocean.com`);
- `POST /_fake/next-error` queues one injected fault for the next request that
  matches `method` and `path` prefix (both optional):
  `{"status": 429, "reset_in_s": 3}` answers 429 with `ratelimit-reset` = now + 3;
  `{"status": 422, "message": "..."}` answers that status with a DO error body;
  `{"lost_response": true}` performs the request, then closes the connection
  without answering (the client sees a reset; the droplet exists);
  `{"break_response": true}` performs the request and answers with every
  top-level value replaced by a string (a schema violation, to prove that
  Prism's response validation is on);
- `GET /_fake/log` lists `{method, path, status}` of every API request served;
- `GET /_fake/state` dumps droplets, keys, firewalls and clusters.

Usage: fake_do.py --port 4011 [--public-url http://127.0.0.1:4010] [--sizes FILE]
`--public-url` is the base written into `links.pages.*` (Prism's URL, so that
clients following the links stay behind the validating proxy).
"""

import argparse
import base64
import hashlib
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, quote

HERE = __file__.rsplit("/", 1)[0]

# Region objects as DigitalOcean names them (names from the API's /v2/regions).
REGION_NAMES = {
    "ams2": "Amsterdam 2", "ams3": "Amsterdam 3", "blr1": "Bangalore 1",
    "fra1": "Frankfurt 1", "lon1": "London 1", "nyc1": "New York 1",
    "nyc2": "New York 2", "nyc3": "New York 3", "sfo1": "San Francisco 1",
    "sfo2": "San Francisco 2", "sfo3": "San Francisco 3", "sgp1": "Singapore 1",
    "syd1": "Sydney 1", "tor1": "Toronto 1", "atl1": "Atlanta 1",
}
# Public image slugs the fake knows (others are 422, as in DigitalOcean).
IMAGES = {
    "ubuntu-24-04-x64": (160000001, "24.04 (LTS) x64"),
    "ubuntu-22-04-x64": (160000002, "22.04 (LTS) x64"),
    "debian-12-x64": (160000003, "12 x64"),
}
K8S_VERSIONS = ["1.31.1-do.5", "1.30.5-do.5"]
NAME_RE = re.compile(r"^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_\-:]+$")
FIREWALL_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.\-]+$")


def now_iso(t=None):
    t = time.time() if t is None else t
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error answer: HTTP status, DO error id and message."""

    def __init__(self, status, ident, message):
        super().__init__(message)
        self.status, self.ident, self.message = status, ident, message


def not_found():
    return ApiError(404, "not_found", "The resource you were accessing could not be found.")


def unprocessable(message):
    return ApiError(422, "unprocessable_entity", message)


class State:
    """Everything the fake remembers, behind one lock."""

    def __init__(self, sizes):
        self.lock = threading.Lock()
        self.sizes = sizes
        self.reset()

    def reset(self):
        self.droplets = {}
        self.deleted_droplets = set()
        self.keys = {}
        self.firewalls = {}
        self.tags = set()
        self.clusters = {}
        self.faults = []
        self.log = []
        self.next_id = 300000001
        self.config = {"active_after_gets": 2, "active_after_ms": 3000, "cluster_running_after_gets": 1,
                       "max_per_page": 200, "k8s_endpoint": None}

    def new_id(self):
        self.next_id += 1
        return self.next_id


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-digitalocean/1"
    protocol_version = "HTTP/1.1"

    # ---- plumbing -------------------------------------------------------
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
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "bad_request", "The request body is not valid JSON.")

    def send(self, status, obj=None, extra_headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        headers = {
            "ratelimit-limit": "5000",
            "ratelimit-remaining": "4999",
            "ratelimit-reset": str(int(time.time()) + 60),
        }
        if obj is not None:
            headers["content-type"] = "application/json; charset=utf-8"
        headers.update(extra_headers or {})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def public_base(self):
        return self.server.public_url or f"http://{self.headers.get('host', '127.0.0.1')}"

    def page(self, key, items, query):
        """One page of `items` in DO's envelope, with absolute page links."""
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", ["20"])[0])
        except ValueError:
            raise unprocessable("page and per_page must be integers")
        if page < 1 or not 1 <= per_page <= 200:
            raise unprocessable("page must be >= 1 and per_page between 1 and 200")
        # Like DigitalOcean's own cap (200), but settable so tests get many pages.
        per_page = min(per_page, int(self.st.config["max_per_page"]))
        total = len(items)
        last = max(1, (total + per_page - 1) // per_page)
        chunk = items[(page - 1) * per_page: page * per_page]
        path = urlsplit(self.path).path
        rest = {k: v[0] for k, v in query.items() if k not in ("page", "per_page")}

        def link(n):
            q = "&".join(f"{k}={quote(v, safe='')}" for k, v in rest.items())
            return f"{self.public_base()}{path}?page={n}&per_page={per_page}" + (f"&{q}" if q else "")

        pages = {}
        if page > 1:
            pages["first"] = link(1)
            pages["prev"] = link(page - 1)
        if page < last:
            pages["next"] = link(page + 1)
            pages["last"] = link(last)
        return {key: chunk, "links": {"pages": pages} if pages else {}, "meta": {"total": total}}

    # ---- dispatch --------------------------------------------------------
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

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
                    fault = st.faults.pop(i)
                    break
        status = 500
        try:
            if fault and not fault.get("lost_response") and not fault.get("break_response"):
                body = self.body_json()  # drain the body
                del body
                status = int(fault.get("status", 500))
                if status == 429:
                    reset = int(time.time()) + int(fault.get("reset_in_s", 2))
                    self.send(429, {"id": "too_many_requests", "message": "API Rate limit exceeded."},
                              {"ratelimit-reset": str(reset), "ratelimit-remaining": "0"})
                    return
                ident = {401: "unauthorized", 404: "not_found", 422: "unprocessable_entity"}.get(status, "server_error")
                self.send(status, {"id": ident, "message": fault.get("message", "injected error")})
                return
            if not (self.headers.get("authorization") or "").lower().startswith("bearer "):
                raise ApiError(401, "unauthorized", "Unable to authenticate you")
            with st.lock:
                status, obj = self.route(method, path, query)
            if fault and fault.get("lost_response"):
                # The work is done; the answer is lost on the way back.
                status = 0
                self.close_connection = True
                try:
                    import socket
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault and fault.get("break_response") and obj is not None:
                # Every top-level value becomes a string (`{"droplet": "broken"}`):
                # a type violation Prism must catch. (DigitalOcean's spec marks
                # no top-level field required for single-resource answers, so
                # a merely missing field would pass.)
                obj = {k: "broken-by-fake" for k in obj}
            self.send(status, obj)
        except ApiError as e:
            status = e.status
            self.send(e.status, {"id": e.ident, "message": e.message})
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
                    "droplets": [self.droplet_json(d) for d in st.droplets.values()],
                    "deleted_droplets": sorted(st.deleted_droplets),
                    "ssh_keys": list(st.keys.values()),
                    "firewalls": list(st.firewalls.values()),
                    "tags": sorted(st.tags),
                    "clusters": [self.cluster_json(c) for c in st.clusters.values()],
                })
        self.send(404, {"id": "not_found", "message": f"no control {method} {path}"})

    def route(self, method, path, query):
        parts = path.strip("/").split("/")
        if parts[:1] != ["v2"]:
            raise not_found()
        p = parts[1:]
        if p == ["sizes"] and method == "GET":
            return 200, self.page("sizes", self.st.sizes, query)
        if p == ["droplets"]:
            if method == "GET":
                return 200, self.list_droplets(query)
            if method == "POST":
                return 202, self.create_droplet(self.body_json())
        if len(p) == 3 and p[0] == "droplets" and p[2] == "actions" and method == "POST":
            return 201, self.droplet_action(self.find_droplet(p[1]), self.body_json())
        if len(p) == 2 and p[0] == "droplets":
            d = self.find_droplet(p[1])
            if method == "GET":
                self.advance(d)
                return 200, {"droplet": self.droplet_json(d)}
            if method == "DELETE":
                del self.st.droplets[d["id"]]
                self.st.deleted_droplets.add(d["id"])
                return 204, None
        if p == ["account", "keys"]:
            if method == "GET":
                return 200, self.page("ssh_keys", list(self.st.keys.values()), query)
            if method == "POST":
                return 201, {"ssh_key": self.create_key(self.body_json())}
        if len(p) == 3 and p[:2] == ["account", "keys"]:
            k = self.find_key(p[2])
            if method == "GET":
                return 200, {"ssh_key": k}
            if method == "DELETE":
                del self.st.keys[k["id"]]
                return 204, None
        if p == ["firewalls"]:
            if method == "GET":
                return 200, self.page("firewalls", list(self.st.firewalls.values()), query)
            if method == "POST":
                return 202, {"firewall": self.create_firewall(self.body_json())}
        if len(p) == 2 and p[0] == "firewalls":
            fw = self.st.firewalls.get(p[1])
            if fw is None:
                raise not_found()
            if method == "GET":
                return 200, {"firewall": fw}
            if method == "DELETE":
                del self.st.firewalls[fw["id"]]
                return 204, None
        if p == ["tags"]:
            if method == "GET":
                return 200, self.page("tags", [self.tag_json(t) for t in sorted(self.st.tags)], query)
            if method == "POST":
                name = self.body_json().get("name", "")
                if not isinstance(name, str) or not TAG_RE.match(name) or len(name) > 255:
                    raise ApiError(400, "bad_request", "tag name is invalid")
                self.st.tags.add(name)
                return 201, {"tag": self.tag_json(name)}
        if len(p) == 2 and p[0] == "tags":
            if p[1] not in self.st.tags:
                raise not_found()
            if method == "GET":
                return 200, {"tag": self.tag_json(p[1])}
            if method == "DELETE":
                self.st.tags.discard(p[1])
                return 204, None
        if p[:2] == ["kubernetes", "clusters"]:
            return self.route_k8s(method, p[2:], query)
        raise not_found()

    # ---- droplets --------------------------------------------------------
    def find_droplet(self, raw):
        try:
            did = int(raw)
        except ValueError:
            raise ApiError(400, "bad_request", "droplet id must be an integer")
        d = self.st.droplets.get(did)
        if d is None:
            raise not_found()
        return d

    def advance(self, d):
        d["gets"] += 1
        cfg = self.st.config
        elapsed_ms = (time.time() - d["created"]) * 1000
        if d["status"] == "new" and (d["gets"] >= cfg["active_after_gets"] or elapsed_ms >= cfg["active_after_ms"]):
            d["status"] = "active"

    def list_droplets(self, query):
        tag = query.get("tag_name", [None])[0]
        items = [d for d in self.st.droplets.values() if tag is None or tag in d["tags"]]
        items.sort(key=lambda d: d["id"])
        out = self.page("droplets", items, query)
        out["droplets"] = [self.droplet_json(d) for d in out["droplets"]]
        return out

    def size(self, slug):
        for s in self.st.sizes:
            if s["slug"] == slug:
                return s
        return None

    def create_droplet(self, b):
        if "names" in b:
            raise unprocessable("this fake creates one droplet per request; use `name`")
        name, size_slug, region, image = b.get("name"), b.get("size"), b.get("region"), b.get("image")
        if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 255:
            raise unprocessable("Name is invalid. Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
        size = self.size(size_slug)
        if size is None:
            raise unprocessable("You specified an invalid size for Droplet creation.")
        if region not in REGION_NAMES:
            raise unprocessable("You specified an invalid region for Droplet creation.")
        if region not in size["regions"] or not size.get("available", True):
            raise unprocessable("Size is not available in this region.")
        if isinstance(image, int):
            image = next((slug for slug, (iid, _) in IMAGES.items() if iid == image), image)
        if image not in IMAGES:
            raise unprocessable("You specified an invalid image for Droplet creation.")
        key_ids = []
        for k in b.get("ssh_keys") or []:
            key = self.find_key(str(k), missing=lambda: unprocessable(f"SSH key {k} is invalid."))
            key_ids.append(key["id"])
        tags = b.get("tags") or []
        for t in tags:
            if not isinstance(t, str) or not TAG_RE.match(t) or len(t) > 255:
                raise unprocessable(f"Tag {t!r} is invalid: tags may contain letters, numbers, colons, dashes and underscores.")
        self.st.tags.update(tags)
        did = self.st.new_id()
        n = did % 250 + 2
        d = {
            "id": did, "name": name, "size": size, "region": region, "image": image,
            "tags": list(tags), "status": "new", "created": time.time(), "gets": 0,
            "user_data": b.get("user_data"), "ssh_key_ids": key_ids,
            "public_ip": f"203.0.113.{n}", "private_ip": f"10.10.0.{n}",
        }
        self.st.droplets[did] = d
        return {"droplet": self.droplet_json(d),
                "links": {"actions": [{"id": did + 7, "rel": "create",
                                       "href": f"{self.public_base()}/v2/actions/{did + 7}"}]}}

    def droplet_action(self, d, b):
        """`power_off` / `power_on` (what the component's `power` export uses),
        done at once: DigitalOcean answers 422 when the droplet is already in
        the asked state or still being created."""
        kind = b.get("type")
        if kind not in ("power_off", "power_on"):
            raise unprocessable(f"this fake supports the droplet actions power_off and power_on, not {kind!r}")
        if d["status"] == "new":
            raise unprocessable("Droplet is currently being created; try again later.")
        if kind == "power_off":
            if d["status"] == "off":
                raise unprocessable("Droplet is already powered off.")
            d["status"] = "off"
        else:
            if d["status"] == "active":
                raise unprocessable("Droplet is already powered on.")
            d["status"] = "active"
        aid = self.st.new_id()
        stamp = now_iso()
        return {"action": {"id": aid, "status": "completed", "type": kind, "started_at": stamp,
                           "completed_at": stamp, "resource_id": d["id"], "resource_type": "droplet",
                           "region": {"name": REGION_NAMES[d["region"]], "slug": d["region"],
                                      "features": ["private_networking", "backups", "ipv6", "metadata"],
                                      "available": True,
                                      "sizes": [s["slug"] for s in self.st.sizes if d["region"] in s["regions"]]},
                           "region_slug": d["region"]}}

    def droplet_json(self, d):
        size, region = d["size"], d["region"]
        iid, iname = IMAGES[d["image"]]
        v4 = []
        if d["status"] != "new":
            v4 = [
                {"ip_address": d["public_ip"], "netmask": "255.255.255.0", "gateway": "203.0.113.1", "type": "public"},
                {"ip_address": d["private_ip"], "netmask": "255.255.0.0", "gateway": "10.10.0.1", "type": "private"},
            ]
        return {
            "id": d["id"], "name": d["name"], "memory": size["memory"], "vcpus": size["vcpus"],
            "disk": size["disk"], "locked": False, "status": d["status"],
            "kernel": None, "created_at": now_iso(d["created"]),
            "features": ["droplet_agent", "private_networking"], "backup_ids": [],
            "next_backup_window": None, "snapshot_ids": [],
            "image": {"id": iid, "name": iname, "type": "base", "distribution": "Ubuntu" if d["image"].startswith("ubuntu") else "Debian",
                      "slug": d["image"], "public": True, "regions": ["nyc1", "nyc3", "sfo3", "ams3", "fra1", "tor1"],
                      "created_at": "2024-04-25T00:00:00Z", "min_disk_size": 7, "size_gigabytes": 2.36,
                      "tags": [], "status": "available", "description": "Ubuntu " + iname},
            "volume_ids": [], "size": size, "size_slug": size["slug"],
            "networks": {"v4": v4, "v6": []},
            "region": {"name": REGION_NAMES[region], "slug": region, "features": ["private_networking", "backups", "ipv6", "metadata"],
                       "available": True, "sizes": [s["slug"] for s in self.st.sizes if region in s["regions"]]},
            "tags": d["tags"], "vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
        }

    # ---- ssh keys --------------------------------------------------------
    def find_key(self, ident, missing=not_found):
        for k in self.st.keys.values():
            if str(k["id"]) == ident or k["fingerprint"] == ident:
                return k
        raise missing()

    def create_key(self, b):
        pub, name = b.get("public_key"), b.get("name")
        if not isinstance(pub, str) or not isinstance(name, str) or not name:
            raise unprocessable("public_key and name are required")
        fields = pub.split()
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except (IndexError, ValueError):
            raise unprocessable("Key invalid, key should be of the format `type key [comment]`")
        fp = ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())
        if any(k["fingerprint"] == fp for k in self.st.keys.values()):
            raise unprocessable("SSH Key is already in use on your account")
        key = {"id": self.st.new_id(), "fingerprint": fp, "public_key": pub, "name": name}
        self.st.keys[key["id"]] = key
        return key

    # ---- firewalls -------------------------------------------------------
    def create_firewall(self, b):
        name = b.get("name")
        if not isinstance(name, str) or not FIREWALL_NAME_RE.match(name):
            raise unprocessable("name is invalid: letters, digits, '.' and '-' only")
        inbound, outbound = b.get("inbound_rules") or [], b.get("outbound_rules") or []
        for r in inbound + outbound:
            if r.get("protocol") not in ("tcp", "udp", "icmp"):
                raise unprocessable("protocol must be tcp, udp or icmp")
        for t in b.get("tags") or []:
            if t not in self.st.tags:
                raise unprocessable(f"tag {t} does not exist")
        fw = {
            "id": str(uuid.uuid4()), "status": "succeeded", "created_at": now_iso(),
            "pending_changes": [], "name": name, "droplet_ids": list(b.get("droplet_ids") or []),
            "tags": list(b.get("tags") or []), "inbound_rules": inbound, "outbound_rules": outbound,
        }
        self.st.firewalls[fw["id"]] = fw
        return fw

    def tag_json(self, name):
        n = sum(1 for d in self.st.droplets.values() if name in d["tags"])
        return {"name": name, "resources": {"count": n, "droplets": {"count": n}}}

    # ---- kubernetes ------------------------------------------------------
    def route_k8s(self, method, p, query):
        st = self.st
        if not p:
            if method == "GET":
                out = self.page("kubernetes_clusters", sorted(st.clusters.values(), key=lambda c: c["created"]), query)
                out["kubernetes_clusters"] = [self.cluster_json(c) for c in out["kubernetes_clusters"]]
                return 200, out
            if method == "POST":
                return 201, {"kubernetes_cluster": self.cluster_json(self.create_cluster(self.body_json()))}
            raise not_found()
        c = st.clusters.get(p[0])
        if c is None:
            raise not_found()
        if len(p) == 1 and method == "GET":
            c["gets"] += 1
            if c["state"] == "provisioning" and c["gets"] >= st.config["cluster_running_after_gets"]:
                c["state"] = "running"
            return 200, {"kubernetes_cluster": self.cluster_json(c)}
        if len(p) == 1 and method == "DELETE":
            del st.clusters[c["id"]]
            return 204, None
        if p[1:] == ["credentials"] and method == "GET":
            pem = "-----BEGIN CERTIFICATE-----\nMIIBfakeCAfor" + c["id"].replace("-", "") + "\n-----END CERTIFICATE-----\n"
            exp = datetime.now(timezone.utc) + timedelta(days=7)
            return 200, {
                "server": self.k8s_endpoint(c),
                "certificate_authority_data": base64.b64encode(pem.encode()).decode(),
                "client_certificate_data": None, "client_key_data": None,
                "token": "dop_v1_fake_cluster_token_" + c["id"].replace("-", ""),
                "expires_at": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        raise not_found()

    def create_cluster(self, b):
        name, region, version, pools = b.get("name"), b.get("region"), b.get("version"), b.get("node_pools")
        if not isinstance(name, str) or not name:
            raise unprocessable("name is required")
        if any(c["name"] == name for c in self.st.clusters.values()):
            raise unprocessable(f"a cluster with the name {name} already exists")
        if region not in REGION_NAMES:
            raise unprocessable("region is invalid")
        if version == "latest":
            version = K8S_VERSIONS[0]
        match = [v for v in K8S_VERSIONS if v == version or v.startswith(f"{version}.")]
        if not match:
            raise unprocessable(f"version {version} is not supported")
        if not isinstance(pools, list) or not pools:
            raise unprocessable("at least one node pool is required")
        out_pools = []
        for np in pools:
            size = self.size(np.get("size"))
            if size is None or region not in size["regions"]:
                raise unprocessable("Size is not available in this region.")
            if not isinstance(np.get("count"), int) or np["count"] < 1:
                raise unprocessable("node pool count must be at least 1")
            out_pools.append({
                "id": str(uuid.uuid4()), "name": np.get("name"), "size": np["size"], "count": np["count"],
                "tags": list(np.get("tags") or []), "labels": None, "taints": [],
                "auto_scale": bool(np.get("auto_scale", False)),
                "min_nodes": np.get("min_nodes", 0), "max_nodes": np.get("max_nodes", 0), "nodes": [],
            })
        cid = str(uuid.uuid4())
        c = {"id": cid, "name": name, "region": region, "version": match[0],
             "tags": list(b.get("tags") or []) + ["k8s", f"k8s:{cid}"], "node_pools": out_pools,
             "state": "provisioning", "created": time.time(), "gets": 0}
        self.st.clusters[cid] = c
        return c

    def k8s_endpoint(self, c):
        return self.st.config.get("k8s_endpoint") or f"https://{c['id']}.k8s.ondigitalocean.com"

    def cluster_json(self, c):
        running = c["state"] == "running"
        return {
            "id": c["id"], "name": c["name"], "region": c["region"], "version": c["version"],
            "cluster_subnet": "10.244.0.0/16", "service_subnet": "10.245.0.0/16",
            "vpc_uuid": "c33931f2-a26a-4e61-b85c-4e95a2ec431b",
            "ipv4": "68.183.121.157" if running else "",
            "endpoint": self.k8s_endpoint(c) if running else "",
            "tags": c["tags"], "node_pools": c["node_pools"],
            "maintenance_policy": {"start_time": "00:00", "duration": "4h0m0s", "day": "any"},
            "auto_upgrade": False,
            "status": {"state": c["state"], "message": "Ready" if running else "Provisioning"},
            "created_at": now_iso(c["created"]), "updated_at": now_iso(),
            "surge_upgrade": False, "registry_enabled": False, "ha": False,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--public-url", default=None)
    ap.add_argument("--sizes", default=f"{HERE}/sizes.json")
    args = ap.parse_args()
    with open(args.sizes) as f:
        sizes = json.load(f)["sizes"]
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(sizes)
    srv.public_url = args.public_url.rstrip("/") if args.public_url else None
    print(f"fake DigitalOcean API on http://{args.host}:{args.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
