"""kmock 0.8 with the project's shim for its known gaps (shared/testing/stand-ins.md §4).

Usage: python shim.py PORT   (listens on 127.0.0.1:PORT until SIGTERM/SIGINT)

kmock serves discovery, GET, LIST and WATCH from its in-memory store; this subclass
takes over every object-changing verb so that it behaves like a real apiserver for
one field manager:

* server-side apply (PATCH, application/apply-patch+yaml) creates a missing object
  (201) and replaces the applied fields of an existing one (status is kept), which is
  what a real server does when a single manager owns every field;
* create answers 201; every write stamps uid, resourceVersion, generation and
  creationTimestamp like the real server (generation moves only on spec changes);
* errors carry the real reasons `NotFound` / `AlreadyExists` / `UnsupportedMediaType`,
  so kube's `get_opt` returns None and reason matching works;
* deleting a namespace deletes the objects in it (the real server does it
  asynchronously; nothing here finalizes, so it is immediate);
* `/api/v1/namespaces[/NAME]` is the namespaces resource (kmock misparses it);
* merge patches to the `status` subresource only touch `status`, so tests can seed
  rollout status (nothing reconciles here);
* `GET .../pods/NAME/log` serves the pod's log (no container runs here): the text of
  its `kmock-shim/log` annotation, which tests seed, with `tailLines`, `limitBytes`,
  `container` (checked against the pod's containers) and `follow` (lines appended to
  the annotation later are streamed until the pod is deleted or 300 s pass).
"""

import asyncio
import copy
import datetime
import itertools
import signal
import sys
import uuid

import aiohttp.web
import kmock
from kmock._internal import apps, dicts, enums, k8s, parsing

_parse_path = parsing.parse_path


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    """kmock reads `/api/v1/namespaces/NAME` as namespace NAME with no resource; it is
    the cluster-scoped `namespaces` resource (only `status`/`finalize` are its subpaths)."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and (
        len(parts) <= 4 or (len(parts) == 5 and parts[4] in ("status", "finalize"))
    ):
        return parsing.ParsedPath(
            group="",
            version="v1",
            plural="namespaces",
            namespace=None,
            name=parts[3] if len(parts) > 3 else None,
            subresource=parts[4] if len(parts) > 4 else None,
        )
    return _parse_path(path)


parsing.parse_path = _parse_path_with_namespaces

_RESOURCE_VERSION = itertools.count(1)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, request, name: str | None):
    details = {"name": name or "", "kind": request.resource.plural if request.resource else ""}
    if request.resource is not None and request.resource.group:
        details["group"] = request.resource.group
    return aiohttp.web.json_response(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
            "details": details,
        },
        status=code,
    )


class ShimEmulator(k8s.KubernetesEmulator):
    """KubernetesEmulator with real-apiserver write semantics (see module doc)."""

    # kmock's own reasons for the errors it still raises (GET/LIST of missing things).
    _REASONS = {
        "Object Not Found": "NotFound",
        "Resource Not Found": "NotFound",
        "Not Found": "NotFound",
        "Object Already Exists": "AlreadyExists",
    }

    async def _render_error(self, exc):
        if isinstance(exc, k8s.KubernetesError):
            exc = type(exc)(
                status=exc.status,
                reason=self._REASONS.get(exc.reason, exc.reason),
                message=exc.message,
                details={},
            )
        return await super()._render_error(exc)

    async def _serve_list(self, request):
        # A real server knows every built-in resource: an empty list, not 404.
        try:
            return await super()._serve_list(request)
        except k8s.KubernetesResourceNotFoundError:
            return {"metadata": {"resourceVersion": "0"}, "items": []}

    async def _handle(self, request):
        try:
            return await self._dispatch(request)
        finally:
            self._forget_requests()

    def _forget_requests(self) -> None:
        # kmock records every request (for pytest assertions) and its matching slows down
        # as the record grows; a long-running stand-in must not keep them.
        if len(self._requests) > 200:
            del self._requests[:-50]
            for payload in self._payloads:
                for view in payload._walk(object):
                    log = getattr(view, "_requests", None)
                    if isinstance(log, list):
                        del log[:]

    async def _dispatch(self, request):
        if request.resource is None:
            return await super()._handle(request)
        if (
            request.subresource == "log"
            and request.resource.plural == "pods"
            and request.action == enums.action.FETCH
        ):
            return await self._log(request)
        if request.action == enums.action.CREATE:
            return await self._create(request)
        if request.action == enums.action.UPDATE and request.name is not None:
            return await self._patch(request)
        if request.action == enums.action.DELETE and request.name is not None:
            return await self._delete(request)
        return await super()._handle(request)

    def _key(self, request, namespace, name):
        return (request.resource, namespace, name)

    def _live(self, key):
        return key in self._objects and not self._objects[key].deleted

    async def _store(self, request, key, obj, event):
        if key in self._objects:
            self._objects[key].create(obj)  # a new version replaces the old one
        else:
            self._objects[key] = obj
        raw = self._objects[key].raw
        await self._buses[request.resource].put({"type": event, "object": copy.deepcopy(raw)})
        return raw

    async def _create(self, request, name=None, status=201):
        obj = copy.deepcopy(request.data or {})
        meta = obj.setdefault("metadata", {})
        name = name or meta.get("name")
        namespace = request.namespace or meta.get("namespace")
        if not name:
            return _status(422, "Invalid", "metadata.name: Required value", request, name)
        key = self._key(request, namespace, name)
        async with self._lock:
            if self._live(key):
                msg = f'{request.resource.plural} "{name}" already exists'
                return _status(409, "AlreadyExists", msg, request, name)
            meta["name"] = name
            if namespace is not None:
                meta["namespace"] = namespace
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(next(_RESOURCE_VERSION))
            meta["generation"] = 1
            meta["creationTimestamp"] = _now()
            raw = await self._store(request, key, obj, "ADDED")
        return aiohttp.web.json_response(raw, status=status)

    async def _patch(self, request):
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        key = self._key(request, request.namespace, request.name)
        apply = content_type == "application/apply-patch+yaml"
        if not self._live(key):
            if apply and request.subresource is None:
                return await self._create(request, name=request.name, status=201)
            msg = f'{request.resource.plural} "{request.name}" not found'
            return _status(404, "NotFound", msg, request, request.name)
        if content_type not in (
            "application/apply-patch+yaml",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            msg = f"the shim does not emulate {content_type!r} patches"
            return _status(415, "UnsupportedMediaType", msg, request, request.name)
        body = copy.deepcopy(request.data or {})
        async with self._lock:
            old = copy.deepcopy(self._objects[key].raw)
            if request.subresource == "status":
                new = dicts.patch_dict(copy.deepcopy(old), {"status": body.get("status")})
            elif request.subresource is not None:
                msg = f"the shim does not emulate the {request.subresource!r} subresource"
                return _status(404, "NotFound", msg, request, request.name)
            elif apply:
                # One manager owns every applied field: the applied object is the new
                # desired state (fields it dropped disappear), server fields stay.
                new = body
                if "status" in old:
                    new["status"] = old["status"]
            else:
                body.pop("status", None)
                new = dicts.patch_dict(copy.deepcopy(old), body)
            meta = new.setdefault("metadata", {})
            for field in ("name", "namespace", "uid", "creationTimestamp", "generation"):
                if field in old.get("metadata", {}):
                    meta[field] = old["metadata"][field]
            if request.subresource is None and _spec(new) != _spec(old):
                meta["generation"] = int(old.get("metadata", {}).get("generation", 1)) + 1
            meta["resourceVersion"] = str(next(_RESOURCE_VERSION))
            raw = await self._store(request, key, new, "MODIFIED")
        return aiohttp.web.json_response(raw, status=200)

    async def _delete(self, request):
        key = self._key(request, request.namespace, request.name)
        async with self._lock:
            if not self._live(key):
                msg = f'{request.resource.plural} "{request.name}" not found'
                return _status(404, "NotFound", msg, request, request.name)
            raw = copy.deepcopy(self._objects[key].raw)
            self._objects[key].delete()
            await self._buses[request.resource].put({"type": "DELETED", "object": raw})
            if request.resource.plural == "namespaces" and not request.resource.group:
                for (resource, namespace, name), obj in list(self._objects.items()):
                    if namespace == request.name and not obj.deleted:
                        gone = copy.deepcopy(obj.raw)
                        obj.delete()
                        await self._buses[resource].put({"type": "DELETED", "object": gone})
        return aiohttp.web.json_response(raw, status=200)


    def _pod(self, namespace, name):
        for (resource, ns, n), obj in self._objects.items():
            if resource.plural == "pods" and not resource.group and ns == namespace and n == name:
                return None if obj.deleted else obj.raw
        return None

    async def _log(self, request):
        pod = self._pod(request.namespace, request.name)
        if pod is None:
            msg = f'pods "{request.name}" not found'
            return _status(404, "NotFound", msg, request, request.name)
        containers = [c.get("name") for c in pod.get("spec", {}).get("containers", [])]
        container = request.params.get("container")
        if container is not None and container not in containers:
            msg = f"container {container} is not valid for pod {request.name}"
            return _status(400, "BadRequest", msg, request, request.name)
        if container is None and len(containers) > 1:
            msg = f"a container name must be specified for pod {request.name}, choose one of: {containers}"
            return _status(400, "BadRequest", msg, request, request.name)

        def lines_of(raw):
            text = (raw.get("metadata", {}).get("annotations") or {}).get("kmock-shim/log", "")
            return text.splitlines(keepends=True)

        lines = lines_of(pod)
        tail = request.params.get("tailLines")
        shown = lines[-int(tail):] if tail is not None and int(tail) > 0 else ([] if tail is not None else lines)
        body = "".join(shown).encode()
        limit = request.params.get("limitBytes")
        if limit is not None:
            body = body[: int(limit)]
        if request.params.get("follow") != "true":
            return aiohttp.web.Response(body=body, content_type="text/plain")
        response = aiohttp.web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request._raw_request)
        await response.write(body)
        sent = len(lines)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 300
        while loop.time() < deadline:
            await asyncio.sleep(0.1)
            current = self._pod(request.namespace, request.name)
            if current is None:
                break
            now = lines_of(current)
            if len(now) > sent:
                await response.write("".join(now[sent:]).encode())
                sent = len(now)
        await response.write_eof()
        return response


def _spec(obj):
    """Everything but metadata and status: what moves `generation` on a real server."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with ShimEmulator() as handler, apps.Server(handler, host="127.0.0.1", port=port):
        print(f"kmock {kmock.__version__} shim listening on 127.0.0.1:{port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6443))
